"""msport audit: check a MindSpore port (a zoo model's or your own) for porting mistakes without training.

For every registered layer type: init distributions against torch's defaults, norm eps and
BatchNorm momentum, padding (probed), Dropout p, GELU approximation, bias presence; and, when
asked, the optimizer's weight-decay coverage and the loss's defaults.
``--optimizer`` and ``--ms-loss`` build them the way a port usually writes them,
so the audit shows what that code really does.
"""

from msport.commands._common import add_model_arguments, build_model_pair, example_inputs
from msport.diagnose.audit import DEFAULT_INPUT_SHAPE, PLOTS, SORT_KEY, TABLE_COLUMNS, audit
from msport.diagnose.audit import STAGES as LIBRARY_STAGES
from msport.diagnose.report import add_output_arguments, emit
from msport.errors import UserError
from msport.progress import Stages

NAME = "audit"
HELP = ("check a MindSpore port against its torch twin without training: init, norm eps/momentum, padding, "
        "dropout, bias, weight decay, loss")

OPTIMIZERS = ("momentum", "sgd")
#: The losses a port typically writes, by --ms-loss name (built by _build_loss).
MS_LOSSES = {
    "softmax-ce": "nn.SoftmaxCrossEntropyWithLogits() (MindSpore defaults: sparse=False, reduction='none')",
    "softmax-ce-sparse-mean": "nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction='mean')",
    "cross-entropy": "nn.CrossEntropyLoss() (mean over integer labels)",
}


def add_arguments(parser):
    add_model_arguments(parser)
    parser.add_argument("--input-shape", default=",".join(map(str, DEFAULT_INPUT_SHAPE)),
                        help="random float probe batch shape N,C,H,W (default %(default)s); --example gives real "
                             "inputs instead")
    parser.add_argument("--optimizer", choices=OPTIMIZERS,
                        help="check weight decay of MindSpore's nn.Momentum / nn.SGD built over "
                             "net.trainable_params() (a plain list, as most ports write it)")
    parser.add_argument("--weight-decay", type=float, default=5e-4, help="its weight decay (default %(default)g)")
    parser.add_argument("--grouped-decay", action="store_true",
                        help="build it with an explicit parameter group instead (the fix)")
    parser.add_argument("--ms-loss", choices=sorted(MS_LOSSES),
                        help="check a MindSpore loss against torch's CrossEntropyLoss(): "
                             + "; ".join(f"{k} = {v}" for k, v in MS_LOSSES.items()))
    parser.add_argument("--recipe", metavar="MODULE:CALLABLE",
                        help="your training recipe: called as f(torch_model, ms_model), it returns a dict of audit "
                             "keywords (optimizer, torch_optimizer, torch_scheduler, lr_schedule, loss_fn, "
                             "torch_loss_fn); checks the optimizer class and hyperparameters, lr and weight decay "
                             "per parameter, the schedule and the loss configuration")
    group = parser.add_argument_group("the data check: per-channel mean and std of a batch from each input pipeline")
    group.add_argument("--torch-data", metavar="MODULE:CALLABLE",
                       help="a function returning the torchvision transform (or torch Dataset) the model was trained with")
    group.add_argument("--ms-data", metavar="MODULE:CALLABLE",
                       help="a function returning the port's MindSpore ops (or mindspore.dataset pipeline)")
    group.add_argument("--data-images", metavar="DIR",
                       help="images for the data check (default: scikit-learn's two sample photos)")
    add_output_arguments(parser)


RECIPE_KEYS = ("optimizer", "torch_optimizer", "torch_scheduler", "lr_schedule", "loss_fn", "torch_loss_fn")


def _recipe(spec, torch_module, ms_cell):
    from msport import specs

    function = specs.resolve(spec, "--recipe")
    try:
        found = function(torch_module, ms_cell)
    except Exception as exc:  # the user's recipe failed: one line, not our traceback
        raise UserError(f"--recipe {spec!r} failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(found, dict) or set(found) - set(RECIPE_KEYS):
        raise UserError(f"--recipe {spec!r} must return a dict with keys among {', '.join(RECIPE_KEYS)}")
    return found


def run(args):
    input_shape = _parse_shape(args.input_shape)
    with Stages(NAME, 1 + LIBRARY_STAGES) as progress:
        progress(f"building {args.model or 'the model pair'} in torch and MindSpore")
        torch_module, ms_cell, models = build_model_pair(args)
        inputs, described = example_inputs(args)
        recipe = {"optimizer": _build_optimizer(ms_cell, args) if args.optimizer else None,
                  "loss_fn": _build_loss(args.ms_loss) if args.ms_loss else None}
        if args.recipe:
            recipe.update(_recipe(args.recipe, torch_module, ms_cell))
        trained = bool(args.torch_weights or args.ms_weights or args.copy_weights)
        result = audit(torch_module, ms_cell, inputs=inputs, input_shape=input_shape, check_init=not trained,
                       name_map=args.name_map, data=_data_pipelines(args), progress=progress, **recipe)
    result.notes.insert(0, models)
    if described:
        result.notes = [f"probe input: {described}" if n.startswith("probe input:") else n for n in result.notes]
    return emit(result, args, TABLE_COLUMNS, PLOTS, SORT_KEY)


def _data_pipelines(args):
    """(torch pipeline, MindSpore pipeline, images) for audit's data check, or None."""
    if not (args.torch_data or args.ms_data):
        return None
    if not (args.torch_data and args.ms_data):
        raise UserError("the data check needs both --torch-data and --ms-data")
    from msport.commands.compare_data import side
    from msport.diagnose.compare_data import load_images

    return side(args.torch_data, "--torch-data"), side(args.ms_data, "--ms-data"), load_images(args.data_images)


def _parse_shape(text):
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) < 2 or min(shape) < 1:
        raise UserError(f"--input-shape must be positive integers N,C[,H,W...], got {text!r}")
    return shape


def _build_optimizer(ms_cell, args):
    from msport._mindspore import nn

    params = ms_cell.trainable_params()
    if args.grouped_decay:
        params = [{"params": params, "weight_decay": args.weight_decay}]
        weight_decay = 0.0
    else:
        weight_decay = args.weight_decay
    if args.optimizer == "momentum":
        return nn.Momentum(params, learning_rate=0.1, momentum=0.9, weight_decay=weight_decay)
    return nn.SGD(params, learning_rate=0.1, momentum=0.9, weight_decay=weight_decay)


def _build_loss(name):
    from msport._mindspore import nn

    if name == "softmax-ce":
        return nn.SoftmaxCrossEntropyWithLogits()
    if name == "softmax-ce-sparse-mean":
        return nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    return nn.CrossEntropyLoss()
