"""Data parallel on the CPU: one process with 2 threads against 2 ranks with 1 thread each, one run.

    python bench/data_parallel.py [--config configs/digits.yaml] [--epochs 3] [--frameworks torch mindspore]

For each framework the real trainer runs ``--epochs`` epochs twice, one configuration right after
the other: ``python train_*.py`` with OMP_NUM_THREADS=2, then ``torchrun --nproc-per-node 2`` /
``msrun --worker_num 2`` with OMP_NUM_THREADS=1 per rank. The same global batch, so the same
images per step. Throughput is metrics.csv's ``images_per_second`` (all ranks' images over rank 0's
training time, the epoch's pipeline and steps, evaluation excluded), best epoch after the first (the
first compiles and starts workers). Goal (issue 10): world 2 >= 0.8x world 1 in both frameworks,
which bounds what the gradient all-reduce costs. One process with 1 thread is printed for
context: on a busy machine a 2-thread process can lose far more to its threads waiting on each
other than two 1-thread ranks lose to the all-reduce. The machine's load is printed beside the
figures: other work on a shared machine moves them.
"""

import argparse
import csv
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from msport.training.parallel import free_port, launch_command, launcher_env  # noqa: E402

SCRIPTS = {"torch": "train_torch.py", "mindspore": "train_ms.py"}
GOAL = 0.8


def images_per_second(framework, world, config, epochs, threads):
    out = tempfile.mkdtemp(prefix=f"dp-{framework}-w{world}-")
    script = os.path.join(REPO, SCRIPTS[framework])
    argv = ["--config", config, "--epochs", str(epochs), "--no-progress", "--output-dir", os.path.join(out, "run")]
    env = launcher_env()
    env["PYTHONPATH"] = os.pathsep.join([REPO, env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = str(threads)
    if world == 1:
        cmd = [sys.executable, script]
    else:
        cmd = launch_command(script, world, framework=framework, port=free_port(), log_dir=os.path.join(out, "logs"))
    done = subprocess.run(cmd + argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{framework} at world {world} failed:\n{done.stdout[-3000:]}")
    with open(os.path.join(out, "run", "metrics.csv"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    return max(float(r["images_per_second"]) for r in rows[1:] or rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=os.path.join(REPO, "configs", "digits.yaml"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--frameworks", nargs="+", default=list(SCRIPTS), choices=list(SCRIPTS))
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores", flush=True)
    print(f"{'framework':<10} {'1 proc x 2 threads':>19} {'2 ranks x 1 thread':>19} {'ratio':>7}  goal >= {GOAL}"
          f"   (context: 1 proc x 1 thread)")
    for framework in args.frameworks:
        one = images_per_second(framework, 1, args.config, args.epochs, threads=2)
        two = images_per_second(framework, 2, args.config, args.epochs, threads=1)
        single_thread = images_per_second(framework, 1, args.config, args.epochs, threads=1)
        verdict = "met" if two >= GOAL * one else "NOT met"
        print(f"{framework:<10} {one:>13.0f} img/s {two:>13.0f} img/s {two / one:>6.2f}x  {verdict:<7}   "
              f"{single_thread:.0f} img/s", flush=True)
    print(f"load after: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
