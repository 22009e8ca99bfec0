"""The demo's wall time with ``--parallel-runs 2`` against 1, measured side by side in one run.

    python bench/reproduce_parallel.py [--config configs/reproduce_digits.yaml] [--epochs 2] [--seeds 0 1]

Runs ``msport reproduce`` on the embedded default's configuration twice, into two fresh folders:
first one run at a time, then two at a time (each with half the cores, OMP_NUM_THREADS), and
prints both wall times and their ratio. ``--epochs`` shortens every run so the comparison fits in
minutes; the full ``make demo`` trains 3 arms x 2 seeds for the configuration's epochs. Both
invocations train the same runs, so the ratio is what the flag buys on this machine. The
machine's load is printed beside the figures: other work on a shared machine moves them.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def wall_time(config, epochs, seeds, parallel, root):
    out = os.path.join(root, f"parallel-{parallel}")
    command = [sys.executable, "-m", "msport", "reproduce", "--config", config, "--output-dir", out,
               "--epochs", str(epochs), "--seeds", *map(str, seeds), "--parallel-runs", str(parallel)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"reproduce --parallel-runs {parallel} failed: {done.stderr.strip().splitlines()[-1:]}")
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=os.path.join(REPO, "configs", "reproduce_digits.yaml"))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-reproduce-") as root:
        load = os.getloadavg()[0]
        serial = wall_time(args.config, args.epochs, args.seeds, 1, root)
        parallel = wall_time(args.config, args.epochs, args.seeds, 2, root)
    runs = 3 * len(args.seeds)
    print(f"msport reproduce, {runs} runs of {args.epochs} epochs ({os.cpu_count()} cores, load {load:.1f} "
          f"at the start, {os.getloadavg()[0]:.1f} at the end)")
    print(f"  --parallel-runs 1: {serial:7.1f} s")
    print(f"  --parallel-runs 2: {parallel:7.1f} s")
    print(f"  ratio: {serial / parallel:.2f}x faster with 2 at a time")


if __name__ == "__main__":
    main()
