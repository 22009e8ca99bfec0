"""Framework lookups: the torch and MindSpore classes of an entry, the entry of a built layer, the
registered layers of a model, and torch's constructor arguments read off a built module.

The frameworks are imported only when a class is asked for, so a torch-only process can read the
registry without paying for MindSpore.
"""

import inspect
from collections import OrderedDict

from msport.registry.schema import REQUIRED, UnsupportedLayer
from msport.registry.table import ENTRIES


def torch_class(e):
    import torch

    return getattr(torch.nn, e.torch_class)


def ms_class(e):
    """The MindSpore class of an entry. A build's ``_impl`` key names a cell of msport's own instead, which
    :mod:`msport.layers` takes from :mod:`msport.cells` (a layer above this one)."""
    from msport._mindspore import nn

    return getattr(nn, e.ms_class)


_TORCH_INDEX = None
_MS_INDEX = None


def _torch_index():
    global _TORCH_INDEX
    if _TORCH_INDEX is None:
        _TORCH_INDEX = {torch_class(e): e for e in ENTRIES}
    return _TORCH_INDEX


def _ms_index():
    """MindSpore class -> entry. Several torch types can share one MindSpore class (InstanceNorm2d is
    built as GroupNorm); the first entry registered for a class is its reverse twin."""
    global _MS_INDEX
    if _MS_INDEX is None:
        index = {}
        for e in ENTRIES:
            index.setdefault(ms_class(e), e)
        _MS_INDEX = index
    return _MS_INDEX


def entry_for_torch(module):
    """The entry of a torch module's type, or ``None`` (subclasses count:
    ``NonDynamicallyQuantizableLinear`` is a Linear)."""
    index = _torch_index()
    for cls in type(module).__mro__:
        if cls in index:
            return index[cls]
    return None


def entry_for_ms(cell):
    index = _ms_index()
    for cls in type(cell).__mro__:
        if cls in index:
            return index[cls]
    return None


def torch_layers(module):
    """``{layer name: entry}`` for every registered layer of a torch module, in module order."""
    return OrderedDict((name, e) for name, sub in module.named_modules()
                       for e in [entry_for_torch(sub)] if e is not None)


def ms_layers(cell):
    """``{layer name: entry}`` for every registered layer of a MindSpore cell, in cell order.

    A cell whose parameters its registered parent names itself (MindSpore's BatchNorm3d keeps a
    BatchNorm2d ``bn2d``) is part of the parent, not a layer of its own.
    """
    found = OrderedDict((name, e) for name, sub in cell.cells_and_names()
                        for e in [entry_for_ms(sub)] if e is not None)
    claimed = set()
    for name, e in found.items():
        for param in e.params:
            if not param.pattern and not param.init_only and "." in param.ms:
                inner = param.ms.rpartition(".")[0]
                claimed.add(f"{name}.{inner}" if name else inner)
    return OrderedDict((n, e) for n, e in found.items() if n not in claimed)


def ms_parameter_paths(cell):
    """``{parameter name: parameter path}`` of a MindSpore cell.

    MindSpore names a parameter once, after the path its cell had when the name was given; cells put in
    a ``CellList`` keep a shorter one (mindcv's RegNet: the cell ``stages.0.blocks.0.proj`` holds
    ``0.blocks.0.proj.weight``). Paths are what ``cells_and_names`` calls the cells; names are what
    checkpoints, optimizers and the pairing use.
    """
    return OrderedDict((p.name, path) for path, p in cell.parameters_and_names())


def ms_layers_by_parameter_names(cell):
    """:func:`ms_layers` keyed the way each layer's parameters are named (:func:`ms_parameter_paths`): what
    reading a parameter name's layer needs. A layer whose parameters are named after its path keeps it."""
    layers = ms_layers(cell)
    keys = {}
    for name, path in ms_parameter_paths(cell).items():
        layer = path.rpartition(".")[0]
        while layer and layer not in layers:
            layer = layer.rpartition(".")[0]
        relative = path[len(layer) + 1:] if layer else path
        if layer and layer not in keys and (name == relative or name.endswith("." + relative)):
            keys[layer] = name[:len(name) - len(relative) - 1]
    return OrderedDict((keys.get(n, n), e) for n, e in layers.items())


def bind(e, args, kwargs):
    """torch's constructor arguments for ``e``, defaults applied, as an ordered dict; TypeError on misuse."""
    params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=d) for n, d in e.signature]
    bound = inspect.Signature(params).bind(*args, **kwargs)
    bound.apply_defaults()
    return OrderedDict(bound.arguments)


def torch_constructor_args(e, module):
    """The constructor arguments of a built torch module, read off its attributes (for ``msport port``)."""
    readers = dict(e.read_args)
    out = OrderedDict()
    for name, default in e.signature:
        if name in readers:
            value = readers[name](module)
        elif name == "inplace":
            value = False  # in-place is a memory detail: MindSpore cells return new tensors
        elif name == "bias" and hasattr(module, "bias") and not isinstance(module.bias, bool):
            value = module.bias is not None  # torch stores the tensor (or None) under the argument's name
        elif hasattr(module, name):
            value = getattr(module, name)
        elif default is not REQUIRED:
            value = default
        else:
            raise UnsupportedLayer(f"cannot read {e.name}'s argument {name!r} off the built module")
        out[name] = tuple(value) if isinstance(value, list) else value
    return out


def layer_context(e, layer, shapes):
    """What ``Param.init`` functions read: torch-layout shapes of the layer's parameters plus ``e.context``."""
    ctx = dict(e.context(layer)) if e.context else {}
    ctx["shapes"] = shapes
    return ctx
