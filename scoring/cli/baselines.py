"""`egomask run-baseline`: run a reference model runner on the benchmark's public inputs.

    egomask run-baseline --list [--json]
    egomask run-baseline NAME --inputs META --frames DIR [--weights DIR] --out OUT[.zip]
                         [--device auto|cuda|cpu] [--shard i/n] [--split S] [--option KEY=VALUE ...]
    egomask run-baseline --merge OUT.zip SHARD [SHARD ...]

A run resumes: the same command again after an interruption skips the expressions already
written. `--shard i/n` runs one n-th of the videos (the same n-th on every machine); the shards
either share one output folder, or each writes its own zip and `--merge` joins them.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .exits import CommandError, ExitCode


def _options(pairs: list[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"--option takes KEY=VALUE, not {pair!r}")
        options[key.strip()] = value.strip()
    return options


def _device(requested: str, devices: tuple[str, ...]) -> str:
    """`auto`: CUDA where the runner can use it and torch sees a GPU, else the CPU."""
    if requested != "auto":
        return requested
    if "cuda" in devices:
        try:
            import torch

            if torch.cuda.is_available():
                return "cuda"
        except ImportError:
            pass
    return "cpu" if "cpu" in devices else devices[0]


def _list(args: argparse.Namespace) -> int:
    from ..runners import RUNNERS

    listing = [runner.listing() for runner in RUNNERS.values()]
    if args.json:
        print(json.dumps(listing))
        return ExitCode.OK
    from rich.console import Console
    from rich.table import Table

    table = Table("runner", "version", "weights", "devices", "what it does", show_lines=False)
    for row in listing:
        table.add_row(str(row["name"]), str(row["version"]), "needed" if row["needs_weights"] else "none",
                      ", ".join(row["devices"]), str(row["description"]))  # type: ignore[arg-type]
    Console(highlight=False, markup=False, emoji=False).print(table)
    return ExitCode.OK


class _Display:
    """A rich progress bar on stderr: expressions done, frame-expressions per second, time left."""

    def __init__(self, title: str, quiet: bool) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[eta]}"), TimeElapsedColumn(),
                            console=Console(stderr=True, highlight=False, markup=False, emoji=False),
                            disable=quiet, transient=False)
        self.title = title
        self.task: Any = None

    def __enter__(self) -> _Display:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.task is not None:  # the bar starts with the first expression, so an error is the only line
            self.bar.__exit__(*exc)  # type: ignore[arg-type]

    def __call__(self, state: Any) -> None:
        if self.task is None:
            self.bar.__enter__()
            self.task = self.bar.add_task(self.title, total=state.expressions, rate="", eta="")
        rate = state.frames_per_second
        left = state.frames - state.done_frames
        eta = f"{left / rate:,.0f} s left" if rate > 0 and left else ""
        self.bar.update(self.task, completed=state.done_expressions,
                        rate=f"{rate:,.1f} frames/s" if rate else "", eta=eta)


def _merge(args: argparse.Namespace) -> int:
    from ..runners import RunnerError, merge

    if len(args.merge) < 2:
        raise CommandError("--merge takes the zip to write, then the shards' zips or folders")
    try:
        out = merge(args.merge[1:], args.merge[0])
    except RunnerError as exc:
        raise CommandError(str(exc)) from None
    print(f"wrote {out} from {len(args.merge) - 1} shard(s)")
    return ExitCode.OK


def cmd_run_baseline(args: argparse.Namespace) -> int:
    if args.list:
        return _list(args)
    if args.merge:
        return _merge(args)
    if not args.name:
        raise CommandError("name a runner (egomask run-baseline --list shows them)")
    missing = [flag for flag, value in (("--inputs", args.inputs), ("--frames", args.frames), ("--out", args.out))
               if not value]
    if missing:
        raise CommandError(f"run-baseline {args.name} needs {', '.join(missing)}")
    from ..runners import RunnerError, get_runner, load_jobs, run
    from ..runners.base import parse_shard

    try:
        runner = get_runner(args.name)
        shard_of = parse_shard(args.shard)
        jobs = load_jobs(args.inputs, split=args.split)
        device = _device(args.device, runner.devices)
        options = _options(args.option)
        title = f"{runner.name} {runner.version} on {device}" + (f", shard {args.shard}" if shard_of[1] > 1 else "")
        with _Display(title, args.quiet or args.json) as display:
            report = run(runner, jobs=jobs, frames=args.frames, out=args.out, device=device, weights=args.weights,
                         options=options, shard_of=shard_of, progress=display)
    except RunnerError as exc:
        raise CommandError(str(exc)) from None
    except KeyboardInterrupt:
        print(f"egomask: interrupted; the expressions written so far are kept: run the same command again to "
              f"resume ({args.out})", file=sys.stderr, flush=True)
        return ExitCode.INTERRUPTED
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        resumed = f" ({report.skipped_expressions} already done)" if report.skipped_expressions else ""
        print(f"{report.runner} {report.version} on {report.device}: {report.expressions} expression(s){resumed}, "
              f"{report.frames:,} frame-expressions, {report.masks:,} masks written in {report.seconds:.1f} s "
              f"({report.frames_per_second:,.1f} frames/s) -> {report.out}")
    return ExitCode.OK


def register(commands: Any) -> None:
    """Add `run-baseline` to `egomask`'s subcommands."""
    p = commands.add_parser("run-baseline", help="run a reference model runner and write a submission")
    p.add_argument("name", nargs="?", help="the runner (see --list)")
    p.add_argument("--list", action="store_true", help="list the runners")
    p.add_argument("--merge", nargs="+", metavar="PATH", help="OUT.zip SHARD...: join the shards of one run")
    p.add_argument("--json", action="store_true", help="--list: a JSON list; a run: its report as one JSON object")
    p.add_argument("--inputs", metavar="META", help="meta_expressions.json (the whole benchmark's, or a split's)")
    p.add_argument("--frames", metavar="DIR", help="the frames: DIR/<clip>/<frame>.jpg, or DIR/JPEGImages/...")
    p.add_argument("--weights", metavar="DIR", help="the runner's weights, a local folder (docs/runners.md)")
    p.add_argument("--out", metavar="OUT", help="a folder, or OUT.zip (built in OUT.partial/ until it is done)")
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto",
                   help="auto: CUDA when the runner can use it and there is a GPU, else the CPU")
    p.add_argument("--shard", default="0/1", metavar="i/n", help="run shard i of n (whole videos, balanced)")
    p.add_argument("--split", choices=["short", "medium", "long"], help="only this split's videos")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="a runner option (see --list)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_run_baseline)
