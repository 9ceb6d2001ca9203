"""Fuzz cases: valid inputs to start from, and the mutations of their trees, one layer after another.

A case starts from a valid submission of the tiny synthetic benchmark (RLE or PNG masks, or the
tree an official EgoMask runner leaves, zipped like `zip -r`) or from the benchmark's own
ground-truth tree, then takes one to three mutations, each from one layer: what a member holds
(JSON, RLE, PNG: content.py), the names and arrangement of the tree, the zip header fields of
a member, or the archive's bytes (zips.py). The result is written as a zip or as a folder.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from scoring import GroundTruth, Limits, load_ground_truth
from scoring.synth import synthesize, synthesize_predictions

from ..official_trees import write_evaluator_reports, write_groundedsam2, write_sa2va, write_videolisa
from .choices import Chooser
from .content import WRONG_VALUES, dumps, mutate_json, mutate_png, mutate_rle
from .zips import Entry, bomb_payloads, build_zip, copy_entries, mutate_bytes, mutate_fields, nest, zip_bytes

SPLIT_NAMES = ("short", "medium", "long", "full")
BASE_WEIGHTS = ((3, "rle-good"), (1, "rle-perfect"), (1, "rle-empty"), (3, "png-noisy"), (1, "groundedsam2"),
                (1, "sa2va"), (1, "videolisa"))


@dataclass
class Materials:
    """The valid inputs every case starts from, made once per process."""

    folder: Path
    gt_root: Path
    gt: GroundTruth
    gt_files: dict[str, bytes]
    bases: dict[str, list[Entry]]  # valid submissions by name
    base_zip: Path  # the "rle-good" submission, scored against mutated ground truths
    payloads: dict[str, bytes]  # compressed zero bytes that inflate to zips.BOMB_BYTES


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _like_zip_r(base: Path, top: str) -> list[Entry]:
    """What `cd base && zip -r x.zip top` holds: every folder (empty ones too), then files."""
    out: list[Entry] = []
    for folder, dirs, files in os.walk(base / top):
        dirs.sort()
        here = Path(folder)
        out.append(Entry(here.relative_to(base).as_posix() + "/", folder=True, method=zipfile.ZIP_STORED))
        out += [Entry((here / name).relative_to(base).as_posix(), (here / name).read_bytes()) for name in sorted(files)]
    return out


_MATERIALS: dict[Path, Materials] = {}


def materials(folder: Path) -> Materials:
    """The tiny benchmark, its valid submissions and the bomb payloads, under `folder` (made once)."""
    folder = Path(folder)
    if folder in _MATERIALS:
        return _MATERIALS[folder]
    gt_root = synthesize(folder / "gt", scale="tiny", seed=7)
    gt = load_ground_truth(gt_root)
    bases: dict[str, list[Entry]] = {}
    for quality, fmt in (("good", "rle"), ("perfect", "rle"), ("empty", "rle"), ("noisy", "png")):
        out = synthesize_predictions(gt_root, folder / f"pred-{fmt}-{quality}", quality=quality, fmt=fmt, seed=3)
        bases[f"{fmt}-{quality}"] = [Entry(name, data) for name, data in _tree(out).items()]
    masks = {}
    for name, data in _tree(folder / "pred-rle-good").items():
        split, video, exp_id, _ = name.split("/")
        masks[(split, video, exp_id)] = {f: m["counts"] for f, m in json.loads(data).items() if m}
    runs = folder / "official"
    write_groundedsam2(gt, masks, runs / "results/EgoMask-SAM2p1", "full", vis=True)
    write_evaluator_reports(runs / "results/EgoMask-SAM2p1", "full")
    bases["groundedsam2"] = _like_zip_r(runs, "results")
    write_sa2va(gt, masks, runs / "sa2va", "full", vis=True)
    bases["sa2va"] = _like_zip_r(runs / "sa2va", ".")[1:]
    for split in ("short", "medium", "long"):
        write_videolisa(gt, masks, runs / "videolisa", split, save_overlay=split == "short")
    bases["videolisa"] = _like_zip_r(runs / "videolisa", ".")[1:]
    base_zip = folder / "base.zip"
    base_zip.write_bytes(zip_bytes(bases["rle-good"]))
    made = Materials(folder, gt_root, gt, _tree(gt_root), bases, base_zip, bomb_payloads())
    _MATERIALS[folder] = made
    return made


@dataclass
class Case:
    """One fuzz input: a submission (scored against the tiny benchmark) or a ground-truth tree."""

    target: str  # "submission" or "groundtruth"
    container: str  # "zip" or "folder"
    entries: list[Entry]  # the tree (a folder case writes these)
    data: bytes = b""  # a zip case: the archive's bytes
    limits: Limits = field(default_factory=Limits)
    split: str | None = None  # what evaluate and validate_submission are asked to score
    steps: list[str] = field(default_factory=list)  # what was done to the valid input, in order


# --- the names and arrangement of a tree ---------------------------------------------------------------------------


def _renamed(ch: Chooser, name: str) -> str:
    parts = name.rstrip("/").split("/")
    parts += ["x"] * (2 - len(parts))
    return ch.pick((
        "", "/" + name, "../" + name, name.replace("/", "\\"), "./" + name, name.replace("/", "//", 1),
        "/./".join(parts), name + "/", ".", "./", "C:/" + name, "C:" + name, name[:3] + "\0" + name[3:],
        "/".join([*parts[:-1], "x" * 300]), "/".join([*parts[:-1], "y" * 60_000]), name.upper(),
        "/".join([ch.pick(("mid", "Short", "LONG", "val", "all", "full", "subset")), *parts[1:]]),
        "/".join([parts[0], parts[1] + "\u0301", *parts[2:]]), name + " ", name + "/.", "//" + name, "~/" + name,
        "a/../" + name, name.replace(".json", ".JSON"), name.replace(".json", ".png"), name.replace(".png", ".json"),
        "/".join(parts[1:]), "/".join(parts[:-1]), "\u00e9/" + name, name + "\\..\\..\\x",
        "/".join([*parts[:-1], "\udcff" + parts[-1]]),  # in a folder: a name that is not UTF-8 (byte 0xff)
    ))


def mutate_names(ch: Chooser, entries: list[Entry]) -> tuple[list[Entry], str]:
    """Rename, duplicate, move, wrap, remove or add members; returns the new list and what was done."""
    files = [e for e in entries if not e.folder]
    kind = ch.pick(("rename", "rename", "duplicate", "folder_named_like_file", "file_named_like_folder", "remove",
                    "move_split", "wrap", "junk", "nest", "conflict", "many", "only_folders"))
    if not files or kind == "only_folders":
        return [e for e in entries if e.folder], "every file removed"
    victim = ch.pick(files)
    if kind == "rename":
        old, victim.name = victim.name, _renamed(ch, victim.name)
        return entries, f"{old} renamed {victim.name[:60]!r}"
    if kind == "duplicate":
        twin = Entry(ch.pick((victim.name, victim.name.replace("/", "//", 1), "./" + victim.name)),
                     ch.pick((victim.data, b"{}", b"[]", b"")))
        return [*entries, twin], f"{victim.name} listed again as {twin.name!r}"
    if kind == "folder_named_like_file":
        return [*entries, Entry(victim.name + "/", folder=True)], f"a folder entry {victim.name}/"
    if kind == "file_named_like_folder":
        folder = str(PurePosixPath(victim.name).parent)
        return [*entries, Entry(folder, b"x")], f"a file named like the folder {folder}"
    if kind == "remove":
        keep = [e for e in entries if e.folder or ch.chance(60)]
        return keep, f"{len(entries) - len(keep)} members removed"
    if kind == "move_split":
        parts = victim.name.split("/")
        target = ch.pick((*SPLIT_NAMES, "", "unknown"))
        victim.name = "/".join([target, *parts[1:]] if target else parts[1:])
        return entries, f"{'/'.join(parts)} moved to {victim.name}"
    if kind == "wrap":
        wrapper = ch.pick(("team/", "results/EgoMask-SAM2p1/", "a/b/c/d/", "__MACOSX/", "short/"))
        some = ch.chance(30)
        for e in entries:
            if not some or ch.chance(50):
                e.name = wrapper + e.name
        return entries, f"{'some' if some else 'all'} members wrapped in {wrapper}"
    if kind == "junk":
        parts = victim.name.split("/")
        junk = ch.pick(("__MACOSX/._x.json", ".DS_Store", "README.md", "/".join([*parts[:-1], "vis", "00000.jpg"]),
                        f"{parts[0]}/default_exp_results.json", "/".join([*parts[:-1], "._" + parts[-1]]),
                        "/".join([*parts[:-1], ".egomask-run-manifest.json"])))
        return [*entries, Entry(junk, ch.pick((b"", b"junk", victim.data)))], f"junk file {junk}"
    if kind == "nest":
        return nest(entries, ch)
    if kind == "conflict":
        folder = str(PurePosixPath(victim.name).parent)
        extra = ch.pick((f"{folder}/00000.png", f"{folder}/x-99.json",
                         f"{folder}/{PurePosixPath(folder).name}-99.json"))
        return [*entries, Entry(extra, victim.data)], f"another mask file {extra}"
    count = ch.pick((50, 600, 3000))
    return [*entries, *(Entry(f"junk/{i}", b"") for i in range(count))], f"{count} empty junk members"


def mutate_member(ch: Chooser, entries: list[Entry]) -> str:
    """A content mutation of one member, chosen by what it holds."""
    files = [e for e in entries if not e.folder and e.data]
    if not files:
        return "no member to change"
    e = ch.pick(files)
    if e.name.lower().endswith(".png"):
        e.data, what = mutate_png(ch, e.data)
    elif e.data.lstrip().startswith(b"{") and b'"counts"' in e.data and ch.chance(70):
        e.data, what = mutate_rle(ch, e.data)
    else:
        e.data, what = mutate_json(ch, e.data)
    return f"{e.name}: {what}"


def small_limits(ch: Chooser) -> tuple[Limits, str]:
    limits = ch.pick((Limits(max_entries=5), Limits(max_file_bytes=2000), Limits(max_total_bytes=20_000),
                      Limits(max_ratio=1.5, ratio_floor_bytes=100), Limits(max_image_pixels=100), Limits(max_errors=1),
                      Limits(max_entries=1, max_errors=1)))
    return limits, f"limits {limits}"


def submission_case(ch: Chooser, m: Materials) -> Case:
    base = ch.weighted(BASE_WEIGHTS)
    entries = copy_entries(m.bases[base])
    steps = [f"the valid submission {base}"]
    limits = Limits()
    if ch.chance(8):
        limits, step = small_limits(ch)
        steps.append(step)
    byte_level = False
    for _ in range(ch.integer(1, 3)):
        layer = ch.weighted(((52, "content"), (25, "names"), (15, "fields"), (8, "bytes")))
        if layer == "content":
            steps.append(mutate_member(ch, entries))
        elif layer == "names":
            entries, step = mutate_names(ch, entries)
            steps.append(step)
        elif layer == "fields":
            steps.append(mutate_fields(ch, entries, m.payloads))
        else:
            byte_level = True
    split = ch.pick((None, None, None, "all", "short", "medium", "long"))
    if split is not None:
        steps.append(f"scored for split {split}")
    return _contained(ch, Case("submission", "zip", entries, limits=limits, split=split, steps=steps), byte_level)


def _contained(ch: Chooser, case: Case, byte_level: bool) -> Case:
    """Write the case's tree as a folder (sometimes, when no zip-only mutation was made) or a zip."""
    zip_only = byte_level or any(e.payload is not None or e.file_size is not None or e.method not in (0, 8)
                                 or e.mode is not None or e.raw_name is not None or e.flags or e.zip64 or e.extra
                                 or e.local_name is not None or e.version != 20 or e.create_system != 3
                                 or e.compress_size is not None or e.crc is not None for e in case.entries)
    if not zip_only and ch.chance(15):
        case.container = "folder"
        return case
    built = build_zip(case.entries, comment=ch.pick((b"", b"", b"a comment", b"PK\x05\x06")))
    case.data = built.data
    if byte_level:
        case.data, step = mutate_bytes(ch, built)
        case.steps.append(step)
    return case


