"""Parity layer factories: MindSpore layers that behave as PyTorch's defaults.

The case study's port (the MindSpore accuracy-debugging guide's CIFAR-10 ResNet50)
lost 0.6 points of accuracy because its convolutions and dense
layers used MindSpore 1.x's default initialisers (Normal(0.01) weights, zero
bias) instead of PyTorch's kaiming-uniform. The same kind of trap sits in other
layers: MindSpore's Embedding draws Normal(0.01) where torch draws N(0, 1), its
LayerNorm uses epsilon 1e-7 where torch uses 1e-5, every MindSpore convolution
pads ``'same'`` and has no bias by default, and its BatchNorm momentum is
``1 - torch's``.

Every factory here is generated from :mod:`msport.registry` and takes **torch's
constructor signature and defaults**: ``conv2d(3, 16, 3)`` computes exactly
``torch.nn.Conv2d(3, 16, 3)``, bias included, and ``layer_norm(64)`` uses
torch's eps 1e-5. One keyword is added, ``init``, the init scheme:

``"torch"`` (default)
    PyTorch's defaults, set explicitly so they do not depend on the installed
    MindSpore (conv/linear: U(-b, b), b = 1/sqrt(fan_in), for weight and bias;
    Embedding N(0, 1); LSTM/GRU/RNN U(+-1/sqrt(hidden)); MultiheadAttention
    xavier-uniform in_proj, zero biases; norms 1/0).
``"legacy"``
    MindSpore 1.x / 2.0 defaults: conv/dense weight Normal(sigma=0.01), bias
    zeros; Embedding Normal(0.01). The case study's starting point, on any version.
``"mindspore"``
    What the installed MindSpore's constructor draws (2.1 and later: conv/dense
    equal to torch's distribution, Embedding Normal(0.01)).

A torch configuration MindSpore 2.10 cannot compute exactly on the CPU
(``padding_mode='reflect'``, ``LSTM(proj_size=...)``...) raises
:class:`msport.registry.UnsupportedLayer` naming what is missing.

:func:`apply_init` redraws every registered layer of a network built elsewhere
and returns a report of what it redrew and what it did not know.
"""

import inspect
import warnings
from collections import Counter, OrderedDict
from dataclasses import dataclass, field


from msport import cells, registry
from msport._mindspore import ms
from msport.registry import INIT_SCHEMES, REQUIRED
from mindspore.common.initializer import Constant, Normal, Uniform, initializer

def _check_scheme(init):
    if init not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {init!r}: choose one of {', '.join(INIT_SCHEMES)}")


# --- building ---------------------------------------------------------------------------------

def build(name, *args, init="torch", **kwargs):
    """The MindSpore twin of ``torch.nn.<name>(*args, **kwargs)``: ``build("Conv2d", 3, 16, 3)``."""
    return _build(registry.entry(name), args, kwargs, init)


def _build(entry, args, kwargs, init):
    _check_scheme(init)
    try:
        arguments = registry.bind(entry, args, kwargs)
    except TypeError as exc:
        raise TypeError(f"{entry.factory_name}(): {exc} (the signature is torch.nn.{entry.name}'s)") from None
    kwargs = entry.build(arguments)
    impl = kwargs.pop("_impl", None)  # a cell of msport's own, where MindSpore's alone cannot compute torch's
    cell = (getattr(cells, impl) if impl else registry.ms_class(entry))(**kwargs)
    if init != "mindspore":
        _init_tree(cell, init, context=arguments)
    for name in entry.fixed(arguments) if entry.fixed else ():
        getattr(cell, name).requires_grad = False  # torch has no such parameter: it must stay 1/0
    return cell


def _make_factory(entry):
    parameters = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                    default=inspect.Parameter.empty if d is REQUIRED else d)
                  for n, d in entry.signature]
    if "init" in dict(entry.signature):
        # torch's own argument is called init (PReLU's initial value); every scheme draws it the same way
        def factory(*args, **kwargs):
            return _build(entry, args, kwargs, "torch")
    else:
        def factory(*args, init="torch", **kwargs):
            return _build(entry, args, kwargs, init)

        parameters.append(inspect.Parameter("init", inspect.Parameter.KEYWORD_ONLY, default="torch"))
    factory.__signature__ = inspect.Signature(parameters)
    factory.__name__ = factory.__qualname__ = entry.factory_name
    factory.__module__ = __name__
    factory.__doc__ = (f"MindSpore ``nn.{entry.ms_class}`` computing ``torch.nn.{entry.name}`` with torch's "
                       f"signature and defaults; ``init`` picks the init scheme (see msport.layers). "
                       f"{entry.doc}").strip()
    return factory


