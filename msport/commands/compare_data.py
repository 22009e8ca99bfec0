"""msport compare-data: run a torchvision pipeline and its MindSpore port on the same images, stage by stage.

``--torch`` and ``--ms`` name functions (``module:callable``) that return the two sides: a
torchvision transform or ``Compose`` (or a torch Dataset) and a list of MindSpore ops (or a
``mindspore.dataset`` pipeline). Imports no framework at module level.
"""

import os

from msport.diagnose.report import add_output_arguments, emit
from msport.errors import UserError

NAME = "compare-data"
HELP = ("run a torchvision pipeline and its MindSpore port on the same images, transform by transform; "
        "name the first transform where they part and the twin to use")


def add_arguments(parser):
    parser.add_argument("--torch", dest="torch_spec", metavar="MODULE:CALLABLE", required=True,
                        help="a function returning a torchvision transform or Compose (v1 or v2), or a torch Dataset")
    parser.add_argument("--ms", dest="ms_spec", metavar="MODULE:CALLABLE", required=True,
                        help="a function returning a list of MindSpore ops (or msport twins), or a "
                             "mindspore.dataset pipeline")
    parser.add_argument("--images", metavar="DIR",
                        help="a folder of images (default: scikit-learn's sample photos china.jpg and flower.jpg)")
    parser.add_argument("--max-images", type=int, default=8, metavar="N", help="compare at most N images (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the replayed random draws (default 0)")
    parser.add_argument("--draws", type=int, default=64, metavar="N",
                        help="draws per image for a random stage that cannot be replayed (default 64)")
    add_output_arguments(parser)


def side(spec, option):
    """The pipeline a ``module:callable`` spec names (also read by msport audit's data check).

    A function is called; a pipeline named directly (a torchvision transform or Compose, a list of
    ops, a data set) is taken as it is, since calling a transform would apply it to nothing.
    """
    import functools
    import inspect

    from msport import specs

    found = specs.resolve(spec, option)
    builder = inspect.isroutine(found) or inspect.isclass(found) or isinstance(found, functools.partial)
    value = specs.call(spec, option) if builder else found
    if value is None or isinstance(value, (str, bytes, int, float, dict)):
        raise UserError(f"{option} {spec!r} returned a {type(value).__name__}, not a transform, an op list "
                        f"or a data set")
    return value


def _check_outputs(args):
    """Refuse unusable output paths before any work: --json must not be a folder, --report not a file."""
    if args.json and os.path.isdir(args.json):
        raise UserError(f"--json {args.json} is a folder; give a file name")
    if args.report and os.path.exists(args.report) and not os.path.isdir(args.report):
        raise UserError(f"--report {args.report} is a file; give a folder")


def run(args):
    from msport.diagnose.compare_data import (
        SORT_KEY,
        TABLE_COLUMNS,
        compare_data,
        load_images,
        plots_for,
    )

    if args.max_images < 1 or args.draws < 2:
        raise UserError("--max-images must be at least 1 and --draws at least 2")
    _check_outputs(args)
    images = load_images(args.images, args.max_images)
    result = compare_data(side(args.torch_spec, "--torch"), side(args.ms_spec, "--ms"), images,
                          seed=args.seed, draws=args.draws)
    return emit(result, args, TABLE_COLUMNS, plots_for(result), SORT_KEY)
