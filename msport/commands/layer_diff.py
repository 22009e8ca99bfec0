"""msport layer-diff: run a model pair in both frameworks on one batch and compare every layer.

The model-pair options it shares with ``msport audit`` and ``compare-ckpt`` are in
:mod:`msport.commands._common`. Imports no framework at module level, so ``msport --help`` never
starts MindSpore.
"""

import os

import numpy as np

from msport.diagnose.layer_diff import MODES, SORT_KEY, TABLE_COLUMNS, layer_diff, plots_for, write_dump
from msport.diagnose.layer_diff import STAGES as LIBRARY_STAGES
from msport.diagnose.report import add_output_arguments, emit
from msport.commands._common import add_model_arguments, build_model_pair, example_inputs
from msport.errors import UserError
from msport.progress import Stages

NAME = "layer-diff"
HELP = ("run the torch and MindSpore model on one batch and compare every layer's output "
        "(and with --grads every gradient); name the first layer that departs")

DEFAULT_BATCH_SIZE = 8
DATA_SETS = ("cifar10", "digits")


# --- input batch --------------------------------------------------------------------------------

def load_batch(args, num_classes):
    """``(x float32 NCHW, labels or None, description)`` from --input, --data or a seeded random batch."""
    if args.batch_size is not None and args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.input and args.data:
        raise UserError("give --input or --data, not both")
    if args.input:
        return _batch_from_file(args.input, args.batch_size)
    batch_size = args.batch_size or DEFAULT_BATCH_SIZE
    if args.data:
        return _batch_from_data(args.data, args.data_dir, batch_size, args.seed)
    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((batch_size, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, num_classes, batch_size)
    return x, y, f"random normal batch {x.shape}, seed {args.seed}"


def _batch_from_file(path, batch_size):
    if not path.endswith(".npy"):
        raise UserError(f"{path}: --input takes a .npy file holding one array (images, token ids...)")
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such input file")
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise UserError(f"{path}: not a readable .npy array ({exc})") from exc
    if x.ndim < 1 or not np.issubdtype(x.dtype, np.number):
        raise UserError(f"{path}: expected a numeric array with a batch axis, found shape {x.shape} dtype {x.dtype}")
    if batch_size is not None:
        x = x[:batch_size]
    if np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)  # integer arrays (token ids) keep their dtype
    return np.ascontiguousarray(x), None, f"{path} {x.dtype}{x.shape}"


def _batch_from_data(name, data_dir, batch_size, seed):
    if name not in DATA_SETS:
        raise UserError(f"unknown data set {name!r}: choose one of {', '.join(DATA_SETS)}")
    try:  # msport.data is another part of msport; keep layer-diff usable without it
        from msport.data import load_dataset
        from msport.data.plan import normalize_batch
    except ImportError as exc:
        raise UserError(f"--data needs msport.data.load_dataset ({exc}); pass --input FILE.npy instead") from exc
    data = load_dataset(name, data_dir, "test")
    if len(data.labels) == 0:
        raise UserError(f"the {name} test split is empty")
    index = np.sort(np.random.default_rng(seed).choice(len(data.labels), min(batch_size, len(data.labels)),
                                                       replace=False))
    x = normalize_batch(data.images[index])
    return x, np.asarray(data.labels)[index].astype(np.int64), f"{name} test images {index.tolist()[:8]}..."


# --- command ------------------------------------------------------------------------------------------

def add_arguments(parser):
    add_model_arguments(parser)
    batch = parser.add_argument_group("input batch (default: a seeded random normal batch)")
    batch.add_argument("--input", metavar="FILE.npy",
                       help="the models' input batch as one .npy array, batch axis first: images (N, C, H, W) "
                            "(floats read as float32) or integer token ids (kept as they are)")
    batch.add_argument("--data", metavar="NAME", help=f"take the batch from a data set: {', '.join(DATA_SETS)}")
    batch.add_argument("--data-dir", help="where --data cifar10 lives")
    batch.add_argument("--batch-size", type=int, help=f"batch size (default {DEFAULT_BATCH_SIZE}; --input: all rows)")
    batch.add_argument("--seed", type=int, default=0, help="seed of the random batch, labels and --data sample")
    parser.add_argument("--grads", action="store_true",
                        help="also compare d(loss)/d(every layer output) and d(loss)/d(every parameter)")
    parser.add_argument("--train-mode", action="store_true", help="run in train mode (BatchNorm batch statistics)")
    parser.add_argument("--mode", choices=MODES, default="auto",
                        help="values (same weights), magnitude (independent inits) or auto (default)")
    parser.add_argument("--torch-loss-fn", metavar="MODULE:CALLABLE",
                        help="your torch loss, (output, labels) -> scalar (default: cross-entropy, logits only)")
    parser.add_argument("--ms-loss-fn", metavar="MODULE:CALLABLE",
                        help="your MindSpore loss, (output, labels) -> scalar (default: cross-entropy, logits only)")
    parser.add_argument("--dump", metavar="DIR",
                        help="save every captured tensor to DIR/torch.npz and DIR/mindspore.npz")
    add_output_arguments(parser)


def _check_channels(torch_module, x, batch):
    import torch

    first = next((m for m in torch_module.modules() if isinstance(m, torch.nn.Conv2d)), None)
    if first is not None and x.shape[1] != first.in_channels:
        raise UserError(f"input {batch}: {x.shape[1]} channel(s), but the model's first convolution takes "
                        f"{first.in_channels}; give an (N, {first.in_channels}, H, W) array")


def run(args):
    from msport import specs

    if args.example and (args.input or args.data):
        raise UserError("give --example, --input or --data, not several")
    if not args.example:
        x, y, batch = load_batch(args, args.num_classes)  # bad input fails before models are built
    torch_loss = specs.resolve(args.torch_loss_fn, "--torch-loss-fn") if args.torch_loss_fn else None
    ms_loss = specs.resolve(args.ms_loss_fn, "--ms-loss-fn") if args.ms_loss_fn else None
    with Stages(NAME, 1 + LIBRARY_STAGES) as progress:
        progress(f"building {args.model or 'the model pair'} in torch and MindSpore")
        torch_module, ms_cell, models = build_model_pair(args)
        if args.example:
            (x, batch), y = example_inputs(args), None
        else:
            _check_channels(torch_module, x, batch)
        result = layer_diff(torch_module, ms_cell, x, y, grads=args.grads, train_mode=args.train_mode,
                            mode=args.mode, name_map=args.name_map, torch_loss_fn=torch_loss, loss_fn=ms_loss,
                            progress=progress)
    result.notes[:0] = [models, f"input: {batch}"]
    if args.dump:
        paths = write_dump(result, args.dump, x)
        result.notes.append(f"captured tensors saved to {', '.join(paths)}")
    return emit(result, args, TABLE_COLUMNS, plots_for(result), SORT_KEY)
