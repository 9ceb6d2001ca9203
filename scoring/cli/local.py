"""The local commands of `egomask`: eval, validate, synth, synth-predict. No network, no terminal library.

They call the scoring core as the server's workers do, so `eval` prints the numbers the leaderboard
would show and `validate` runs the checks the server runs on arrival.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from .. import stats
from ..errors import ScoringWarning
from ..evaluation import Evaluation, ExpressionResult, evaluate, validate_submission
from ..groundtruth import SPLITS, GroundTruth, load_ground_truth
from ..metrics import METRICS, PRIMARY_METRIC, MetricSummary
from ..synth import QUALITIES
from .exits import CommandError, ExitCode


def _table(summaries: dict[str, MetricSummary]) -> str:
    header = ["split", *METRICS, "expressions"]
    rows = [[name, *(f"{getattr(s, m):.2f}" for m in METRICS), str(s.n_expressions)]
            for name, s in summaries.items()]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.rjust(width) if i else cell.ljust(width) for i, (cell, width) in enumerate(zip(row, widths)))
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _write_csv(path: str, rows: Sequence[ExpressionResult]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0].as_row()) if rows else ["split"])
        writer.writeheader()
        for row in rows:
            writer.writerow(row.as_row())


def _print_warnings(warnings: Sequence[ScoringWarning], stream: TextIO) -> None:
    for warning in warnings:
        print(f"warning: {warning}", file=stream)


def cache_folder(environ: Mapping[str, str] | None = None) -> Path:
    """Where the parsed ground truth is kept between runs: $EGOMASK_CACHE_DIR, else the user's cache folder."""
    env = os.environ if environ is None else environ
    if env.get("EGOMASK_CACHE_DIR"):
        return Path(env["EGOMASK_CACHE_DIR"])
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path(env.get("HOME") or Path.home()) / ".cache"
    return base / "egomask"


def _ground_truth(args: argparse.Namespace) -> GroundTruth:
    gt = load_ground_truth(args.gt, cache=None if args.no_cache else cache_folder())
    for note in gt.notes:
        print(f"note: {note}", file=sys.stderr)
    return gt


def _say_root(root: str) -> None:
    if root:
        print(f"note: predictions read from {root}/ in the submission", file=sys.stderr)


def _intervals(result: Evaluation, args: argparse.Namespace) -> dict[str, dict[str, list[float]] | None]:
    splits = tuple(s for s in result.summaries if s != stats.OVERALL)
    return stats.intervals(result.expressions, result.gt_version, splits=splits,
                           overall=stats.OVERALL in result.summaries, samples=args.samples, seed=args.seed).as_dict()


def _ci_table(ci: dict[str, dict[str, list[float]] | None]) -> str:
    header = ["split", *METRICS]
    rows = [[name, *(f"{values[m][0]:.2f}–{values[m][1]:.2f}" if values else "– (one video)" for m in METRICS)]
            for name, values in ci.items()]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
                     for row in [header, *rows])


def _evaluate(gt: GroundTruth, pred: str, split: str) -> Evaluation:
    try:
        return evaluate(gt, pred, split=split)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def cmd_eval(args: argparse.Namespace) -> int:
    """Score predictions against ground truth: a table, or one JSON object with --json."""
    gt = _ground_truth(args)
    result = _evaluate(gt, args.pred, args.split)
    _say_root(result.root)
    _print_warnings(result.warnings, sys.stderr)
    if args.per_expression:
        _write_csv(args.per_expression, result.expressions)
    ci = _intervals(result, args) if args.ci else None
    if args.json:
        out: dict[str, dict[str, Any]] = dict(result.as_dict())
        for split, values in (ci or {}).items():
            out[split] = {**out[split], "ci": values}
        print(json.dumps(out))
    else:
        print(_table(dict(result.summaries)))
        if ci is not None:
            print(f"\n95% intervals (cluster bootstrap over videos, B={args.samples}, seed {args.seed}):")
            print(_ci_table(ci))
        print(f"\nscorer {result.scorer_version}, ground truth {result.gt_version[:12]}")
    return ExitCode.OK


