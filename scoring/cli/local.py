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

from ..errors import ScoringWarning
from ..evaluation import ExpressionResult, evaluate, validate_submission
from ..groundtruth import SPLITS, GroundTruth, load_ground_truth
from ..metrics import METRICS, MetricSummary
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


def cmd_eval(args: argparse.Namespace) -> int:
    """Score predictions against ground truth: a table, or one JSON object with --json."""
    gt = _ground_truth(args)
    try:
        result = evaluate(gt, args.pred, split=args.split)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    _say_root(result.root)
    _print_warnings(result.warnings, sys.stderr)
    if args.per_expression:
        _write_csv(args.per_expression, result.expressions)
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print(_table(dict(result.summaries)))
        print(f"\nscorer {result.scorer_version}, ground truth {result.gt_version[:12]}")
    return ExitCode.OK


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


def register(commands: Any) -> None:
    """Add the local commands to `egomask`'s subcommands (an argparse subparsers object)."""
    p = commands.add_parser("eval", help="score predictions against ground truth")
    p.add_argument("--gt", required=True, help=GT_HELP)
    p.add_argument("--pred", required=True, help="predictions: a .zip or a folder")
    p.add_argument("--split", choices=[*SPLITS, "all"], default="all")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.add_argument("--per-expression", metavar="FILE.csv", help="also write one row per expression")
    _cache_option(p)
    p.set_defaults(run=cmd_eval)

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