# --- ground truth ------------------------------------------------------------------------------------------------


def _meta_files(files: dict[str, bytes]) -> list[str]:
    return [name for name in files if name.endswith("meta_expressions.json")]


def mutate_meta(ch: Chooser, files: dict[str, bytes]) -> str:
    """A change that knows the meta_expressions.json format: videos, frames, expressions, obj_id, subset.
    A file an earlier mutation left in another shape gets a plain JSON mutation instead."""
    name = ch.pick(_meta_files(files) or ["meta_expressions.json"])
    try:
        what = _change_meta(ch, files, name)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError):
        files[name], what = mutate_json(ch, files.get(name, b"{}"))
    return f"{name}: {what}"


def _change_meta(ch: Chooser, files: dict[str, bytes], name: str) -> str:
    meta = json.loads(files[name])
    videos = meta["videos"]
    video_name = ch.pick(list(videos))
    video = videos[video_name]
    exp_id = ch.pick(list(video["expressions"]))
    kind = ch.pick(("frames", "frames", "obj_id", "obj_id", "subset", "video_name", "expression", "copy_video",
                    "no_videos"))
    if kind == "frames":
        frames = [str(f) for f in video["frames"]]
        video["frames"] = ch.pick(([], [*frames, frames[0]], [5, *frames[1:]], frames[::-1],
                                   [f + ".jpg" for f in frames], ["\ud800"], frames[:1], [""] + frames, {"0": frames},
                                   [[f] for f in frames]))
        what = f"frames of {video_name} changed"
    elif kind == "obj_id":
        value = ch.pick(("99", "../0", "0/../0", "", 0, -1, True, 2**70, None, [0], "0 ", "é", "\ud800", "0.json"))
        video["expressions"][exp_id]["obj_id"] = value
        what = f"obj_id of {video_name}/{exp_id} set to {str(value)[:20]!r}"
    elif kind == "subset":
        video["subset"] = ch.pick(("mid", None, 1, "Short", "all", ["short"]))
        what = f"subset of {video_name} changed"
    elif kind == "video_name":
        new = ch.pick((video_name + "--9", video_name.split("--")[0] + "--", "--" + video_name, "", "../x", "x" * 300))
        videos[new] = videos.pop(video_name)
        what = f"video {video_name} renamed {new[:30]!r}"
    elif kind == "expression":
        video["expressions"][exp_id] = ch.pick(WRONG_VALUES[:26])
        what = f"expression {video_name}/{exp_id} replaced"
    elif kind == "copy_video":
        other = ch.pick(_meta_files(files))
        other_meta = json.loads(files[other]) if other != name else meta
        other_meta["videos"][video_name] = video
        if other != name:
            files[other] = dumps(other_meta)
        what = f"video {video_name} also listed in {other}"
    else:
        meta["videos"] = ch.pick(({}, [], None))
        what = "no videos"
    files[name] = dumps(meta)
    return what


