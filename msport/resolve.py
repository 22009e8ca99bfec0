"""The one place a model **name** becomes a model, for every command and both trainers.

A ``--model`` (or ``--torch`` / ``--ms``) value is one of:

``resnet18``
    a zoo name: :mod:`reference_torch` on the torch side, :mod:`msport.models` on MindSpore's;
``torchvision:NAME``
    a torchvision classifier, random weights, no download (torch side only: its MindSpore twin is
    what ``msport port torchvision:NAME`` writes, named ``port:DIR``);
``port:DIR``
    the MindSpore model ``msport port`` wrote into DIR (MindSpore side only: its torch twin is the
    spec it was ported from);
``module:callable``
    the user's own: ``mypkg.model:build`` or ``path/to/file.py:build``, a function or class returning
    a model, or a model instance (see :mod:`msport.specs`).

``num_classes`` reaches zoo and torchvision builders, and a user callable that takes it. Every failure
is a one-line :class:`~msport.errors.UserError` naming the value and the flag it came from.
"""

import inspect
import re

from msport import specs
from msport.errors import UserError, first_line

PORTED_PREFIX = "port:"
TORCHVISION_PREFIX = "torchvision:"

SPEC_HELP = ("a zoo name (resnet18, resnet50...), module:callable (a function or class returning the model, or "
             "a model instance; the current folder is importable), torchvision:NAME (torch side, random weights) "
             "or port:DIR (MindSpore side, a model msport port wrote)")


def kind(spec):
    """``"zoo"``, ``"torchvision"``, ``"port"`` or ``"callable"``: which scheme ``spec`` uses."""
    if spec.startswith(TORCHVISION_PREFIX):
        return "torchvision"
    if spec.startswith(PORTED_PREFIX):
        return "port"
    return "callable" if ":" in spec else "zoo"


def torch_model(spec, num_classes=None, option="--model"):
    """The ``torch.nn.Module`` that ``spec`` names."""
    scheme = kind(spec)
    if scheme == "zoo":
        import reference_torch

        return reference_torch.create_model(_zoo_name(spec, reference_torch.list_models(), option),
                                            **_classes(num_classes))
    if scheme == "torchvision":
        return _torchvision(spec[len(TORCHVISION_PREFIX):], num_classes, option)
    if scheme == "port":
        raise UserError(f"{option} {spec!r}: port:DIR names the MindSpore side of a port; on the torch side give "
                        f"the model it was ported from (module:callable or torchvision:NAME)")
    import torch

    return _built(spec, torch.nn.Module, "a torch.nn.Module", num_classes, option)


def ms_model(spec, num_classes=None, init="torch", option="--model"):
    """The ``mindspore.nn.Cell`` that ``spec`` names; ``init`` is the msport.layers init scheme of a zoo or
    ported model (a user's own cell is returned as built)."""
    from msport.registry import INIT_SCHEMES

    if init not in INIT_SCHEMES:
        raise UserError(f"unknown init scheme {init!r}: choose one of {', '.join(INIT_SCHEMES)}")
    scheme = kind(spec)
    if scheme == "zoo":
        from msport import models

        return models.create_model(_zoo_name(spec, models.list_models(), option), init=init, **_classes(num_classes))
    if scheme == "port":
        from msport.port.build import load_ported

        return load_ported(spec[len(PORTED_PREFIX):], num_classes=num_classes, init=init)
    if scheme == "torchvision":
        raise UserError(f"{option} {spec!r}: torchvision models are torch models; port it first "
                        f"(msport port {spec} --output-dir DIR) and give port:DIR on the MindSpore side")
    from msport._mindspore import nn

    return _built(spec, nn.Cell, "a mindspore.nn.Cell", num_classes, option)


def model(spec, framework, num_classes=None, init="torch", option="--model"):
    """:func:`torch_model` or :func:`ms_model`, by ``framework`` (``"torch"`` / ``"mindspore"``)."""
    if framework == "torch":
        return torch_model(spec, num_classes=num_classes, option=option)
    return ms_model(spec, num_classes=num_classes, init=init, option=option)


def check_name(spec, framework, option="--model"):
    """Refuse, before any work, a value that can never name a model of ``framework``: an unknown zoo name,
    or a scheme of the other side. A user callable is checked when it is built."""
    scheme = kind(spec)
    if scheme == "zoo":
        if framework == "torch":
            import reference_torch as zoo
        else:
            from msport import models as zoo
        _zoo_name(spec, zoo.list_models(), option)
    elif (scheme, framework) in (("port", "torch"), ("torchvision", "mindspore")):
        side = "MindSpore" if scheme == "port" else "torch"
        raise UserError(f"{option} {spec!r} names a {side} model; this side needs a "
                        f"{'torch' if framework == 'torch' else 'MindSpore'} one")
    elif scheme in ("port", "torchvision") and not spec.split(":", 1)[1]:
        raise UserError(f"{option} {spec!r}: give the {'folder' if scheme == 'port' else 'model name'} after the colon")


def file_name(spec):
    """A name fit for files and run folders: ``models/mine.py:SmallCNN`` -> ``SmallCNN``,
    ``torchvision:resnet18`` -> ``resnet18``, ``port:runs/p`` -> ``p``."""
    scheme = kind(spec)
    if scheme == "zoo":
        text = spec
    elif scheme == "port":
        text = spec[len(PORTED_PREFIX):].rstrip("/\\").replace("\\", "/").rpartition("/")[2]
    else:
        text = spec.rpartition(":")[2].rpartition(".")[2]
    text = re.sub(r"[^0-9A-Za-z_.-]+", "_", text).strip("_.")
    return text or "model"


# --- the schemes -------------------------------------------------------------------------------

def _zoo_name(name, known, option):
    if name not in known:
        raise UserError(f"{option}: unknown model {name!r}; choose one of {', '.join(known)}, or give "
                        f"module:callable for your own")
    return name


def _classes(num_classes):
    return {} if num_classes is None else {"num_classes": num_classes}


def _built(spec, base, what, num_classes, option):
    found = specs.resolve(spec, option)
    if not isinstance(found, base):
        if not callable(found):
            raise UserError(f"{option} {spec!r} is neither {what} nor callable")
        kwargs = _classes(num_classes) if num_classes is not None and _takes(found, "num_classes") else {}
        try:
            found = found(**kwargs)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - the user's builder failed: one line, not our traceback
            raise UserError(f"{option} {spec!r} failed: {type(exc).__name__}: {first_line(exc)}") from exc
    if not isinstance(found, base):
        raise UserError(f"{option} {spec!r} returned a {type(found).__name__}, not {what}")
    return found


def _takes(function, argument):
    try:
        return argument in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def _torchvision(name, num_classes, option):
    try:
        import torchvision
    except ImportError as exc:
        raise UserError(f"{option} torchvision:{name} needs torchvision installed ({exc})") from exc
    known = torchvision.models.list_models(module=torchvision.models)
    if name not in known:
        raise UserError(f"{option} torchvision:{name}: torchvision has no classification model {name!r}; "
                        f"choose one of {', '.join(known)}")
    kwargs = {"init_weights": True} if name in ("googlenet", "inception_v3") else {}  # say so; torchvision warns
    return torchvision.models.get_model(name, weights=None, **kwargs, **_classes(num_classes))


__all__ = ["PORTED_PREFIX", "SPEC_HELP", "TORCHVISION_PREFIX", "check_name", "file_name", "kind", "model",
           "ms_model", "torch_model"]
