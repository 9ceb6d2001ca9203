"""Should GPU workers score? A torch scorer (masks decoded on the device, IoU in batches) against
the RLE scorer (`scoring.evaluate`, run lengths on the CPU), on the same full-scale sets.

    python benchmarks/bench_gpu_scoring.py [--device cpu|cuda] [--scale full] [--sets tracker,good]
                                           [--forms rle,png] [--repeat 3] [--batch 32] [--data benchmarks/data]
                                           [--no-torch]

The sets (made once, cached under `<data>/gpu-scoring-<scale>/`, git-ignored): the synthetic
ground truth of `egomask synth --scale <scale>` (full: 315 videos, 700 expressions, 1080x1920)
and, for each set, `synthesize_predictions(..., quality=set, seed=1)` zipped in both input forms
a submission may take: RLE JSON (`fmt="rle"`) and one PNG per mask (`fmt="png"`).
  tracker  a propagating tracker (Grounded-SAM2): a mask on every frame, drifting where the object
           is absent (the densest realistic output)
  good     a mask on ~90 % of the object's frames and a few false positives

Both scorers start from the parsed ground truth in memory (a worker caches it) and read the zip.
The torch scorer: RLE JSON → counts parsed on the CPU (`rle.parse_counts`, as the RLE scorer
does) → run lengths to the device → dense masks by `repeat_interleave`; PNG → decoded by PIL on
the CPU (there is no device PNG decoder) → dense masks to the device; the ground truth's masks
are decoded on the device the same way. Per frame of G ∩ P, `&` and `|` counts in batches, then
IoU and the four metrics exactly as `scoring/metrics.py` (`scores_from_ious`). The benchmark
asserts that every expression's counts and metrics are identical to `scoring.evaluate`'s.

Columns: "CPU floor" is what any scorer must do on the CPU before a device can help (inflate
each member, decode its JSON and counts strings, or its PNG): no GPU can score below it. "of it
on device" is the torch scorer's time in device decoding and counting (synchronised).

The torch scorer does not check the submission (archive safety, layout, sizes, RLE validity):
`scoring.evaluate` does all of that within its time, so the torch figures are a lower bound.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scoring import evaluate, load_ground_truth, rle  # noqa: E402
from scoring.groundtruth import GroundTruth  # noqa: E402
from scoring.metrics import ExpressionScores, scores_from_ious  # noqa: E402
from scoring.synth import synthesize, synthesize_predictions  # noqa: E402

Key = tuple[str, str, str]


def prepare(data: Path, scale: str, sets: list[str], forms: list[str]) -> tuple[Path, dict[tuple[str, str], Path]]:
    """The ground truth folder and each (set, form)'s zip; made once, reused after."""
    gt = data / "gt"
    if not (gt / "meta_expressions.json").exists():
        synthesize(gt, scale=scale, seed=0)
    zips = {}
    for name in sets:
        for form in forms:
            archive = data / f"pred-{name}-{form}.zip"
            if not archive.exists():
                print(f"making {archive} (once) ...", file=sys.stderr, flush=True)
                partial = archive.with_name(f".{archive.name}.partial.zip")
                synthesize_predictions(gt, partial, quality=name, fmt=form, seed=1)
                os.replace(partial, archive)
            zips[(name, form)] = archive
    return gt, zips