def mutate_gt_tree(ch: Chooser, files: dict[str, bytes]) -> tuple[dict[str, bytes], str]:
    kind = ch.pick(("no_subset", "no_combined", "drop_annotation", "wrap", "train", "two_benchmarks", "empty",
                    "junk", "annotation_folder_file"))
    if kind == "no_subset":
        kept = {k: v for k, v in files.items() if not k.startswith("subset/")}
        return kept, "only the combined meta_expressions.json"
    if kind == "no_combined":
        return {k: v for k, v in files.items() if k != "meta_expressions.json"}, "no combined meta_expressions.json"
    if kind == "drop_annotation":
        victim = ch.pick([k for k in files if k.startswith("annotations/")] or list(files) or [""])
        return {k: v for k, v in files.items() if k != victim}, f"{victim} removed"
    if kind == "wrap":
        wrapper = ch.pick(("egomask/", "dataset/egomask/", "a/"))
        return {wrapper + k: v for k, v in files.items()}, f"wrapped in {wrapper}"
    if kind == "train":
        return {**{"egomask/" + k: v for k, v in files.items()}, "egomask-train/annotations/x/0.json": b"{}",
                "egomask-train/meta_expressions.json": b'{"videos": {}}'}, "beside a training set"
    if kind == "two_benchmarks":
        return {**files, **{"other/" + k: v for k, v in files.items()}}, "two benchmarks in one tree"
    if kind == "empty":
        return {}, "nothing at all"
    if kind == "junk":
        return {**files, "annotations/.DS_Store": b"\x00", "__MACOSX/annotations/._x": b""}, "junk files"
    clip = ch.pick([k.split("/")[1] for k in files if k.startswith("annotations/")] or ["x"])
    return {**files, f"annotations/{clip}": b"x"}, f"a file named like the folder annotations/{clip}"


