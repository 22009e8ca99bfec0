"""msport convert SRC DST: .pth <-> .ckpt with explicit rules and a report of what has no twin."""

import os

from msport.convert import convert_file
from msport.progress import Stages

NAME = "convert"
HELP = "convert a PyTorch .pth to a MindSpore .ckpt or back"


def add_arguments(parser):
    parser.add_argument("src", help="checkpoint to read (.pth/.pt or .ckpt)")
    parser.add_argument("dst", help="checkpoint to write (the other kind)")
    parser.add_argument("--model", help="zoo model to check names and shapes against (e.g. resnet50)")
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--overwrite", action="store_true", help="replace DST if it exists")


def run(args):
    with Stages(NAME, 1) as progress:  # one call: a large checkpoint takes a while to read and write
        progress(f"{args.src}{_size(args.src)} -> {args.dst}")
        report = convert_file(args.src, args.dst, model=args.model, num_classes=args.num_classes,
                              overwrite=args.overwrite)
    print(f"wrote {args.dst}")
    for line in report.lines():
        print(f"  {line}")
    return 0


def _size(path):
    return f" ({os.path.getsize(path) / 2**20:.0f} MiB)" if os.path.isfile(path) else ""
