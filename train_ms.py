"""Train a zoo model with MindSpore: the port half of a paired run.

    python train_ms.py --config configs/digits.yaml [--epochs 5 --seed 1 --init legacy ...]
    python train_ms.py --data cifar10 --data-dir ~/data --model resnet50 --epochs 200

``train_torch.py`` is the same script for PyTorch; ``diff train_torch.py
train_ms.py`` shows only the framework. Writes RUN/config.yaml, metrics.csv,
best.json and checkpoint/{prefix}-{epoch}_{steps}.ckpt; ``--resume`` continues
from the newest finished epoch.
"""

import argparse
import sys

from msport.errors import UserError
from msport.training import ms_side as side
from msport.training.config import add_arguments, resolve, run_dir
from msport.training.data import load_splits
from msport.training.loop import train
from msport.training.run import Run


def main(argv=None):
    # ---- config ------------------------------------------------------------------------
    parser = add_arguments(argparse.ArgumentParser(description="Train a zoo model with MindSpore."))
    try:
        cfg = resolve(parser.parse_args(argv))
        device = side.setup(cfg)
        run = Run.open(run_dir(cfg, side.FRAMEWORK), cfg, side.RESUME_FILE, write=side.world().is_main)
        # ---- data --------------------------------------------------------------------------
        train_set, val_set = load_splits(cfg)
        train_loader = side.make_loader(train_set, cfg, train=True)
        val_loader = side.make_loader(val_set, cfg, train=False)
        # ---- model and optimiser -------------------------------------------------------------
        model = side.build_model(cfg, device)
        optimizer = side.build_optimizer(cfg, model)
        # ---- loop, eval, checkpoint ------------------------------------------------------------
        train(side, run, model, optimizer, train_loader, val_loader, device)
    except UserError as exc:
        print(f"train_ms.py: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