def groundtruth_case(ch: Chooser, m: Materials) -> Case:
    files = dict(m.gt_files)
    steps = ["the valid tiny benchmark"]
    byte_level = False
    field_changes = 0  # made once the tree is final: they change the members' zip headers
    for _ in range(ch.integer(1, 3)):
        layer = ch.weighted(((30, "meta"), (30, "annotation"), (15, "tree"), (15, "fields"), (10, "bytes")))
        if layer == "meta":
            steps.append(mutate_meta(ch, files))
        elif layer == "annotation":
            name = ch.pick([k for k in files if k.startswith("annotations/")] or ["annotations/x/0.json"])
            data = files.get(name, b"{}")
            rle_file = ch.chance(70) and data.startswith(b"{")
            files[name], what = mutate_rle(ch, data) if rle_file else mutate_json(ch, data)
            steps.append(f"{name}: {what}")
        elif layer == "tree":
            files, step = mutate_gt_tree(ch, files)
            steps.append(step)
        elif layer == "fields":
            field_changes += 1
        else:
            byte_level = True
    entries = [Entry(name, data) for name, data in files.items()]
    for _ in range(field_changes):
        steps.append(mutate_fields(ch, entries, m.payloads, honest_bombs=False))
    return _contained(ch, Case("groundtruth", "zip", entries, steps=steps), byte_level)


def make_case(ch: Chooser, m: Materials) -> Case:
    """A submission case (four in five) or a ground-truth case."""
    return groundtruth_case(ch, m) if ch.chance(20) else submission_case(ch, m)
