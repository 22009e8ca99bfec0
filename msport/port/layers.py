"""Which torch modules ``msport port`` writes as one layer call: the registry's layers and user twins.

A module counts when the layer registry (:mod:`msport.registry`) has an entry for its class and the
class keeps that entry's ``forward`` (a subclass that overrides it, such as torchvision's
``LayerNorm2d``, computes something else and is written op by op), or when a user registered a twin
for its type (:func:`register_layer`). Also the errors that list what cannot be ported.
"""

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from msport import registry
from msport.errors import UserError
from msport.port.tree import same_argument, simplify_arg

SUPPORT = "msport.port.support"
LAYERS = "msport.layers"


@dataclass(frozen=True)
class LayerTwin:
    """A user's MindSpore twin for a torch module type (see :func:`register_layer`)."""

    torch_type: type
    module: str          # where the twin is imported from
    name: str            # the Cell class or factory in that module
    args: Callable       # torch module -> (args tuple, kwargs dict) of the twin's constructor
    params: dict         # torch parameter name (relative) -> the twin's name; absent = same name


_USER_LAYERS = OrderedDict()


def register_layer(torch_type, twin, args=None, params=None):
    """Port every ``torch_type`` module as ``twin(*args(module)[0], **args(module)[1])``.

    ``twin``: a MindSpore Cell class or factory importable by the generated source (a module-level
    name, or the string ``"package.module:Name"``). ``args``: a function of the torch module returning
    ``(args, kwargs)`` of constants (default: none). ``params``: the twin's name of each torch
    parameter/buffer whose name differs (``{"weight": "gamma"}``). The module must take one tensor and
    return one. Returns the :class:`LayerTwin`.
    """
    if isinstance(twin, str):
        module, _, name = twin.partition(":")
        if not name:
            module, _, name = twin.rpartition(".")
    else:
        module, name = twin.__module__, twin.__qualname__
    if not module or not name or "." in name or "<" in name:
        raise UserError(f"register_layer: {twin!r} is not importable by name; define the twin at module "
                        f"level, or give it as 'package.module:Name'")
    entry = LayerTwin(torch_type, module, name, args or (lambda m: ((), {})), dict(params or {}))
    _USER_LAYERS[torch_type] = entry
    return entry


def unregister_layer(torch_type):
    _USER_LAYERS.pop(torch_type, None)


def layer_twin(module):
    """``("user", LayerTwin)``, ``("registry", LayerEntry)`` or ``(None, None)`` for a torch module."""
    for cls in type(module).__mro__:
        if cls in _USER_LAYERS:
            return "user", _USER_LAYERS[cls]
    entry = registry.entry_for_torch(module)
    if entry is not None and type(module).forward is registry.torch_class(entry).forward:
        return "registry", entry
    return None, None


def layer_source(kind, twin, module, render, need):
    """The factory call that builds ``module``'s twin; ``need(module, name)`` records its import."""
    if kind == "user":
        args, kwargs = twin.args(module)
        need(twin.module, twin.name)
        text = [render(a) for a in args] + [f"{k}={render(v)}" for k, v in kwargs.items()]
        return f"{twin.name}({', '.join(text)})"
    arguments = registry.torch_constructor_args(twin, module)
    twin.build(arguments)  # raises UnsupportedLayer for what MindSpore cannot compute
    text = []
    for name, default in twin.signature:
        value = simplify_arg(name, arguments[name])
        if default is registry.REQUIRED:
            text.append(render(value))
        elif not same_argument(value, default):
            text.append(f"{name}={render(value)}")
    need(LAYERS, twin.factory_name)
    return f"{twin.factory_name}({', '.join(text)})"


@dataclass
class Unsupported:
    node: str
    op: str          # call_function (an ATen op) or a layer type
    target: str      # aten.erf.default, torch.nn.Upsample...
    where: str       # file:line `code`
    why: str

    def __str__(self):
        return f"{self.node} ({self.target}) at {self.where}: {self.why}"

    def as_dict(self):
        return {"node": self.node, "op": self.op, "target": self.target, "where": self.where, "why": self.why}


class UnsupportedModel(UserError):
    """Nodes neither the registry, the op table nor a registered twin can map; all of them."""

    def __init__(self, model, unsupported):
        self.unsupported = unsupported
        super().__init__(f"cannot port {model}: {len(unsupported)} node(s) have no MindSpore twin: "
                         f"{'; '.join(str(u) for u in unsupported)}; register one (msport.port.register_op for an "
                         f"ATen op, msport.port.register_layer for a module type) and port again")


__all__ = ["LAYERS", "SUPPORT", "LayerTwin", "Unsupported", "UnsupportedModel", "layer_source", "layer_twin",
           "register_layer", "unregister_layer"]
