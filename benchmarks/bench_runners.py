"""Time the reference runners on a synthetic benchmark with frames: frame-expressions per second,
and for Grounded-SAM2 where the time goes (Grounding DINO on every frame vs SAM2's propagation).

    python benchmarks/bench_runners.py [--scale tiny|small] [--device cpu|cuda] [--weights DIR]
                                       [--runners grounded-sam2,grounded-sam2-naive,colour,empty]
                                       [--limit N] [--threads N] [--json]

Without --weights, Grounded-SAM2 runs the tiny random models of the tests (built into a temporary
folder by tests/scoring/runners/tiny_models.py, which this script imports): the figures then
measure the runner's own overhead (reading frames, preprocessing, the loop), not real models.
With --weights DIR (grounding-dino/ and sam2/ inside, docs/runners.md), the real models run.
A frame-expression is one frame of one expression: what the scorer scores, and what the target
(the full EgoMask-scale set in an hour on one GPU: >= 20 frame-expressions/s) counts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scoring.runners import get_runner, load_jobs, run  # noqa: E402
from scoring.synth import synthesize  # noqa: E402

DEFAULT_RUNNERS = "grounded-sam2,grounded-sam2-naive,colour,empty"


def _timed_runner(name: str, loaded: list[object]):  # type: ignore[no-untyped-def]
    """The registry's runner, its loader wrapped to keep the model (for its timings) and time loading."""
    runner = get_runner(name)

    def load(**kwargs):  # type: ignore[no-untyped-def]
        tick = time.perf_counter()
        model = runner.load(**kwargs)
        loaded.append((model, time.perf_counter() - tick))
        return model

    return dataclasses.replace(runner, load=load)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="tiny", choices=("tiny", "small"))
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--weights", help="a real Grounded-SAM2 weights folder (default: the tiny random models)")
    parser.add_argument("--runners", default=DEFAULT_RUNNERS)
    parser.add_argument("--limit", type=int, help="only the first N expressions")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", action="store_true", help="one JSON object per runner instead of the table")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="egomask-bench-runners-"))
    bench = synthesize(work / "bench", scale=args.scale, frames=True)
    jobs = load_jobs(bench / "meta_expressions.json")[: args.limit]
    names = [n.strip() for n in args.runners.split(",") if n.strip()]
    weights = Path(args.weights) if args.weights else None
    if weights is None and any(get_runner(n).needs_weights for n in names):
        from tests.scoring.runners.tiny_models import build_tiny_weights

        weights = build_tiny_weights(work / "tiny-weights")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    rows = []
    for name in names:
        runner = get_runner(name)
        device = args.device if args.device in runner.devices else "cpu"
        loaded: list[object] = []
        report = run(_timed_runner(name, loaded), jobs=jobs, frames=bench, out=work / f"{name}.zip", device=device,
                     weights=weights if runner.needs_weights else None)
        model, load_seconds = loaded[0] if loaded else (None, 0.0)
        timings = getattr(model, "timings", {})
        rows.append({"runner": name, "device": device, "weights": "real" if args.weights else "tiny",
                     "scale": args.scale, "expressions": report.expressions, "frame_expressions": report.frames,
                     "masks": report.masks, "load_s": round(load_seconds, 2),
                     "model_s": round(report.model_seconds, 2),
                     "frame_expressions_per_s": round(report.frames_per_second, 1),
                     "detection_s": round(timings.get("detection", 0.0), 2),
                     "propagation_s": round(timings.get("propagation", 0.0), 2)})
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return
    columns = ["runner", "device", "weights", "frame_expressions", "model_s", "frame_expressions_per_s",
               "detection_s", "propagation_s", "load_s"]
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    print(f"{args.scale} benchmark: {len(jobs)} expressions, {sum(len(j.frames) for j in jobs)} frame-expressions")
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in rows:
        print("  ".join(str(row[c]).ljust(w) for c, w in zip(columns, widths)))


if __name__ == "__main__":
    main()
