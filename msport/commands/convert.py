"""msport convert SRC DST: torch <-> MindSpore checkpoints with explicit rules and a report of what has no twin.

SRC and DST are ``.pth``/``.pt``, ``.ckpt`` or ``.safetensors`` (SRC also a sharded
``model.safetensors.index.json``); a ``.safetensors`` DST holds the other side's names.
"""

import os

from msport.progress import Stages
from msport.resolve import SPEC_HELP

NAME = "convert"
HELP = "convert a PyTorch checkpoint (.pth, .safetensors) to a MindSpore one (.ckpt, .safetensors) or back"


def add_arguments(parser):
    parser.add_argument("src", help="checkpoint to read: .pth/.pt, .ckpt, .safetensors or model.safetensors.index.json")
    parser.add_argument("dst", help="checkpoint to write: .pth/.pt, .ckpt, or .safetensors (the other side's names)")
    parser.add_argument("--model", help="model of DST's framework to check names and shapes against: "
                                        + SPEC_HELP)
    parser.add_argument("--num-classes", type=int, default=10, help="classifier outputs of a zoo --model (default: 10)")
    parser.add_argument("--overwrite", action="store_true", help="replace DST if it exists")


def run(args):
    from msport import checkpoints, resolve
    from msport.convert import ConversionError, check_destination, convert_file, destination_kind

    checkpoints.require_file(args.src)
    check_destination(args.dst, args.overwrite, inputs=(args.src,))
    if args.num_classes < 1:
        raise ConversionError(f"--num-classes must be at least 1, got {args.num_classes}")
    model = None
    if args.model:  # the model DST's names and shapes are checked against, in DST's framework
        framework = destination_kind(checkpoints.open_checkpoint(args.src, verify=False).kind, args.dst)
        resolve.check_name(args.model, framework)
        model = resolve.model(args.model, framework, num_classes=args.num_classes)
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


def _size(path):
    return f" ({os.path.getsize(path) / 2**20:.0f} MiB)" if os.path.isfile(path) else ""
