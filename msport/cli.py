"""The ``msport`` command: one subcommand per module in :mod:`msport.commands`.

Each command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int`` (the exit code). Expected failures raise
:class:`msport.errors.UserError` (or another ``ValueError`` subclass of ours)
and become one line on stderr with exit code 2; nothing is half-written.
"""

import argparse
import importlib
import sys

from msport import __version__
from msport.errors import UserError

COMMAND_MODULES = (
    "msport.commands.convert",
    "msport.commands.check_zoo",
    "msport.commands.parity_train",
    "msport.commands.compare_ckpt",
    "msport.commands.layer_diff",
    "msport.commands.audit",
    "msport.commands.reproduce",
    "msport.commands.port",
)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="msport", description="Find and fix the accuracy gap of a PyTorch model ported to MindSpore.")
    parser.add_argument("--version", action="version", version=f"msport {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args._run(args)
    except UserError as exc:
        print(f"msport {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"msport {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. head, which has exited
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