def cmd_compare(args: argparse.Namespace) -> int:
    """Paired comparison of two submissions on the same ground truth: per split, the difference A − B of a
    metric with its 95% interval and p-value (paired cluster bootstrap), then the videos that differ most."""
    gt = _ground_truth(args)
    a, b = _evaluate(gt, args.a, args.split), _evaluate(gt, args.b, args.split)
    for result in (a, b):
        _print_warnings([w for w in result.warnings if w.code == "missing_expressions"], sys.stderr)
        _say_root(result.root)
    found = compare_evaluations(a, b, metric=args.metric, samples=args.samples, seed=args.seed, top=args.top)
    if args.json:
        print(json.dumps(found))
        return ExitCode.OK
    level = int(round(100 * (1 - stats.DEFAULT_LEVEL)))
    print(f"A = {args.a}\nB = {args.b}\n{args.metric}, paired cluster bootstrap over videos "
          f"(B={args.samples}, seed {args.seed}):\n")
    header = ["split", "A", "B", "A − B", "95% interval", "p", "verdict"]
    rows = []
    for split, row in found["splits"].items():
        if row["ci"] is None:
            interval, verdict = "–", "cannot tell: one video"
        else:
            interval = f"[{row['ci'][0]:+.2f}, {row['ci'][1]:+.2f}]"
            verdict = (f"not distinguishable at {level}%" if row["p_value"] >= 1 - stats.DEFAULT_LEVEL
                       else ("A better" if row["difference"] > 0 else "B better"))
        rows.append([split, f"{row['a']:.2f}", f"{row['b']:.2f}", f"{row['difference']:+.2f}", interval,
                     f"{row['p_value']:.3f}", verdict])
    print(_aligned([header, *rows]))
    print(f"\nvideos that differ most ({args.metric}, mean over the video's expressions):")
    print(_aligned([["split", "video", "expressions", "A", "B", "A − B"],
                    *([v["split"], v["video"], str(v["expressions"]), f"{v['a']:.2f}", f"{v['b']:.2f}",
                       f"{v['difference']:+.2f}"] for v in found["videos"])]))
    return ExitCode.OK


def _aligned(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
                     for row in rows)


def compare_evaluations(a: Evaluation, b: Evaluation, *, metric: str, samples: int, seed: int, top: int
                        ) -> dict[str, Any]:
    """The comparison `egomask compare` prints (percent points), as one JSON-ready dict."""
    if a.gt_version != b.gt_version:
        raise CommandError("the two submissions were scored on different ground truths")
    mine = {(r.split, r.video, r.exp_id): r.scores.metric(metric) for r in a.expressions}
    theirs = {(r.split, r.video, r.exp_id): r.scores.metric(metric) for r in b.expressions}
    keys = [key for key in mine if key in theirs]
    out: dict[str, Any] = {"metric": metric, "samples": samples, "seed": seed, "splits": {}, "videos": []}
    groups = [(s, [k for k in keys if k[0] == s]) for s in a.summaries if s != stats.OVERALL]
    if stats.OVERALL in a.summaries:
        groups.append((stats.OVERALL, keys))
    for split, chosen in groups:
        plan = stats.design(split, [(k[0], k[1]) for k in chosen], a.gt_version, samples=samples, seed=seed)
        x, y = np.array([mine[k] for k in chosen]), np.array([theirs[k] for k in chosen])
        test = stats.paired_test(x, y, plan)
        out["splits"][split] = {"a": 100 * float(x.mean()), "b": 100 * float(y.mean()), **test.as_dict()}
    by_video: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for k in keys:
        by_video.setdefault((k[0], k[1]), []).append((mine[k], theirs[k]))
    videos = []
    for (split, video), pairs in by_video.items():
        x, y = (100 * float(np.mean(v)) for v in zip(*pairs))
        videos.append({"split": split, "video": video, "expressions": len(pairs), "a": x, "b": y, "difference": x - y})
    videos.sort(key=lambda v: (-abs(v["difference"]), v["split"], v["video"]))
    out["videos"] = videos[:top]
    return out


def cmd_validate(args: argparse.Namespace) -> int:
    """Every problem of a submission, without scoring it; exit 1 if there is one."""
    gt: GroundTruth | None = _ground_truth(args) if args.gt else None
    try:
        report = validate_submission(args.pred, gt=gt, split=args.split)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    _say_root(report.root)
    if args.json:
        print(json.dumps({
            "ok": report.ok,
            "errors": [e.as_dict() for e in report.errors],
            "warnings": [w.as_dict() for w in report.warnings],
            "expressions": report.n_expressions,
        }))
    else:
        for error in report.errors:
            print(f"error: {error}")
        _print_warnings(report.warnings, sys.stdout)
        checks = "checked against the ground truth" if gt else "structural checks only (no --gt given)"
        verdict = "valid" if report.ok else f"INVALID ({len(report.errors)} problem(s))"
        print(f"{verdict}: {report.n_expressions} expression(s) with predictions; {checks}")
    return ExitCode.OK if report.ok else ExitCode.PROBLEMS