class TorchScorer:
    """Per-expression scores with the masks decoded on `device` and IoU counted there."""

    def __init__(self, gt: GroundTruth, device: str, batch: int) -> None:
        import torch

        self.torch, self.gt, self.device, self.batch = torch, gt, torch.device(device), batch
        self.device_seconds = 0.0  # decoding and counting on the device, synchronised

    def _dense(self, runs: list[np.ndarray], pixels: int) -> object:
        """(k, pixels) bool masks on the device from k masks' run lengths (zeros first, column-major)."""
        torch = self.torch
        # Run i of a mask is foreground when i is odd: which runs those are is known on the host.
        odd = np.concatenate([np.arange(len(r)) % 2 == 1 for r in runs])
        lengths = torch.from_numpy(np.concatenate(runs).astype(np.int64)).to(self.device)
        ends = torch.cumsum(lengths, 0)  # each mask adds up to `pixels`: positions on one line of k masks
        fg = torch.from_numpy(odd).to(self.device)
        # +1 where a foreground run starts, -1 where it ends, then a running sum: one byte per pixel
        # (repeat_interleave would build an 8-byte index per pixel first).
        toggles = torch.zeros(len(runs) * pixels + 1, dtype=torch.int8, device=self.device)
        one = torch.ones(1, dtype=torch.int8, device=self.device)
        toggles.index_put_(((ends - lengths)[fg],), one, accumulate=True)
        toggles.index_put_((ends[fg],), -one, accumulate=True)
        return torch.cumsum(toggles[:-1], 0, dtype=torch.int8).view(len(runs), pixels).bool()

    def _counts(self, gt_runs: list[np.ndarray], pred: object, pixels: int) -> tuple[np.ndarray, np.ndarray]:
        """|gt & pred| and |gt | pred| per frame; `pred` is (k, pixels) on the device or a list of runs."""
        torch = self.torch
        start = time.perf_counter()
        truth = self._dense(gt_runs, pixels)
        if isinstance(pred, list):
            guess = self._dense(pred, pixels)
        else:  # the ground truth decodes column-major: transpose it on the device, not the PNGs on the host
            k, height, width = pred.shape  # type: ignore[attr-defined]
            truth, guess = truth.view(k, width, height).transpose(1, 2), pred
        inter = (truth & guess).flatten(1).sum(1)
        union = (truth | guess).flatten(1).sum(1)
        out = torch.stack([inter, union]).cpu().numpy()  # synchronises
        self.device_seconds += time.perf_counter() - start
        return out[0], out[1]

    def _ious(self, gt_runs: list[np.ndarray], pred: list, pixels: int, dense: bool) -> list[float]:
        ious: list[float] = []
        for at in range(0, len(gt_runs), self.batch):
            part = pred[at : at + self.batch]
            if dense:  # PNG masks go up as decoded, (k, h, w); one copy on the host (the stack)
                part = self.torch.from_numpy(np.stack(part)).to(self.device)
            inter, union = self._counts(gt_runs[at : at + self.batch], part, pixels)
            ious.extend((inter / union).tolist())  # exact integers, divided as scoring.metrics does
        return ious

    def score(self, archive: Path) -> dict[Key, ExpressionScores]:
        gt = self.gt
        out: dict[Key, ExpressionScores] = {}
        with zipfile.ZipFile(archive) as z:
            names = z.namelist()
            pngs: dict[tuple[str, str, str], list[str]] = {}
            for name in names:
                if name.endswith(".png"):
                    split, video, exp_id, _ = name.split("/")
                    pngs.setdefault((split, video, exp_id), []).append(name)
            jsons = {tuple(n.split("/")[:3]): n for n in names if n.endswith(".json")}
            for expression in gt.expressions():
                video = gt.videos[expression.video]
                key = (expression.split, expression.video, expression.exp_id)
                pixels = video.height * video.width
                truth = gt.mask_indices(expression)
                if key in jsons:
                    raw = json.loads(z.read(jsons[key]))
                    listed = [f for f in video.frames if raw.get(f)]
                    parsed = rle.parse_counts([raw[f]["counts"] for f in listed], pixels)
                    predicted = {f: parsed.runs(i) for i, f in enumerate(listed) if parsed.areas[i] > 0}
                    dense = False
                else:
                    predicted = {}
                    wanted = set(video.frames)
                    for name in pngs.get(key, []):
                        frame = name.rsplit("/", 1)[1][:-4]
                        with Image.open(io.BytesIO(z.read(name))) as image:
                            mask = np.asarray(image) != 0
                        if frame in wanted and mask.any():
                            predicted[frame] = mask
                    dense = True
                hits = [f for f in truth if f in predicted]
                ious = self._ious([gt.runs.runs(truth[f]) for f in hits], [predicted[f] for f in hits], pixels,
                                  dense) if hits else []
                out[key] = scores_from_ious(len(video.frames), len(truth), len(predicted), ious)
        return out


def cpu_floor(gt: GroundTruth, archive: Path) -> None:
    """What any scorer must do on the CPU before a device can help: inflate every member and
    decode it (RLE JSON: the JSON and the counts strings; PNG: the image). No GPU goes below this."""
    with zipfile.ZipFile(archive) as z:
        for name in z.namelist():
            data = z.read(name)
            if name.endswith(".json"):
                raw = json.loads(data)
                split, video, _ = name.split("/", 2)
                listed = [v["counts"] for v in raw.values() if v]
                if listed:
                    size = gt.videos[video].height * gt.videos[video].width
                    rle.parse_counts(listed, size)
            elif name.endswith(".png"):
                with Image.open(io.BytesIO(data)) as image:
                    np.asarray(image)


