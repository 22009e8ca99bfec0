"""What the trainers cost beyond computing: epoch time of each against a bare loop, one run.

    python bench/epoch_overhead.py [--config configs/digits.yaml] [--epochs 3]

For each framework, in its own process: the real ``train_torch.py`` / ``train_ms.py`` runs
``--epochs`` epochs (the first is warm-up: graph compilation, worker start), and the wall time
of each later epoch is taken between the ends of consecutive epochs, so it holds everything an
epoch costs: the data pipeline, the train steps, evaluation, logging, metrics.csv, the
checkpoint and the resume file. The bare loop then runs the same train step and evaluation over
the same batches, already materialised as framework tensors: no pipeline, no files, no logging.
Goal (issue 3): the trainer's epoch within 10% of the bare loop's.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def measure(framework, config, epochs):
    import importlib

    script = importlib.import_module("train_torch" if framework == "torch" else "train_ms")
    side = script.side
    stamps = []
    save_resume = side.save_resume

    def stamped(*a, **k):  # the last write of an epoch: its end
        save_resume(*a, **k)
        stamps.append(time.perf_counter())

    side.save_resume = stamped
    out = tempfile.mkdtemp(prefix=f"overhead-{framework}-")
    argv = ["--config", config, "--epochs", str(epochs), "--no-progress"]
    if script.main(argv + ["--output-dir", out]) != 0:
        raise SystemExit(f"{framework} trainer failed")
    trainer = min(b - a for a, b in zip(stamps, stamps[1:]))
    return {"trainer": trainer, "bare": bare_loop(side, argv)}


def bare_loop(side, argv):
    """The same steps and evaluation over pre-built tensors; best of two epochs."""
    from msport.training.config import add_arguments, resolve
    from msport.training.data import load_splits

    cfg = resolve(add_arguments(argparse.ArgumentParser()).parse_args(argv))
    device = side.setup(cfg)
    train_set, val_set = load_splits(cfg)
    train_loader = side.make_loader(train_set, cfg, train=True)
    val_loader = side.make_loader(val_set, cfg, train=False)
    train_batches, val_batches = list(train_loader), list(val_loader)  # materialised once
    model = side.build_model(cfg, device)
    optimizer = side.build_optimizer(cfg, model)
    stepper = side.Stepper(model, optimizer, cfg, device)
    best = float("inf")
    for _ in range(3):  # the first pass compiles
        start = time.perf_counter()
        side.train_mode(model, True)
        total = 0.0
        for x, y in train_batches:
            total += float(stepper(x, y, cfg.lr)[0])
        side.evaluate(model, val_batches, device)
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=os.path.join(REPO, "configs", "digits.yaml"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--child", choices=("torch", "mindspore"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.config, args.epochs)))
        return
    print(f"{args.config}, {args.epochs} epochs (first is warm-up), best epoch of the rest")
    for framework in ("torch", "mindspore"):
        out = subprocess.run([sys.executable, __file__, "--child", framework, "--config", args.config,
                              "--epochs", str(args.epochs)], capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"  {framework:<10} trainer {r['trainer']:6.2f} s/epoch   bare loop {r['bare']:6.2f} s/epoch   "
              f"overhead {100 * (r['trainer'] / r['bare'] - 1):+5.1f}%")


if __name__ == "__main__":
    main()
