"""msport compare-ckpt A B: two checkpoints (.pth, .ckpt or .safetensors, any pairing), parameter by parameter.

Or the weights two models hold: ``--torch mypkg.model:build --ms mypkg.port:build`` (with
``--torch-weights``/``--ms-weights`` loaded first), names paired by the registry, then structure,
or ``--name-map FILE``.
"""

from msport.diagnose.compare_ckpt import PLOTS, SORT_KEY, TABLE_COLUMNS, compare_checkpoints, compare_state
from msport.diagnose.report import add_output_arguments, check_output_arguments, emit
from msport.errors import tolerance
from msport.tolerances import CKPT_ELEMENT_REL, CKPT_MAX_ABS

NAME = "compare-ckpt"
HELP = "compare two checkpoints (.pth/.ckpt/.safetensors, any pairing) parameter by parameter, in torch naming"


def add_arguments(parser):
    parser.add_argument("a", nargs="?", help="first checkpoint, the reference (.pth/.pt, .ckpt or .safetensors)")
    parser.add_argument("b", nargs="?", help="second checkpoint (.pth/.pt, .ckpt or .safetensors)")
    models = parser.add_argument_group("or the weights of your own pair of models")
    models.add_argument("--torch", dest="torch_spec", metavar="MODULE:CALLABLE",
                        help="a function returning your torch.nn.Module (e.g. mypkg.model:build)")
    models.add_argument("--ms", dest="ms_spec", metavar="MODULE:CALLABLE",
                        help="a function returning your mindspore.nn.Cell (e.g. mypkg.port:build)")
    models.add_argument("--torch-weights", metavar="FILE", help="load this .pth/.ckpt into the torch model first")
    models.add_argument("--ms-weights", metavar="FILE", help="load this .ckpt/.pth into the MindSpore model first")
    parser.add_argument("--name-map", metavar="FILE",
                        help="torch name -> MindSpore name (JSON, or lines 'torch_name mindspore_name', "
                             "or 'torch_name: mindspore_name')")
    parser.add_argument("--atol", type=tolerance, default=CKPT_MAX_ABS,
                        help=f"absolute tolerance (default {CKPT_MAX_ABS:g})")
    parser.add_argument("--rtol", type=tolerance, default=CKPT_ELEMENT_REL,
                        help=f"relative tolerance, times |A| (default {CKPT_ELEMENT_REL:g})")
    add_output_arguments(parser)


def run(args):
    from msport.errors import UserError

    inputs = [args.a, args.b, args.torch_weights, args.ms_weights, args.name_map]
    check_output_arguments(args, inputs)
    if args.torch_spec or args.ms_spec:
        if args.a or args.b:
            raise UserError("give two checkpoint files or --torch/--ms models, not both")
        from msport.commands._common import build_user_pair

        args.model, args.copy_weights = None, False
        torch_module, ms_cell, described = build_user_pair(args)
        result = compare_state(torch_module, ms_cell, atol=args.atol, rtol=args.rtol, labels=("a", "b"),
                               name_map=args.name_map)
        result.notes.insert(0, f"a = {described.split(', ')[0]}, b = {described.split(', ')[1]}")
        return emit(result, args, TABLE_COLUMNS, PLOTS, SORT_KEY)
    if not (args.a and args.b):
        raise UserError("give two checkpoint files A B (or --torch/--ms models)")
    result = compare_checkpoints(args.a, args.b, atol=args.atol, rtol=args.rtol, name_map=args.name_map)
    return emit(result, args, TABLE_COLUMNS, PLOTS, SORT_KEY)
