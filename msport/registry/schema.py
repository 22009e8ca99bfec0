"""The registry's vocabulary: :class:`LayerEntry`, :class:`Param`, :class:`Attr` and :class:`Init`,
the initialiser functions a :class:`Param` names, and the errors a lookup raises.

Nothing here names a layer: the entries are in :mod:`msport.registry.table`.
"""

import inspect
import math
import re
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

from msport.errors import UserError

REQUIRED = inspect.Parameter.empty
INIT_SCHEMES = ("torch", "legacy", "mindspore")


class UnknownLayer(UserError):
    """A torch or MindSpore layer type the registry has no entry for."""


class UnsupportedLayer(UserError):
    """A torch layer configuration MindSpore 2.10 cannot compute exactly on the CPU."""


# --- initialisers ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Init:
    """One parameter's initial distribution: ``uniform`` U(-scale, scale), ``normal`` N(0, scale^2),
    ``constant`` (every element ``scale``); ``zero_row`` zeroes one row afterwards (Embedding's
    ``padding_idx``)."""

    kind: str
    scale: float
    zero_row: Optional[int] = None

    def describe(self):
        text = {"uniform": f"U(-{self.scale:.4g}, {self.scale:.4g})", "normal": f"N(0, {self.scale:.4g}^2)",
                "constant": f"constant {self.scale:g}"}[self.kind]
        return text + (f", row {self.zero_row} zero" if self.zero_row is not None else "")

    @property
    def std(self):
        """The standard deviation of one draw (0 for a constant)."""
        return {"uniform": self.scale / math.sqrt(3), "normal": self.scale, "constant": 0.0}[self.kind]


def _fan_in(shape):
    """torch's fan_in of a weight stored (out, in/groups, *kernel) in torch's layout."""
    return int(math.prod(shape[1:])) if len(shape) > 1 else int(shape[0])


def _uniform_fan_in(ctx):
    """kaiming_uniform_(a=sqrt(5)) on the weight, U(+-1/sqrt(fan_in)) on the bias: one bound for both."""
    return Init("uniform", 1.0 / math.sqrt(max(_fan_in(ctx["shapes"]["weight"]), 1)))


def _ones(ctx):
    return Init("constant", 1.0)


def _zeros(ctx):
    return Init("constant", 0.0)


def _normal_001(ctx):
    return Init("normal", 0.01)


def _embedding_normal(ctx):
    return Init("normal", 1.0, zero_row=ctx.get("padding_idx"))


def _embedding_normal_001(ctx):
    return Init("normal", 0.01, zero_row=ctx.get("padding_idx"))


def _uniform_hidden(ctx):
    return Init("uniform", 1.0 / math.sqrt(ctx["hidden_size"]))


def _xavier_uniform(ctx):
    out, inp = ctx["shapes"][ctx["param"]][:2]
    return Init("uniform", math.sqrt(6.0 / (inp + out)))


def _prelu_init(ctx):
    return Init("constant", ctx.get("init", 0.25))


# --- entries --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Param:
    """One parameter of a layer. ``torch``/``ms`` are names relative to the layer, or regular
    expressions when ``pattern`` (the name is then the same on both sides: LSTM's
    ``weight_ih_l0``...). ``layout``: ``"same"``, or ``"unsqueeze2"`` where MindSpore stores an
    axis of length 1 at position 2 that torch does not have (Conv1d: (out, in, k) <-> (out, in, 1, k)).
    ``init``: torch's default for this parameter, a function of the layer's context.
    ``legacy``: MindSpore 1.x's default where it differs from torch's. ``ms_default``:
    MindSpore 2.1+'s default where it differs from torch's. ``buffer``: running statistics."""

    torch: str
    ms: str
    init: Callable
    legacy: Optional[Callable] = None
    ms_default: Optional[Callable] = None
    layout: str = "same"
    buffer: bool = False
    pattern: bool = False
    optional: bool = False
    init_only: bool = False   # a rule for apply_init alone (the parameter belongs to a child layer's entry)

    def matches(self, name, side):
        own = self.torch if side == "torch" else self.ms
        return re.fullmatch(own, name) is not None if self.pattern else name == own

    def target(self, name, side):
        """The other side's name of ``name`` (``side`` is where ``name`` comes from)."""
        if self.pattern:
            return name
        return self.ms if side == "torch" else self.torch

    def init_for(self, scheme):
        if scheme == "legacy" and self.legacy is not None:
            return self.legacy
        if scheme in ("legacy", "mindspore") and self.ms_default is not None:
            return self.ms_default
        return self.init


@dataclass(frozen=True)
class Attr:
    """Configuration an audit compares: read off a torch module and off a MindSpore cell.
    ``kind``: ``"exact"`` (equal) or ``"rel"`` (relative difference within ``rtol``). ``hint``
    says how to fix a mismatch."""

    name: str
    torch: Callable
    ms: Callable
    kind: str = "exact"
    rtol: float = 1e-6
    hint: str = ""


@dataclass(frozen=True)
class LayerEntry:
    name: str                 # torch.nn class name, also the factory's torch twin
    torch_class: str          # attribute of torch.nn
    ms_class: str             # attribute of mindspore.nn, MindSpore's class that a build without ``_impl`` makes
    signature: Tuple          # ((argument, default), ...) as torch's constructor; REQUIRED = no default
    build: Callable           # bound torch arguments -> MindSpore constructor kwargs (may raise UnsupportedLayer);
    #                           a kwarg "_impl" names a cell in msport.cells that msport.layers builds instead
    params: Tuple = ()
    torch_only: Tuple = ()    # torch state with no MindSpore twin (BatchNorm's num_batches_tracked)
    fixed: Optional[Callable] = None     # torch arguments -> MindSpore parameters torch does not have (not trained)
    read_args: Tuple = ()     # ((argument, module -> value), ...) where an argument is not an attribute
    attrs: Tuple = ()
    context: Optional[Callable] = None   # extra init context from a built layer (either framework)
    output_index: Optional[int] = None   # for tuple outputs: the element that is the layer's output
    stochastic: bool = False             # random in train mode (Dropout): layer-diff compares statistics, not values
    probe_input: Optional[Callable] = None  # module -> example input shape for a forward probe
    factory: Optional[str] = None        # name of the msport.layers factory (default: snake_case of name)
    doc: str = ""
    loss: bool = False                   # a loss: called on (input, target); tests/test_losses.py has its rows

    @property
    def factory_name(self):
        return self.factory or _snake(self.name)

    def param_for(self, name, side, init=False):
        """The rule for a parameter name (relative to the layer); init-only rules count when ``init``."""
        for param in self.params:
            if (init or not param.init_only) and param.matches(name, side):
                return param
        return None


def _snake(name):
    """``ConvTranspose2d`` -> ``conv_transpose2d``, ``LeakyReLU`` -> ``leaky_relu``, ``LSTM`` -> ``lstm``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z][a-z])", "_", name).lower()
