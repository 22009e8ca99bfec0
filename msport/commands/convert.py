"""msport convert SRC DST: torch <-> MindSpore checkpoints with explicit rules and a report of what has no twin.

SRC and DST are ``.pth``/``.pt``, ``.ckpt`` or ``.safetensors`` (SRC also a sharded
``model.safetensors.index.json``); a ``.safetensors`` DST holds the other side's names.
"""

import os

from msport.progress import Stages

NAME = "convert"
HELP = "convert a PyTorch checkpoint (.pth, .safetensors) to a MindSpore one (.ckpt, .safetensors) or back"


def add_arguments(parser):
    parser.add_argument("src", help="checkpoint to read: .pth/.pt, .ckpt, .safetensors or model.safetensors.index.json")
    parser.add_argument("dst", help="checkpoint to write: .pth/.pt, .ckpt, or .safetensors (the other side's names)")
    parser.add_argument("--model", help="model to check names and shapes against: a zoo name (e.g. resnet50), or "
                                        "MODULE:CALLABLE returning your model of DST's framework")
    parser.add_argument("--num-classes", type=int, default=10, help="classifier outputs of a zoo --model (default: 10)")
    parser.add_argument("--overwrite", action="store_true", help="replace DST if it exists")


def run(args):
    from msport import checkpoints
    from msport.convert import ConversionError, check_destination, convert_file, destination_kind

    checkpoints.require_file(args.src)
    check_destination(args.dst, args.overwrite, inputs=(args.src,))
    if args.num_classes < 1:
        raise ConversionError(f"--num-classes must be at least 1, got {args.num_classes}")
    model = None
    if args.model:
        src_kind = checkpoints.open_checkpoint(args.src, verify=False).kind
        model = _build_model(args.model, destination_kind(src_kind, args.dst), args.num_classes)
    with Stages(NAME, 1) as progress:  # one call: a large checkpoint takes a while to read and write
        progress(f"{args.src}{_size(args.src)} -> {args.dst}")
        report = convert_file(args.src, args.dst, model=model, overwrite=args.overwrite)
    print(f"wrote {args.dst}")
    for line in report.lines():
        print(f"  {line}")
    if args.model is None:
        print("  structure checked (BatchNorm tensors, biases); completeness against an architecture was not: "
              "pass --model NAME for that")
    return 0


def _build_model(spec, kind, num_classes):
    """The model of framework ``kind`` that ``--model`` names (a zoo name or MODULE:CALLABLE)."""
    from msport import specs

    if ":" in spec:
        return specs.ms_model(spec, "--model") if kind == "mindspore" else specs.torch_model(spec, "--model")
    if kind == "mindspore":
        from msport.models import create_model, list_models
    else:
        from reference_torch import create_model, list_models
    if spec not in list_models():
        from msport.errors import UserError

        raise UserError(f"unknown model {spec!r}: choose one of {', '.join(list_models())}")
    return create_model(spec, num_classes=num_classes)


def _size(path):
    return f" ({os.path.getsize(path) / 2**20:.0f} MiB)" if os.path.isfile(path) else ""
