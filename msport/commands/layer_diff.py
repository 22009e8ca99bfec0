"""msport layer-diff: run a model pair in both frameworks on one batch and compare every layer.

Also home of the model-pair options that ``msport audit`` and ``compare-ckpt`` share: a zoo
pair (``--model`` with ``--torch-weights``/``--ms-weights``, or fresh models from
``--torch-seed``/``--ms-init``/``--ms-seed``), or the user's own pair
(``--torch mypkg.model:build --ms mypkg.port:build``, ``--example mypkg.model:inputs``,
``--name-map FILE``, ``--copy-weights``). Imports no framework at module level, so
``msport --help`` and a .pth-only compare-ckpt never start MindSpore.
"""

import os

import numpy as np

from msport.diagnose.layer_diff import MODES, SORT_KEY, TABLE_COLUMNS, layer_diff, plots_for, write_dump
from msport.diagnose.layer_diff import STAGES as LIBRARY_STAGES
from msport.diagnose.report import add_output_arguments, emit
from msport.errors import UserError
from msport.progress import Stages

NAME = "layer-diff"
HELP = ("run the torch and MindSpore model on one batch and compare every layer's output "
        "(and with --grads every gradient); name the first layer that departs")

DEFAULT_BATCH_SIZE = 8
DATA_SETS = ("cifar10", "digits")


# --- zoo model pair (shared with msport audit) -----------------------------------------------------

def add_model_arguments(parser, required=True):
    group = parser.add_argument_group("models: a zoo pair (--model) or your own (--torch and --ms)")
    group.add_argument("--model", help="zoo model name (e.g. resnet18, resnet50)")
    group.add_argument("--torch", dest="torch_spec", metavar="MODULE:CALLABLE",
                       help="your torch model: a function returning a torch.nn.Module (e.g. mypkg.model:build)")
    group.add_argument("--ms", dest="ms_spec", metavar="MODULE:CALLABLE",
                       help="your MindSpore port: a function returning a mindspore.nn.Cell (e.g. mypkg.port:build)")
    group.add_argument("--example", metavar="MODULE:CALLABLE",
                       help="a function returning example inputs: an array, a tuple or a dict (token ids welcome)")
    group.add_argument("--name-map", metavar="FILE",
                       help="torch name -> MindSpore name, as JSON or lines 'torch_name mindspore_name' "
                            "(layer or parameter names), for names neither the registry nor the structure pairs")
    group.add_argument("--copy-weights", action="store_true",
                       help="copy the torch model's weights into the MindSpore model through the name pairing")
    group.add_argument("--num-classes", type=int, default=10)
    group.add_argument("--torch-weights", metavar="FILE",
                       help="weights for the torch model (.pth or .ckpt); alone, used for both models")
    group.add_argument("--ms-weights", metavar="FILE",
                       help="weights for the MindSpore model (.ckpt or .pth); alone, used for both models")
    group.add_argument("--torch-seed", type=int, default=0, help="torch.manual_seed for a fresh torch model")
    group.add_argument("--ms-init", default="torch", metavar="SCHEME",
                       help="msport.layers init scheme of a fresh MindSpore model, e.g. legacy for "
                            "MindSpore 1.x's Normal(0.01) (default torch)")
    group.add_argument("--ms-seed", type=int, default=0, help="mindspore.set_seed for a fresh MindSpore model")


def build_model_pair(args):
    """``(torch_module, ms_cell, description)`` from the options of :func:`add_model_arguments`."""
    import torch

    import reference_torch
    from msport._mindspore import ms
    from msport.convert import load_file_into_ms, load_file_into_torch
    from msport.layers import INIT_SCHEMES
    from msport.models import create_model, list_models

    if args.torch_spec or args.ms_spec:
        return _build_user_pair(args)
    if args.model is None:
        raise UserError("give a zoo model (--model NAME) or your own pair "
                        "(--torch MODULE:CALLABLE --ms MODULE:CALLABLE)")
    if args.copy_weights:
        raise UserError("--copy-weights is for your own pair (--torch/--ms); a zoo pair takes --torch-weights FILE")
    if args.model not in list_models():
        raise UserError(f"unknown model {args.model!r}: choose one of {', '.join(list_models())}")
    if args.ms_init not in INIT_SCHEMES:
        raise UserError(f"unknown init scheme {args.ms_init!r}: choose one of {', '.join(INIT_SCHEMES)}")
    if args.num_classes < 1:
        raise UserError(f"--num-classes must be at least 1, got {args.num_classes}")
    for path in (args.torch_weights, args.ms_weights):
        if path is not None and not os.path.isfile(path):
            raise UserError(f"{path}: no such checkpoint file")
    torch.manual_seed(args.torch_seed)
    torch_module = reference_torch.create_model(args.model, num_classes=args.num_classes)
    ms.set_seed(args.ms_seed)
    ms_cell = create_model(args.model, num_classes=args.num_classes, init=args.ms_init)
    torch_file = args.torch_weights or args.ms_weights
    ms_file = args.ms_weights or args.torch_weights
    if torch_file is None:
        return torch_module, ms_cell, (f"fresh models: torch seed {args.torch_seed}, "
                                       f"MindSpore init {args.ms_init!r} seed {args.ms_seed}")
    load_file_into_torch(torch_module, torch_file)
    load_file_into_ms(ms_cell, ms_file)
    return torch_module, ms_cell, f"weights: torch <- {torch_file}, MindSpore <- {ms_file}"


def _build_user_pair(args):
    """The user's own pair: ``--torch``/``--ms`` specs, weights from files or copied through the pairing."""
    from msport import resolve
    from msport.convert import load_file_into_ms, load_file_into_torch

    if args.model:
        raise UserError("give --model (a zoo pair) or --torch/--ms (your own), not both")
    if not (args.torch_spec and args.ms_spec):
        raise UserError("your own pair needs both --torch MODULE:CALLABLE and --ms MODULE:CALLABLE")
    for path in (args.torch_weights, args.ms_weights, args.name_map):
        if path is not None and not os.path.isfile(path):
            raise UserError(f"{path}: no such file")
    torch_module = resolve.torch_model(args.torch_spec, option="--torch")
    ms_cell = resolve.ms_model(args.ms_spec, option="--ms")
    described = [f"torch {args.torch_spec}", f"MindSpore {args.ms_spec}"]
    if args.torch_weights:
        load_file_into_torch(torch_module, args.torch_weights)
        described.append(f"torch <- {args.torch_weights}")
    if args.ms_weights:
        load_file_into_ms(ms_cell, args.ms_weights)
        described.append(f"MindSpore <- {args.ms_weights}")
    if args.copy_weights:
        from msport.diagnose.pairing import copy_torch_weights

        pairing = copy_torch_weights(torch_module, ms_cell, name_map=args.name_map)
        described.append(f"{len(pairing.params)} torch tensors copied into MindSpore through the name pairing")
    return torch_module, ms_cell, ", ".join(described)


def example_inputs(args):
    """``(inputs, description)`` from ``--example`` (the user's function), else ``(None, None)``."""
    if not getattr(args, "example", None):
        return None, None
    from msport import specs
    from msport.diagnose.capture import as_inputs, describe_inputs

    inputs = specs.call(args.example, "--example")
    positional, keywords = as_inputs(inputs)
    return inputs, f"{args.example}: {describe_inputs(positional, keywords)}"


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
    batch.add_argument("--input", metavar="FILE.npy", help="(N, 3, 32, 32) float32 batch")
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
