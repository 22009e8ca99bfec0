"""The data both trainers load: train and validation splits of the configured source."""

import os

from msport.data import DataError, download_cifar10, load_dataset
from msport.errors import UserError


def load_splits(cfg):
    """(train, val) ArrayDatasets; data errors become one-line user errors."""
    if ":" in cfg.data:
        raise UserError(f"data {cfg.data!r}: a module:callable source is for parity-train; the trainers read "
                        f"digits or cifar10")
    try:
        root = cfg.data_dir
        if cfg.data == "cifar10" and cfg.download:
            # cfg keeps data_dir as asked (None): config.yaml records the request, which a rerun compares
            root = root or os.path.join("data", "cifar10")
            download_cifar10(root)
        # The digits split uses its own fixed seed, so runs of different seeds share one split.
        return load_dataset(cfg.data, root, "train"), load_dataset(cfg.data, root, "val")
    except DataError as exc:
        raise UserError(str(exc)) from exc
