"""``module:callable`` specs: how the command line names a user's own object (a model builder, example
inputs, a loss). Turning a model name into a model is :mod:`msport.resolve`'s job.

``mypkg.model:build`` imports ``mypkg.model`` (the current directory is searched first, as
``python -m`` does) and takes its ``build``; ``path/to/file.py:build`` loads that file. A spec
for a model or an input is called with no arguments; a loss spec names the loss function itself.
Every failure is a :class:`~msport.errors.UserError` naming the spec and what went wrong.
"""

import importlib
import importlib.util
import os
import sys

from msport.errors import UserError


def resolve(spec, option):
    """The object ``spec`` (``module:attribute``) names; ``option`` (e.g. ``--torch``) is for messages."""
    module_name, sep, attribute = spec.rpartition(":")
    if not sep or not module_name or not attribute:
        raise UserError(f"{option} {spec!r}: expected module:callable, e.g. mypkg.model:build or model.py:build")
    try:
        if module_name.endswith(".py") or os.sep in module_name:
            if not os.path.isfile(module_name):
                raise UserError(f"{option} {spec!r}: no such file {module_name}")
            name = "_msport_spec_" + os.path.splitext(os.path.basename(module_name))[0]
            loader = importlib.util.spec_from_file_location(name, module_name)
            module = importlib.util.module_from_spec(loader)
            sys.modules[name] = module
            loader.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path and "" not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(module_name)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's module failed to import: say so in one line
        raise UserError(f"{option} {spec!r}: cannot import {module_name} ({type(exc).__name__}: "
                        f"{_first_line(exc)})") from exc
    found = module
    for part in attribute.split("."):  # a dotted attribute reaches into a class or namespace
        try:
            found = getattr(found, part)
        except AttributeError:
            raise UserError(f"{option} {spec!r}: {module_name} has no attribute {attribute!r}") from None
    return found


def call(spec, option):
    """``resolve(spec)()``: a model or example input built by the user's function."""
    function = resolve(spec, option)
    if not callable(function):
        raise UserError(f"{option} {spec!r} is not callable")
    try:
        return function()
    except Exception as exc:  # noqa: BLE001 - the user's builder failed: one line, not our traceback
        raise UserError(f"{option} {spec!r} failed: {type(exc).__name__}: {_first_line(exc)}") from exc


def _first_line(exc):
    text = str(exc)
    return text.splitlines()[0] if text else ""


__all__ = ["call", "resolve"]
