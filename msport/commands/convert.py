"""msport convert SRC DST: .pth <-> .ckpt with explicit rules and a report of what has no twin."""

import os

from msport.convert import convert_file
from msport.progress import Stages
from msport.resolve import SPEC_HELP

NAME = "convert"
HELP = "convert a PyTorch .pth to a MindSpore .ckpt or back"


def add_arguments(parser):
    parser.add_argument("src", help="checkpoint to read (.pth/.pt or .ckpt)")
    parser.add_argument("dst", help="checkpoint to write (the other kind)")
    parser.add_argument("--model", help="model of DST's framework to check names and shapes against: "
                                        + SPEC_HELP)
    parser.add_argument("--num-classes", type=int, default=10, help="classifier outputs of a zoo --model (default: 10)")
    parser.add_argument("--overwrite", action="store_true", help="replace DST if it exists")


def run(args):
    model = None
    if args.model:  # the model DST's names and shapes are checked against, in DST's framework
        from msport import resolve
        from msport.convert import file_kind

        model = resolve.model(args.model, file_kind(args.dst), num_classes=args.num_classes)
    with Stages(NAME, 1) as progress:  # one call: a large checkpoint takes a while to read and write
        progress(f"{args.src}{_size(args.src)} -> {args.dst}")
        report = convert_file(args.src, args.dst, model=model, num_classes=args.num_classes,
                              overwrite=args.overwrite)
    print(f"wrote {args.dst}")
    for line in report.lines():
        print(f"  {line}")
    if args.model is None:
        print("  structure checked (BatchNorm tensors, biases); completeness against an architecture was not: "
              "pass --model NAME for that")
    return 0


def _size(path):
    return f" ({os.path.getsize(path) / 2**20:.0f} MiB)" if os.path.isfile(path) else ""
