"""Train a model with PyTorch: the reference half of a paired run.

    python train_torch.py --config configs/digits.yaml [--epochs 5 --seed 1 ...]
    python train_torch.py --data cifar10 --data-dir ~/data --model resnet50 --epochs 200

``train_ms.py`` is the same script for MindSpore; ``diff train_torch.py
train_ms.py`` shows only the framework. Writes RUN/config.yaml, metrics.csv,
best.json and checkpoint/{epoch}_{val_acc}_{model}.pth; ``--resume`` continues
from the newest finished epoch.
"""

import sys

from msport.errors import OneLineParser, run_guarded
from msport.training.config import TORCH, add_arguments, resolve, run_dir
from msport.training.data import load_splits
from msport.training.loop import check_forward, train
from msport.training.run import RESUME_FILES, Run


def main(argv=None):
    # ---- config ------------------------------------------------------------------------
    parser = add_arguments(OneLineParser(prog="train_torch.py", description="Train a model (a zoo name, port:DIR or "
                                                               "module:callable) with PyTorch."), TORCH)
    args = parser.parse_args(argv)

    def run():
        cfg = resolve(args)
        Run.check(run_dir(cfg, "torch"), cfg, RESUME_FILES["torch"])  # a refusal comes before the framework loads
        from msport.training import torch_side as side

        device = side.setup(cfg)
        # ---- data --------------------------------------------------------------------------
        train_set, val_set = load_splits(cfg)
        train_loader = side.make_loader(train_set, cfg, train=True)
        val_loader = side.make_loader(val_set, cfg, train=False)
        # ---- model and optimiser -------------------------------------------------------------
        model = side.build_model(cfg, device)
        check_forward(side, model, val_set, cfg, device)  # the user's model on this data, before any write
        optimizer = side.build_optimizer(cfg, model)
        # ---- run folder: checked, locked and first written only now that all input is valid ----
        run = Run.open(run_dir(cfg, side.FRAMEWORK), cfg, side.RESUME_FILE, write=side.world().is_main,
                       restore=lambda path, epoch: side.load_resume(model, optimizer, path, epoch))
        # ---- loop, eval, checkpoint ------------------------------------------------------------
        train(side, run, model, optimizer, train_loader, val_loader, device)
        return 0

    return run_guarded("train_torch.py", run)


if __name__ == "__main__":
    sys.exit(main())
