"""A deliberately straightforward implementation of the metrics, to cross-check the fast one.

It shares nothing with the RLE path but pycocotools' decoder: it reads the JSON files itself,
decodes every frame of every expression to a full numpy mask and computes IoU pixel by pixel.
Slow and memory-hungry by design; RLE JSON predictions only. A test oracle, so it lives with the
tests, not in the shipped library; benchmarks/bench_scoring.py uses it too.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from pycocotools import mask as _mask

_SPLITS = ("short", "medium", "long")


def _decode(entry: object, height: int, width: int) -> np.ndarray:
    if entry is None:
        return np.zeros((height, width), dtype=bool)
    return _mask.decode(entry).astype(bool)


def evaluate_dense(gt_root: str | Path, pred_root: str | Path) -> dict[tuple[str, str, str], dict[str, float]]:
    """{(split, video, exp_id): {"T_recall": .., "IoU_all": .., "IoU_gold": .., "IoU_gold_pred": ..}}."""
    gt_root, pred_root = Path(gt_root), Path(pred_root)
    results: dict[tuple[str, str, str], dict[str, float]] = {}
    for split in _SPLITS:
        meta_path = gt_root / "subset" / split / "meta_expressions.json"
        if not meta_path.exists():
            continue
        for video, info in json.loads(meta_path.read_text())["videos"].items():
            clip = video if (gt_root / "annotations" / video).is_dir() else video.rsplit("--", 1)[0]
            for exp_id, expression in info["expressions"].items():
                gt = json.loads((gt_root / "annotations" / clip / f"{expression['obj_id']}.json").read_text())
                pred: dict[str, object] = {}
                folder = pred_root / split / video / exp_id
                files = sorted(folder.glob("*.json")) if folder.is_dir() else []
                if files:
                    pred = json.loads(files[0].read_text())
                size = next(iter(gt.values()))["size"]
                frame_ious, gold, gold_or_pred, hits = [], [], [], 0
                for frame in info["frames"]:
                    g = _decode(gt.get(frame), *size)
                    p = _decode(pred.get(frame), *size)
                    union = int(np.logical_or(g, p).sum())
                    iou = 1.0 if union == 0 else int(np.logical_and(g, p).sum()) / union
                    has_g, has_p = bool(g.any()), bool(p.any())
                    frame_ious.append(iou)
                    if has_g:
                        gold.append(iou)
                    if has_g or has_p:
                        gold_or_pred.append(iou)
                    hits += has_g and has_p
                results[(split, video, exp_id)] = {
                    "T_recall": hits / len(gold),
                    "IoU_all": math.fsum(frame_ious) / len(frame_ious),
                    "IoU_gold": math.fsum(gold) / len(gold),
                    "IoU_gold_pred": math.fsum(gold_or_pred) / len(gold_or_pred),
                }
    return results


def summarize_dense(results: dict[tuple[str, str, str], dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per-split and overall means, x100, in the CLI's --json shape."""
    out: dict[str, dict[str, float]] = {}
    groups = {split: [v for k, v in results.items() if k[0] == split] for split in _SPLITS}
    groups["overall"] = list(results.values())
    for name, rows in groups.items():
        if rows:
            out[name] = {m: 100.0 * math.fsum(r[m] for r in rows) / len(rows) for m in rows[0]}
    return out
