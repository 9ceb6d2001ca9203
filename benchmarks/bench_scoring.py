"""Time `egomask eval` against a straightforward dense implementation on the full synthetic set.

    python benchmarks/bench_scoring.py [--scale full] [--data benchmarks/data] [--quality good]

Builds (or reuses) the synthetic ground truth and predictions, then runs each implementation in
its own process and prints: wall time of each, the ratio, the peak RSS of each, and the largest
per-expression difference between the two. Targets (2-core machine, full scale): all splits
<= 3 s wall, >= 20x faster than dense, peak RSS <= 300 MB, largest difference <= 1e-9.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
METRICS = ("T_recall", "IoU_all", "IoU_gold", "IoU_gold_pred")

DENSE = """
import json, sys
from tests.scoring.dense import evaluate_dense
results = evaluate_dense(sys.argv[1], sys.argv[2])
print(json.dumps([[*key, values] for key, values in results.items()]))
"""


def run(command: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout) of a child process."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=ROOT)
    assert child.stdout is not None
    out = child.stdout.read().decode()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    child.returncode = code
    if code != 0:
        sys.exit(f"{' '.join(command)} failed with exit code {code}")
    return wall, usage.ru_maxrss / 1024, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="full", choices=["tiny", "small", "full"])
    parser.add_argument("--data", default=str(ROOT / "benchmarks" / "data"))
    parser.add_argument("--quality", default="good", choices=["perfect", "good", "noisy"])
    args = parser.parse_args()

    data = Path(args.data) / args.scale
    gt, pred = data / "gt", data / f"pred-{args.quality}"
    egomask = [sys.executable, "-m", "scoring.cli"]
    if not (gt / "meta_expressions.json").exists():
        subprocess.run([*egomask, "synth", str(gt), "--scale", args.scale, "--seed", "0"], check=True)
    if not pred.exists():
        subprocess.run([*egomask, "synth-predict", str(gt), str(pred), "--quality", args.quality, "--seed", "1"],
                       check=True)

    rows_csv = data / "per-expression.csv"
    fast_wall, fast_rss, fast_out = run([*egomask, "eval", "--gt", str(gt), "--pred", str(pred), "--json",
                                         "--per-expression", str(rows_csv)])
    dense_wall, dense_rss, dense_out = run([sys.executable, "-c", DENSE, str(gt), str(pred)])

    fast = {(r["split"], r["video"], r["exp_id"]): r for r in csv.DictReader(rows_csv.open())}
    dense = {(s, v, e): values for s, v, e, values in json.loads(dense_out)}
    if set(fast) != set(dense):
        sys.exit(f"the two implementations scored different expressions: {len(fast)} vs {len(dense)}")
    largest = max(abs(float(fast[key][m]) - dense[key][m]) for key in fast for m in METRICS)

    summary = json.loads(fast_out)
    print(f"benchmark: scale={args.scale} quality={args.quality} expressions={len(fast)}")
    for split, values in summary.items():
        print(f"  {split:8s} " + "  ".join(f"{m}={values[m]:.4f}" for m in METRICS))
    print(f"egomask eval : {fast_wall:8.2f} s wall  {fast_rss:7.1f} MB peak RSS")
    print(f"dense        : {dense_wall:8.2f} s wall  {dense_rss:7.1f} MB peak RSS")
    print(f"speed-up     : {dense_wall / fast_wall:8.1f}x")
    print(f"largest per-expression difference: {largest:.3e}")
    if args.scale == "full":
        checks = [
            ("all splits <= 3 s", fast_wall <= 3.0),
            (">= 20x faster than dense", dense_wall / fast_wall >= 20),
            ("peak RSS <= 300 MB", fast_rss <= 300),
            ("largest difference <= 1e-9", largest <= 1e-9),
        ]
        for label, ok in checks:
            print(f"  [{'PASS' if ok else 'FAIL'}] {label}")


if __name__ == "__main__":
    main()