FACTORIES = OrderedDict((e.factory_name, _make_factory(e)) for e in registry.entries())
globals().update(FACTORIES)


# Names from the case study, kept for ports that copied its snippet. Its ``_conv2d`` built
# ResNet convolutions: torch's defaults, so ``_conv2d(3, 64, 3, padding=1)`` has a bias as torch's does;
# pass ``bias=False`` for a conv followed by BatchNorm, as the zoo does.
_conv2d = FACTORIES["conv2d"]
_dense = FACTORIES["dense"]


# --- initialisation ---------------------------------------------------------------------------

def _draw(spec, param):
    if spec.kind == "uniform":
        init = Uniform(scale=spec.scale)
    elif spec.kind == "normal":
        init = Normal(sigma=spec.scale)
    else:
        init = Constant(spec.scale)
    value = initializer(init, param.shape, param.dtype).init_data()
    if spec.zero_row is not None:
        array = value.asnumpy().copy()
        array[spec.zero_row] = 0
        value = ms.Tensor(array)
    param.set_data(value)


def _init_layer(entry, cell, scheme, context=None):
    """Redraw the parameters ``entry`` owns on ``cell``; returns their relative names."""
    params = OrderedDict(cell.parameters_and_names())
    torch_shapes = OrderedDict()
    owned = OrderedDict()
    for name, param in params.items():
        rule = entry.param_for(name, "ms", init=True)
        if rule is not None:
            owned[name] = rule
            torch_shapes[rule.target(name, "ms")] = registry.torch_layout_shape(rule, param.shape)
    if not owned:
        return []
    ctx = registry.layer_context(entry, cell, torch_shapes)
    if context:
        ctx = {**context, **ctx}
    for name, rule in owned.items():
        ctx["param"] = rule.target(name, "ms")
        _draw(rule.init_for(scheme)(ctx), params[name])
    return list(owned)


def _init_tree(cell, scheme, context=None):
    """Children first, so a parent's own rule wins (MultiheadAttention zeroes its out_proj bias)."""
    done = {}
    for name, sub in reversed(list(cell.cells_and_names())):
        entry = registry.entry_for_ms(sub)
        if entry is None:
            continue
        owned = _init_layer(entry, sub, scheme, context if sub is cell else None)
        if owned:
            done[name] = (entry, [f"{name}.{p}" if name else p for p in owned])
    return done


@dataclass
class InitReport:
    """What :func:`apply_init` redrew (layer count per type) and what it could not."""

    scheme: str
    redrawn: Counter = field(default_factory=Counter)
    parameters: int = 0
    unknown: OrderedDict = field(default_factory=OrderedDict)  # cell name -> (type, [parameter names])

    def lines(self):
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.redrawn.items()))
        out = [f"apply_init({self.scheme!r}): redrew {self.parameters} parameters in "
               f"{sum(self.redrawn.values())} layers ({kinds or 'none'})"]
        for name, (kind, params) in self.unknown.items():
            out.append(f"not redrawn: {name or '<root>'} ({kind}) holds {', '.join(params)}: no registry entry "
                       f"for {kind}; initialise it yourself or register it in msport.registry")
        return out

    def __str__(self):
        return "\n".join(self.lines())


def apply_init(cell, scheme="torch"):
    """Re-initialise every registered layer of ``cell`` in place; returns an :class:`InitReport`.

    For a network built elsewhere (a user's own port): the parameters keep their
    names and shapes, only their values are redrawn, each by its layer type's
    rule in :mod:`msport.registry` (BatchNorm and the other norms get 1/0 and
    running statistics 0/1 under every scheme, as in both frameworks).
    Parameters held by a cell type the registry does not know are listed in
    the report and in a warning, never skipped silently.
    """
    _check_scheme(scheme)
    report = InitReport(scheme)
    done = _init_tree(cell, scheme)
    owned = set()
    for entry, names in done.values():
        report.redrawn[entry.name] += 1
        report.parameters += len(names)
        owned.update(names)
    for name, sub in cell.cells_and_names():
        own = [f"{name}.{key}" if name else key for key in sub._params]  # this cell's own parameters
        left = [p for p in own if p not in owned]
        if left:
            report.unknown[name] = (type(sub).__name__, left)
    if report.unknown:
        warnings.warn("; ".join(report.lines()[1:]), stacklevel=2)
    return report


__all__ = ["INIT_SCHEMES", "FACTORIES", "InitReport", "apply_init", "build",
           "_conv2d", "_dense", *FACTORIES]