def cmd_synth(args: argparse.Namespace) -> int:
    """Write a synthetic benchmark in the published layout."""
    from ..synth import synthesize

    out = synthesize(args.out, scale=args.scale, seed=args.seed, frames=args.frames)
    gt = load_ground_truth(out)
    counts = ", ".join(f"{s}: {sum(1 for v in gt.videos.values() if v.split == s)} videos / "
                       f"{sum(1 for _ in gt.expressions((s,)))} expressions" for s in gt.splits)
    print(f"wrote {out} ({counts})")
    return ExitCode.OK


def cmd_synth_predict(args: argparse.Namespace) -> int:
    """Write predictions of a chosen quality for a benchmark."""
    from ..synth import synthesize_predictions

    out = synthesize_predictions(args.gt, args.out, quality=args.quality, fmt=args.format, seed=args.seed)
    print(f"wrote {out}")
    return ExitCode.OK


GT_HELP = ("ground truth: the published folder (dataset/egomask/, or dataset/ as `hf download` leaves it) "
           "or a zip of it")


def _cache_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-cache", action="store_true",
                   help="parse the ground truth again instead of using the copy kept in the cache folder "
                        "($EGOMASK_CACHE_DIR, else ~/.cache/egomask)")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _bootstrap_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--samples", type=_positive, default=stats.DEFAULT_SAMPLES,
                   help="bootstrap resamples (default %(default)s, as the leaderboard)")
    p.add_argument("--seed", type=int, default=0, help="with the ground truth's version, fixes the resamples "
                   "(default 0, as the leaderboard)")


def register(commands: Any) -> None:
    """Add the local commands to `egomask`'s subcommands (an argparse subparsers object)."""
    p = commands.add_parser("eval", help="score predictions against ground truth")
    p.add_argument("--gt", required=True, help=GT_HELP)
    p.add_argument("--pred", required=True, help="predictions: a .zip or a folder")
    p.add_argument("--split", choices=[*SPLITS, "all"], default="all")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.add_argument("--per-expression", metavar="FILE.csv", help="also write one row per expression")
    p.add_argument("--ci", action="store_true", help="also the 95%% interval of each number (cluster bootstrap "
                   "over videos, as the leaderboard computes it); with --json each split gains \"ci\"")
    _bootstrap_options(p)
    _cache_option(p)
    p.set_defaults(run=cmd_eval)

    p = commands.add_parser("compare", help="is A better than B? paired differences per split, with intervals and "
                            "p-values, and the videos that differ most")
    p.add_argument("a", help="submission A: a .zip or a folder")
    p.add_argument("b", help="submission B: a .zip or a folder")
    p.add_argument("--gt", required=True, help=GT_HELP)
    p.add_argument("--split", choices=[*SPLITS, "all"], default="all")
    p.add_argument("--metric", choices=list(METRICS), default=PRIMARY_METRIC)
    p.add_argument("--top", type=int, default=10, help="how many of the most different videos to list")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    _bootstrap_options(p)
    _cache_option(p)
    p.set_defaults(run=cmd_compare)

    p = commands.add_parser("validate", help="report every problem of a submission without scoring it")
    p.add_argument("--gt", help=f"{GT_HELP}; without it only the structural checks run")
    p.add_argument("--pred", required=True, help="predictions: a .zip or a folder")
    p.add_argument("--split", choices=[*SPLITS, "all"], default="all")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    _cache_option(p)
    p.set_defaults(run=cmd_validate)

    p = commands.add_parser("synth", help="write a synthetic benchmark in the published layout")
    p.add_argument("out", help="output folder")
    p.add_argument("--scale", choices=["tiny", "small", "full"], default="tiny")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frames", action="store_true", help="also render JPEG frames under JPEGImages/")
    p.set_defaults(run=cmd_synth)

    p = commands.add_parser("synth-predict", help="write predictions of chosen quality for a benchmark")
    p.add_argument("gt", help="ground-truth folder")
    p.add_argument("out", help="output folder, or a path ending in .zip")
    p.add_argument("--quality", choices=list(QUALITIES), default="good",
                   help="tracker: a mask on every frame, as a propagating tracker writes")
    p.add_argument("--format", choices=["rle", "png"], default="rle")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=cmd_synth_predict)
