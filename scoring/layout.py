"""Find the predictions in a submission's file tree, however it was zipped.

    [wrappers/]<split>/<video>/<exp_id>/<exp_id>-<obj_id>.json    RLE JSON (what the official runners write)
    [wrappers/]<split>/<video>/<exp_id>/<frame>.png               PNG masks (our addition)

<split> is short, medium, long, or full: one folder holding the videos of every split, whose
split then comes from the ground truth. The wrapping folders are whatever lies above the split
folders (`results/EgoMask-SAM2p1/` when a run is zipped from the repository root); they are
found and stripped as long as every split folder sits under the same ones.

The official tools leave files beside the masks (docs/submission-format.md lists them): these
are recognised and ignored with one warning, as are other files outside the layout. What cannot
be decided without guessing is an error that says what to change: split folders in two places,
a video under another split's folder or under two folders, videos that sit outside any split
folder (or in one named like a split but not one, such as `mid/`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from types import MappingProxyType

from .errors import BadLayout, Location, ScoringWarning
from .groundtruth import SPLITS

FULL = "full"
SPLIT_FOLDERS: tuple[str, ...] = (*SPLITS, FULL)
EXPECTED = ("<split>/<video>/<exp_id>/<exp_id>-<obj_id>.json (or <frame>.png masks), with <split> one of "
            f"{', '.join(SPLIT_FOLDERS)} (full: every video in one folder), optionally inside wrapping folders")
# Folder names people use for a split, and the split they mean (None: cannot tell without the ground truth).
_ALIASES = {"mid": "medium", "middle": "medium", "med": "medium", "val": None, "valid": None, "validation": None,
            "test": None, "eval": None, "all": FULL}
_SIDE_FOLDERS = frozenset({"vis", "source_frames"})  # Grounded-SAM2: overlays, and its frame copies
_IMAGE_SUFFIXES = (".jpg", ".jpeg")  # overlays: Sa2VA <frame>.jpg, VideoLISA masked_img_<frame>.jpg
_EXAMPLES = 5


def sample(names: Iterable[str]) -> str:
    """A short, readable list of names: the first few and how many more."""
    names = sorted(names)
    shown = ", ".join(names[:_EXAMPLES])
    return shown + (f" and {len(names) - _EXAMPLES} more" if len(names) > _EXAMPLES else "")


@dataclass(frozen=True)
class ExpressionFiles:
    """The files of one expression folder: candidate RLE JSON files and PNG masks by frame."""

    split: str  # the video's split; "full" only when it is not known (no ground truth, unknown video)
    video: str
    exp_id: str
    folder: str  # the expression folder's path in the submission
    json_files: tuple[str, ...] = ()
    png_files: Mapping[str, str] = field(default_factory=dict)  # frame -> path

    @property
    def location(self) -> Location:
        return Location(split=self.split, video=self.video, expression=self.exp_id)


@dataclass(frozen=True)
class Layout:
    root: str  # the wrapping folders that were stripped, "" for none ("results/EgoMask-SAM2p1")
    expressions: Mapping[tuple[str, str, str], ExpressionFiles]  # (split, video, exp_id) -> files
    warnings: tuple[ScoringWarning, ...]


def _is_side_file(rest: tuple[str, ...]) -> bool:
    """A file the official tools write beside the masks; `rest` is its path below the split folder."""
    name = rest[-1]
    if len(rest) == 1:  # the official evaluator's reports: default_<name>.json, ..._full_result.jsonl
        return (name.startswith("default_") and name.endswith(".json")) or name.endswith("_full_result.jsonl")
    if len(rest) == 3:
        return name.endswith("_grounding_ret.json") or name.lower().endswith(_IMAGE_SUFFIXES)
    return len(rest) > 3 and rest[2] in _SIDE_FOLDERS  # <video>/<exp_id>/vis/..., .../source_frames/...


def _is_mask_name(name: str) -> bool:
    return name.lower().endswith((".json", ".png")) and not name.endswith("_grounding_ret.json")


def _split_at(parts: tuple[str, ...]) -> int | None:
    """Index of the split folder of a mask file at <split>/<video>/<exp_id>/<file>, if it is one."""
    if len(parts) >= 4 and parts[-4] in SPLIT_FOLDERS and _is_mask_name(parts[-1]):
        return len(parts) - 4
    return None


def _split_like(folder: str) -> str | None:
    """What a folder named like a split but not one should be renamed to ('mid' -> 'medium/'), else None."""
    lower = folder.lower()
    if lower in SPLIT_FOLDERS:
        return None if folder == lower else f"{lower}/"
    if lower in _ALIASES:
        meaning = _ALIASES[lower]
        return f"{meaning}/" if meaning else "short/, medium/, long/ or full/ (every video in one folder)"
    return None


def index_layout(paths: Iterable[str], folders: Iterable[str] = (), *,
                 videos: Mapping[str, str] | None = None) -> Layout:
    """Group a submission's files by (split, video, exp_id). Raises BadLayout when the tree is not one.

    `folders` are folders the archive lists itself (so an expression folder left empty counts);
    `videos` maps the ground truth's video names to their splits: with it, `full/` is resolved
    and misplaced videos are errors; without it only the structure is checked.
    """
    # Paths come from the archive layer, already relative, normalised and POSIX.
    file_parts = sorted(tuple(p.split("/")) for p in paths)
    folder_parts = sorted(tuple(p.split("/")) for p in folders)
    roots = {parts[:i] for parts in file_parts if (i := _split_at(parts)) is not None}
    if not roots:
        raise _no_predictions(file_parts, videos)
    if len(roots) > 1:
        places = sorted("/".join(root) + "/" if root else "the top level" for root in roots)
        raise BadLayout(f"the zip holds split folders in more than one place ({', '.join(places)}); zip the "
                        "folder of one run, which holds short/, medium/, long/ or full/")
    root = next(iter(roots))
    depth = len(root)

    found: dict[tuple[str, str, str], dict[str, object]] = {}
    placed: dict[str, set[str]] = defaultdict(set)  # video -> split folders it is in
    side: list[str] = []
    ignored: list[str] = []
    outside: dict[str, set[str]] = defaultdict(set)  # place of known videos outside the split folders -> videos
    misnamed: dict[str, str] = {}  # folder named like a split but not one -> what to rename it to

    def expression(parts: tuple[str, ...]) -> dict[str, object]:
        split_folder, video, exp_id = parts[depth : depth + 3]
        placed[video].add(split_folder)
        return found.setdefault((split_folder, video, exp_id),
                                {"folder": "/".join(parts[: depth + 3]), "json": [], "png": {}})

    for parts in folder_parts:
        if parts[:depth] == root and len(parts) >= depth + 3 and parts[depth] in SPLIT_FOLDERS:
            expression(parts)
    for parts in file_parts:
        path = "/".join(parts)
        if parts[:depth] != root or len(parts) <= depth or parts[depth] not in SPLIT_FOLDERS:
            _check_outside(parts, videos, outside, misnamed)
            ignored.append(path)
            continue
        rest = parts[depth + 1 :]
        if _is_side_file(rest):
            side.append(path)
            continue
        if len(rest) != 3:
            ignored.append(path)
            continue
        stem, dot, suffix = rest[2].rpartition(".")
        suffix = suffix.lower() if dot else ""
        if suffix == "json":
            expression(parts)["json"].append(path)  # type: ignore[attr-defined]
        elif suffix == "png":
            expression(parts)["png"][stem] = path  # type: ignore[index]
        else:
            ignored.append(path)

    if (error := _outside_error(outside, misnamed, videos)) is not None:
        raise error
    expressions = _resolve_splits(found, placed, videos)
    if not expressions:
        raise _no_predictions(file_parts, videos)
    warnings = []
    if side:
        warnings.append(ScoringWarning(
            "side_files", f"{len(side)} file(s) that the official EgoMask tools write beside the masks (grounding "
            f"results, overlays, evaluation reports) were ignored: {sample(side)}"))
    if ignored:
        warnings.append(ScoringWarning(
            "ignored_files", f"{len(ignored)} file(s) outside the prediction layout were ignored: {sample(ignored)}"))
    return Layout("/".join(root), MappingProxyType(expressions), tuple(warnings))


def _resolve_splits(found: Mapping[tuple[str, str, str], Mapping[str, object]], placed: Mapping[str, set[str]],
                    videos: Mapping[str, str] | None) -> dict[tuple[str, str, str], ExpressionFiles]:
    """Key every expression by its video's real split; refuse videos in two folders or in another split's."""
    for video, split_folders in sorted(placed.items()):
        if len(split_folders) > 1:
            both = " and ".join(f"{s}/{video}/" for s in sorted(split_folders))
            raise BadLayout(f"the zip has predictions for video {video} in {both}; keep one of the two folders")
        split_folder = next(iter(split_folders))
        actual = videos.get(video) if videos is not None else None
        if actual is not None and split_folder != FULL and actual != split_folder:
            raise BadLayout(f"video {video} belongs to the {actual} split but its predictions are in {split_folder}/; "
                            f"move the folder to {actual}/ (or put every video in full/)",
                            Location(split=split_folder, video=video))
    out = {}
    for (split_folder, video, exp_id), entry in found.items():
        split = split_folder
        if split_folder == FULL and videos is not None and video in videos:
            split = videos[video]
        out[(split, video, exp_id)] = ExpressionFiles(
            split=split, video=video, exp_id=exp_id, folder=str(entry["folder"]),
            json_files=tuple(sorted(entry["json"])),  # type: ignore[call-overload]
            png_files=MappingProxyType(dict(entry["png"])),  # type: ignore[call-overload]
        )
    return dict(sorted(out.items()))


def _check_outside(parts: tuple[str, ...], videos: Mapping[str, str] | None, outside: dict[str, set[str]],
                   misnamed: dict[str, str]) -> None:
    """Look at a file outside the split folders: is it a mask in a folder named like a split but
    not one (`misnamed`: place -> what to rename it to), or a mask in the folder of a benchmark
    video (`outside`: place -> videos; needs the ground truth)?"""
    if not _is_mask_name(parts[-1]):
        return
    if len(parts) >= 4 and (target := _split_like(parts[-4])):
        misnamed.setdefault("/".join(parts[:-3]), target)
    if videos is None:
        return
    for j, part in enumerate(parts[:-2]):  # a video folder with <exp_id>/<file> below it
        if part in videos:
            outside["/".join(parts[:j])].add(part)
            return


def _outside_error(outside: Mapping[str, set[str]], misnamed: Mapping[str, str],
                   videos: Mapping[str, str] | None) -> BadLayout | None:
    if outside:
        return _misplaced(outside, videos or {})
    if misnamed:
        place, target = min(misnamed.items())
        folder = PurePosixPath(place).name
        return BadLayout(f"the folder {place}/ holds predictions, but {folder!r} is not a split folder name; "
                         f"rename it to {target}")
    return None


def _misplaced(outside: Mapping[str, set[str]], videos: Mapping[str, str]) -> BadLayout:
    """The error for benchmark videos found outside the split folders: what to rename or move."""
    place, names = min(outside.items(), key=lambda item: (-len(item[1]), item[0]))
    splits = {videos[name] for name in names}
    target = f"{next(iter(splits))}/" if len(splits) == 1 else "full/"
    examples = sample(names)
    if not place:
        return BadLayout(f"the videos ({examples}) are at the top level of the zip, not in a split folder; put them in "
                         f"{target} (the layout is {EXPECTED})")
    folder = PurePosixPath(place).name
    if _split_like(folder) is not None:
        return BadLayout(f"the folder {place}/ holds videos of the benchmark ({examples}), but {folder!r} is not a "
                         f"split folder name; rename it to {target}")
    return BadLayout(f"the videos ({examples}) are in {place}/, not in a split folder; put them in {place}/{target} "
                     f"(the layout is {EXPECTED})")


def _no_predictions(file_parts: list[tuple[str, ...]], videos: Mapping[str, str] | None) -> BadLayout:
    """The error for a tree with no recognisable predictions: misplaced ones if there are any."""
    outside: dict[str, set[str]] = defaultdict(set)
    misnamed: dict[str, str] = {}
    for parts in file_parts:
        _check_outside(parts, videos, outside, misnamed)
    if (error := _outside_error(outside, misnamed, videos)) is not None:
        return error
    tops: dict[str, int] = defaultdict(int)
    for parts in file_parts:
        tops[parts[0] + ("/" if len(parts) > 1 else "")] += 1
    seen = ", ".join(f"{name} ({count} file{'s' * (count > 1)})" for name, count in sorted(tops.items())[:_EXAMPLES])
    if len(tops) > _EXAMPLES:
        seen += f" and {len(tops) - _EXAMPLES} more"
    return BadLayout(f"found no predictions: expected {EXPECTED}; the top level of the zip holds {seen or 'nothing'}")
