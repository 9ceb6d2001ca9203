"""Fuzz the scoring library at scale: thousands of mutated submissions and ground truths (issue 9).

    python benchmarks/fuzz_scoring.py [--cases 10000] [--seed 0] [--corpus DIR] [--cap-mb 1024]
                                      [--budget-mb 256] [--json] [--atheris] [--recheck DIR]

The cases are those of tests/scoring/test_fuzz.py (tests/scoring/fuzzkit): valid inputs of the
tiny synthetic benchmark, mutated at the zip, name, JSON, RLE and PNG layers, through
open_source, validate_submission (without and with the ground truth), evaluate and
load_ground_truth. Printed: cases and cases/s, the outcomes by kind (scored, each error code),
the peak RSS, the slowest cases, and every escape (an exception that is not the library's own
error, a message that breaks a rule, a Python warning, a case that took more than --budget-mb of
memory), each with a reproducer saved under --corpus (a zip, or the zip of a folder case, and a
.json note of what was done to the valid input). The address space is capped at --cap-mb above
what the process holds once the valid inputs are made (RLIMIT_AS): a case past it is a
MemoryError, so an escape.

--atheris runs the same generator under atheris instead of random.Random: libFuzzer mutates the
bytes the generator's decisions are read from, guided by coverage of scoring/ (and zipfile and
PIL's PNG plugin); --cases is then libFuzzer's number of runs. An exception in the generator
itself is counted as "generator error" and its input kept under --corpus (generator-*.bin and
.txt). atheris' own bookkeeping grows the process (about 25 MB per 1000 runs here), so its
address-space cap is 4096 MB unless --cap-mb says otherwise; --recheck DIR runs every reproducer
in DIR again in this fresh process, under the same rules and cap (a MemoryError that does not come
back was the long run's, not the case's). Exit status 1 when anything escaped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def cap_address_space(cap_mb: int) -> int:
    """Cap the address space at cap_mb above its size now; the cap in bytes."""
    with open("/proc/self/status") as status:
        size = next(int(line.split()[1]) for line in status if line.startswith("VmSize:")) * 1024
    limit = size + cap_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
    return limit


def print_report(report: dict, cap: int, json_out: bool) -> None:
    if json_out:
        print(json.dumps({**report, "address_space_cap_mb": round(cap / 2**20)}, indent=1))
        return
    print(f"{report['cases']} cases in {report['seconds']} s: {report['cases_per_second']} cases/s")
    print(f"peak RSS {report['peak_rss_mb']} MB (address space capped at {cap / 2**20:.0f} MB)")
    print("outcomes:")
    for outcome, count in report["outcomes"].items():
        print(f"  {outcome:24} {count:6}")
    print("slowest cases:" if report["slowest"] else "", end="\n" if report["slowest"] else "")
    for slow in report["slowest"]:
        print(f"  {slow['seconds']:6.2f} s  {slow['outcome']:16} {slow['steps'][:150]}")
    escapes = report["escapes"]
    print(f"escapes: {len(escapes)}")
    for escape in escapes:
        print(f"  {escape['escape'][:300]}\n    reproducer {escape['reproducer']}\n    steps: {escape['steps'][:300]}")


def run_random(args: argparse.Namespace) -> int:
    from tests.scoring.fuzzkit import RandomChooser, load_reproducer, make_case, materials, run_many

    work = Path(tempfile.mkdtemp(prefix="egomask-fuzz-"))
    m = materials(work / "materials")
    cap = cap_address_space(args.cap_mb or 1024)
    rng = random.Random(args.seed)
    if args.recheck:
        found = sorted(Path(args.recheck).glob("*.zip"))
        report = run_many((load_reproducer(p) for p in found), m, work, Path(args.corpus),
                          budget_mb=args.budget_mb).as_dict()
        print_report(report, cap, args.json)
        return 1 if report["escapes"] else 0

    def progress(number: int, case: object, result: object) -> None:
        if not args.json and (number + 1) % 1000 == 0:
            print(f"  ... {number + 1} cases", file=sys.stderr, flush=True)

    cases = (make_case(RandomChooser(rng), m) for _ in range(args.cases))
    report = run_many(cases, m, work, Path(args.corpus), on_case=progress, budget_mb=args.budget_mb).as_dict()
    print_report(report, cap, args.json)
    return 1 if report["escapes"] else 0


def run_atheris(args: argparse.Namespace) -> int:
    try:
        import atheris
    except ImportError:
        sys.exit("--atheris needs atheris (pip install atheris): it is in the dev extra for Linux")
    with atheris.instrument_imports(include=["scoring", "zipfile", "PIL.PngImagePlugin", "tests.scoring.fuzzkit"]):
        import PIL.PngImagePlugin  # noqa: F401 - scoring imports it lazily: instrumented only if imported here
        import zipfile  # noqa: F401

        import scoring  # noqa: F401
        from tests.scoring.fuzzkit import AtherisChooser, make_case, materials
        from tests.scoring.fuzzkit.runner import Report, run_case, save_reproducer

    work = Path(tempfile.mkdtemp(prefix="egomask-fuzz-"))
    m = materials(work / "materials")
    cap = cap_address_space(args.cap_mb or 4096)
    report = Report()
    start = time.perf_counter()

    def one_input(data: bytes) -> None:
        try:
            case = make_case(AtherisChooser(atheris.FuzzedDataProvider(data)), m)
        except Exception as exc:  # noqa: BLE001 - a bug of the generator, not of the library: kept, and the run goes on
            report.outcomes["generator error"] += 1
            kept = Path(args.corpus) / f"generator-{hashlib.sha256(data).hexdigest()[:12]}"
            kept.with_suffix(".bin").write_bytes(data)
            kept.with_suffix(".txt").write_text("".join(traceback.format_exception(exc)))
            return
        result = run_case(case, m, work)
        report.cases += 1
        report.outcomes[result.outcome] += 1
        if result.escapes:
            where = str(save_reproducer(case, result, Path(args.corpus)))
            report.escapes += [(where, escape, " | ".join(case.steps)) for escape in result.escapes]
        if report.cases == args.cases:  # libFuzzer ends the process itself once its runs are done
            report.seconds = time.perf_counter() - start
            report.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print_report(report.as_dict(), cap, args.json)
            sys.stdout.flush()
            os._exit(1 if report.escapes else 0)

    # libFuzzer's own memory limit off: the address-space cap above is the one that counts. Its crash
    # files (an exception in the generator itself) go beside the reproducers, not into the working folder.
    Path(args.corpus).mkdir(parents=True, exist_ok=True)
    atheris.Setup([sys.argv[0], f"-runs={args.cases + 1}", f"-seed={args.seed + 1}", "-max_len=4096",
                   "-len_control=0", "-rss_limit_mb=0", f"-artifact_prefix={Path(args.corpus).resolve()}/"],
                  one_input)
    atheris.Fuzz()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corpus", default=str(ROOT / "benchmarks" / "data" / "fuzz-corpus"),
                        help="where reproducers of escapes are saved")
    parser.add_argument("--cap-mb", type=int,
                        help="address space the cases may add (RLIMIT_AS): 1024, or 4096 with --atheris")
    parser.add_argument("--budget-mb", type=int, default=256, help="resident memory one case may add")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--atheris", action="store_true", help="coverage-guided, under atheris")
    parser.add_argument("--recheck", metavar="DIR", help="run the reproducers saved in DIR again instead")
    args = parser.parse_args()
    return run_atheris(args) if args.atheris else run_random(args)


if __name__ == "__main__":
    sys.exit(main())
