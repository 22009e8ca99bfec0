"""Which torch model a ``msport port`` SPEC names: ``torchvision:NAME`` or ``module:callable``.

Imports torch (and torchvision when asked), never MindSpore: the torch trainer can read the same
spec strings.
"""

import re

from msport import specs
from msport.errors import UserError

SPEC_HELP = ("module:callable (a function or class returning a torch.nn.Module, or a Module instance; "
             "the current folder is importable) or torchvision:NAME (random weights, no download)")


def load_torch_model(spec, num_classes=None):
    """``(module, name)``: the torch model a spec names, and a file-name-safe name for it.

    ``num_classes`` is passed to torchvision builders, and to a callable that takes it."""
    kind, sep, target = spec.partition(":")
    if not sep or not kind or not target:
        raise UserError(f"model spec {spec!r}: expected module:callable or torchvision:NAME")
    if kind == "torchvision":
        return _torchvision(target, num_classes), _safe(target)
    obj = specs.resolve(spec, "model spec")  # the same resolution as every other command's module:callable
    import torch

    if not isinstance(obj, torch.nn.Module):
        if not callable(obj):
            raise UserError(f"model spec {spec!r}: {target} is neither a torch.nn.Module nor callable")
        obj = obj(num_classes=num_classes) if num_classes is not None and _takes(obj, "num_classes") else obj()
    if not isinstance(obj, torch.nn.Module):
        raise UserError(f"model spec {spec!r}: {target}() returned a {type(obj).__name__}, not a torch.nn.Module")
    return obj, _safe(target.split(".")[-1])


def _takes(fn, argument):
    import inspect

    try:
        return argument in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _torchvision(name, num_classes=None):
    try:
        import torchvision
    except ImportError as exc:
        raise UserError(f"torchvision:{name} needs torchvision installed ({exc})") from exc
    known = torchvision.models.list_models(module=torchvision.models)
    if name not in known:
        raise UserError(f"torchvision has no classification model {name!r}: choose one of {', '.join(known)}")
    kwargs = {"init_weights": True} if name in ("googlenet", "inception_v3") else {}  # say so; torchvision warns
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    return torchvision.models.get_model(name, weights=None, **kwargs)


def _safe(name):
    text = re.sub(r"[^0-9a-zA-Z_]", "_", name)
    return text if text and not text[0].isdigit() else f"model_{text}"


__all__ = ["SPEC_HELP", "load_torch_model"]
