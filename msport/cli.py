"""The ``msport`` command: one subcommand per module in :mod:`msport.commands`.

Each command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int`` (the exit code). Expected failures (a
:class:`msport.errors.UserError`, a failed read or write, a usage error) become
one line on stderr with exit code 2 (:func:`msport.errors.run_guarded`);
nothing is half-written. A traceback means a bug.
"""

import importlib
import sys

from msport import __version__
from msport.errors import OneLineParser, run_guarded

COMMAND_MODULES = (
    "msport.commands.convert",
    "msport.commands.check_zoo",
    "msport.commands.parity_train",
    "msport.commands.compare_ckpt",
    "msport.commands.layer_diff",
    "msport.commands.audit",
    "msport.commands.reproduce",
    "msport.commands.port",
    "msport.commands.compare_data",
)


def build_parser(command=None):
    """The parser of every command, or of ``command`` alone: a command then starts without importing the
    others (some import a framework to build their help), which keeps ``msport compare-ckpt`` quick."""
    parser = OneLineParser(
        prog="msport", description="Find and fix the accuracy gap of a PyTorch model ported to MindSpore.")
    parser.add_argument("--version", action="version", version=f"msport {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        if command is not None and _command_name(module_name) != command:
            continue
        module = importlib.import_module(module_name)
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def _command_name(module_name):
    return module_name.rpartition(".")[2].replace("_", "-")  # each module's NAME (a test checks)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    known = [_command_name(m) for m in COMMAND_MODULES]
    args = build_parser(argv[0] if argv and argv[0] in known else None).parse_args(argv)
    return run_guarded(f"msport {args.command}", lambda: args._run(args))


if __name__ == "__main__":
    sys.exit(main())
