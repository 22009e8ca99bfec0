"""msport compare-ckpt A B: two checkpoints (.pth or .ckpt, any pairing), parameter by parameter."""

from msport.diagnose.compare_ckpt import PLOTS, SORT_KEY, TABLE_COLUMNS, compare_checkpoints
from msport.diagnose.report import add_output_arguments, emit
from msport.tolerances import CKPT_ELEMENT_REL, CKPT_MAX_ABS

NAME = "compare-ckpt"
HELP = "compare two checkpoints (.pth/.ckpt, any pairing) parameter by parameter, in torch naming"


def add_arguments(parser):
    parser.add_argument("a", help="first checkpoint, the reference (.pth/.pt or .ckpt)")
    parser.add_argument("b", help="second checkpoint (.pth/.pt or .ckpt)")
    parser.add_argument("--atol", type=float, default=CKPT_MAX_ABS,
                        help=f"absolute tolerance (default {CKPT_MAX_ABS:g})")
    parser.add_argument("--rtol", type=float, default=CKPT_ELEMENT_REL,
                        help=f"relative tolerance, times |A| (default {CKPT_ELEMENT_REL:g})")
    add_output_arguments(parser)


def run(args):
    result = compare_checkpoints(args.a, args.b, atol=args.atol, rtol=args.rtol)
    return emit(result, args, TABLE_COLUMNS, PLOTS, SORT_KEY)