def rle_scores(gt: GroundTruth, archive: Path) -> dict[Key, ExpressionScores]:
    result = evaluate(gt, archive)
    return {(row.split, row.video, row.exp_id): row.scores for row in result.expressions}


def best_of(repeat: int, work) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = work()
        times.append(time.perf_counter() - start)
    return min(times), value


def describe(archive: Path) -> str:
    with zipfile.ZipFile(archive) as z:
        infos = z.infolist()
    return f"{len(infos):,} files, {archive.stat().st_size / 2**20:.0f} MiB"


def rows(args: argparse.Namespace) -> Iterator[str]:
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(f"--device {args.device}: torch {torch.__version__} sees no CUDA GPU")
    data = Path(args.data) / f"gpu-scoring-{args.scale}"
    sets, forms = args.sets.split(","), args.forms.split(",")
    gt_root, zips = prepare(data, args.scale, sets, forms)
    start = time.perf_counter()
    gt = load_ground_truth(gt_root)
    frames = sum(len(v.frames) * len(v.expressions) for v in gt.videos.values())
    yield (f"ground truth: {len(gt.videos)} videos, {sum(1 for _ in gt.expressions())} expressions, "
           f"{frames:,} frame-expressions, loaded in {time.perf_counter() - start:.1f} s (not in the times below)")
    cpu = f"CPU, {torch.get_num_threads()} torch threads"
    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else cpu
    yield f"torch {torch.__version__} on {args.device} ({device_name}); best of {args.repeat}; batch {args.batch}"
    torch_columns = "" if args.no_torch else f" {'torch s':>8} {'of it on device':>15} {'torch/RLE':>9}"
    yield f"{'set':8} {'form':4} {'CPU floor s':>11} {'RLE scorer s':>12}{torch_columns}  input"
    for (name, form), archive in zips.items():
        floor_seconds, _ = best_of(args.repeat, lambda archive=archive: cpu_floor(gt, archive))
        rle_seconds, expected = best_of(args.repeat, lambda archive=archive: rle_scores(gt, archive))
        if args.no_torch:
            yield f"{name:8} {form:4} {floor_seconds:11.2f} {rle_seconds:12.2f}  {describe(archive)}"
            continue
        scorer = TorchScorer(gt, args.device, args.batch)
        if args.device.startswith("cuda"):
            scorer.score(archive)  # warm-up: the CUDA context and kernels (the RLE runs warmed the page cache)
            scorer.device_seconds = 0.0
        torch_seconds, got = best_of(args.repeat, lambda archive=archive, scorer=scorer: scorer.score(archive))
        if got != expected:
            differing = [k for k in expected if got.get(k) != expected[k]]  # type: ignore[union-attr]
            sys.exit(f"{name}/{form}: the torch scorer differs from scoring.evaluate on {len(differing)} "
                     f"expressions, first {differing[:1]}: {got.get(differing[0])} vs {expected[differing[0]]}")  # type: ignore[union-attr]
        on_device = scorer.device_seconds / args.repeat
        yield (f"{name:8} {form:4} {floor_seconds:11.2f} {rle_seconds:12.2f} {torch_seconds:8.2f} {on_device:15.2f} "
               f"{torch_seconds / rle_seconds:8.1f}x  {describe(archive)}; identical on {len(expected)} expressions")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda where a GPU is")
    parser.add_argument("--scale", default="full", choices=["tiny", "small", "full"])
    parser.add_argument("--sets", default="tracker,good")
    parser.add_argument("--forms", default="rle,png")
    parser.add_argument("--repeat", type=int, default=3, help="runs per scorer and set (the best is shown)")
    parser.add_argument("--batch", type=int, default=32, help="frames per device batch (32 x 2 Mpixel x 2 masks)")
    parser.add_argument("--data", default=str(ROOT / "benchmarks" / "data"))
    parser.add_argument("--no-torch", action="store_true", help="only the CPU floor and the RLE scorer (quick)")
    args = parser.parse_args()
    for line in rows(args):
        print(line, flush=True)


if __name__ == "__main__":
    main()
