"""The layer-correspondence registry: the one place msport knows which torch layer is which MindSpore layer.

One :class:`LayerEntry` per torch layer type gives

* the torch constructor's signature and defaults (``signature``), from which
  :mod:`msport.layers` generates a factory of the same signature;
* ``build``: the MindSpore class and constructor arguments that compute what
  torch computes (``pad_mode``, ``epsilon``, the momentum convention,
  ``has_bias``, ``p``...), or an :class:`UnsupportedLayer` error naming what
  MindSpore 2.10 cannot express on the CPU, never a silent approximation;
* ``params``: every parameter's torch name, MindSpore name and layout change
  (conversion and ``map_names`` read these), and torch's default initialiser
  (``apply_init`` and the audit read these);
* ``attrs``: the configuration an audit reads off a built torch module and a
  built MindSpore cell to confirm they agree (``eps``, ``p``, ``padding_idx``...);
* ``output_index``: which element of a tuple output is "the" output (LSTM,
  MultiheadAttention), for layer-by-layer capture.

Everything else (factories, ``apply_init``, conversion, audit, capture and
``msport port``) reads this table. Adding a layer type is one entry here and one
row in ``tests/test_registry.py``. A lookup that misses raises
:class:`UnknownLayer` by name; nothing falls back silently.

MindSpore classes are named by attribute (``"Conv2d"`` is ``mindspore.nn.Conv2d``)
and torch classes likewise, so this module imports neither framework: a torch-
only process can read the registry without paying for MindSpore.
"""

import inspect
import math
import re
from collections import OrderedDict
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
    ms_class: str             # attribute of mindspore.nn, or "msport.layers.<Name>" for a cell of ours
    signature: Tuple          # ((argument, default), ...) as torch's constructor; REQUIRED = no default
    build: Callable           # bound torch arguments -> MindSpore constructor kwargs (may raise UnsupportedLayer);
    #                           a kwarg "_impl" names a subclass in msport.layers to build instead of ms_class
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


# --- building helpers -----------------------------------------------------------------------

def _tuple(value, n, what):
    if isinstance(value, int):
        return (value,) * n
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        return value * n
    if len(value) != n:
        raise UnsupportedLayer(f"{what} {value!r} has {len(value)} values where {n} were expected")
    return value


def _require(condition, message):
    if not condition:
        raise UnsupportedLayer(message)


def _conv_padding(a, dims, layer):
    """MindSpore ``pad_mode``/``padding`` for torch's ``padding`` (int, tuple, 'same', 'valid')."""
    _require(a.get("padding_mode", "zeros") == "zeros",
             f"{layer}(padding_mode={a['padding_mode']!r}) has no MindSpore twin: MindSpore convolutions "
             f"pad with zeros only; pad with mindspore.ops.pad(mode=...) first and use padding=0")
    padding = a["padding"]
    kernel = _tuple(a["kernel_size"], dims, "kernel_size")
    dilation = _tuple(a.get("dilation", 1), dims, "dilation")
    if padding == "valid":
        return "valid", 0
    if padding == "same":
        _require(_tuple(a.get("stride", 1), dims, "stride") == (1,) * dims,
                 f"{layer}(padding='same') needs stride 1, as in torch")
        pads = []
        for k, d in zip(kernel, dilation):
            total = d * (k - 1)
            pads += [total // 2, total - total // 2]  # torch puts the odd pixel on the right/bottom
    else:
        pads = []
        for p in _tuple(padding, dims, "padding"):
            pads += [p, p]
    if not any(pads):
        return "valid", 0
    if dims == 1:
        _require(pads[0] == pads[1], f"{layer}: asymmetric padding {pads} cannot be expressed by "
                                     f"MindSpore's Conv1d (one int); pad the input first")
        return "pad", pads[0]
    return "pad", tuple(pads)


def _conv_build(dims, transposed):
    layer = f"ConvTranspose{dims}d" if transposed else f"Conv{dims}d"
    ms_class_name = f"Conv{dims}dTranspose"

    def build(a):
        kernel = _tuple(a["kernel_size"], dims, "kernel_size")
        stride = _tuple(a["stride"], dims, "stride")
        dilation = _tuple(a["dilation"], dims, "dilation")
        if transposed:
            _require(a.get("padding_mode", "zeros") == "zeros", f"{layer} supports only padding_mode='zeros'")
            pads = _tuple(a["padding"], dims, "padding")
            pad_mode, padding = ("valid", 0) if not any(pads) else ("pad", pads[0] if dims == 1 else
                                                                       tuple(p for p in pads for _ in (0, 1)))
        else:
            pad_mode, padding = _conv_padding(a, dims, layer)
        kwargs = dict(in_channels=a["in_channels"], out_channels=a["out_channels"],
                      kernel_size=kernel[0] if dims == 1 else kernel, stride=stride[0] if dims == 1 else stride,
                      pad_mode=pad_mode, padding=padding, dilation=dilation[0] if dims == 1 else dilation,
                      group=a["groups"], has_bias=bool(a["bias"]))
        if transposed and any(_tuple(a["output_padding"], dims, "output_padding")):
            # MindSpore's output_padding fills the extra rows with zeros where torch computes them, and
            # Conv1dTranspose has none: compute the full ('valid') output and crop it as torch does.
            output_padding = _tuple(a["output_padding"], dims, "output_padding")
            pads = _tuple(a["padding"], dims, "padding")
            _require(all(o <= p for o, p in zip(output_padding, pads)),
                     f"{layer}(output_padding={a['output_padding']}) larger than padding={a['padding']} is not "
                     f"supported by msport (the extra rows would lie outside MindSpore's output)")
            kwargs.update(pad_mode="valid", padding=0, _impl=f"Cropped{ms_class_name}",
                          crop=tuple((p, o - p) for p, o in zip(pads, output_padding)))
        return kwargs

    return build


def _conv_entry(dims, transposed=False):
    name = f"ConvTranspose{dims}d" if transposed else f"Conv{dims}d"
    ms_class = (f"Conv{dims}dTranspose" if transposed else f"Conv{dims}d")
    if transposed:
        signature = (("in_channels", REQUIRED), ("out_channels", REQUIRED), ("kernel_size", REQUIRED),
                     ("stride", 1), ("padding", 0), ("output_padding", 0), ("groups", 1), ("bias", True),
                     ("dilation", 1), ("padding_mode", "zeros"))
    else:
        signature = (("in_channels", REQUIRED), ("out_channels", REQUIRED), ("kernel_size", REQUIRED),
                     ("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1), ("bias", True),
                     ("padding_mode", "zeros"))
    layout = "unsqueeze2" if dims == 1 else "same"
    return LayerEntry(
        name=name, torch_class=name, ms_class=ms_class, signature=signature, build=_conv_build(dims, transposed),
        params=(Param("weight", "weight", _uniform_fan_in, legacy=_normal_001, layout=layout),
                Param("bias", "bias", _uniform_fan_in, legacy=_zeros, optional=True)),
        attrs=(Attr("bias", lambda m: m.bias is not None, lambda c: bool(c.has_bias),
                    hint=f"MindSpore's nn.{ms_class} defaults to has_bias=False; torch's to bias=True"),
               Attr("groups", lambda m: m.groups, lambda c: c.group)),
        probe_input=lambda m: (2, m.in_channels) + (9,) * dims,
        doc=("MindSpore pads 'same' by default (the odd pixel of a stride-2 conv lands bottom/right) "
             "and has no bias; msport pads as torch does (pad_mode='pad'/'valid') and sets the bias.")
        + (" Conv1d's weight is stored 4-D in MindSpore, (out, in/groups, 1, k)." if dims == 1 else ""),
    )


def _linear_build(a):
    return dict(in_channels=a["in_features"], out_channels=a["out_features"], has_bias=bool(a["bias"]))


def _bn_build(dims):
    def build(a):
        _require(a["momentum"] is not None, f"BatchNorm{dims}d(momentum=None) (a cumulative average) has no "
                                            f"MindSpore twin; give a momentum")
        _require(a["track_running_stats"], f"BatchNorm{dims}d(track_running_stats=False) has no exact MindSpore "
                                           f"twin (MindSpore keeps moving statistics); keep the default")
        _require(a.get("bias", True) or not a["affine"], f"BatchNorm{dims}d(bias=False) has no MindSpore twin")
        return dict(num_features=a["num_features"], eps=a["eps"], momentum=1.0 - a["momentum"],
                    affine=bool(a["affine"]))
    return build


def _bn_entry(dims):
    name = f"BatchNorm{dims}d"
    inner = "bn2d." if dims == 3 else ""  # MindSpore's BatchNorm3d holds a BatchNorm2d named bn2d
    return LayerEntry(
        name=name, torch_class=name, ms_class=name,
        signature=(("num_features", REQUIRED), ("eps", 1e-5), ("momentum", 0.1), ("affine", True),
                   ("track_running_stats", True)),
        build=_bn_build(dims),
        params=(Param("weight", f"{inner}gamma", _ones, optional=True),
                Param("bias", f"{inner}beta", _zeros, optional=True),
                Param("running_mean", f"{inner}moving_mean", _zeros, buffer=True),
                Param("running_var", f"{inner}moving_variance", _ones, buffer=True)),
        torch_only=("num_batches_tracked",), fixed=_affine_fixed,
        attrs=(Attr("eps", lambda m: m.eps, lambda c: c.eps, kind="rel", rtol=1e-3),),
        probe_input=lambda m: (4, m.num_features) + (5,) * max(dims - 1, 1 if dims == 1 else 0),
        doc="MindSpore's momentum is the weight of the old running value: msport passes 1 - torch's momentum."
            + (" MindSpore names the parameters bn2d.gamma... (an inner BatchNorm2d)." if dims == 3 else ""),
    )


def _layer_norm_build(a):
    shape = a["normalized_shape"]
    shape = (shape,) if isinstance(shape, int) else tuple(int(s) for s in shape)
    kwargs = dict(normalized_shape=shape, begin_norm_axis=-1, begin_params_axis=-1, epsilon=a["eps"])
    if len(shape) > 1:  # MindSpore's LayerNorm kernel on the CPU normalises the last axis only
        kwargs["_impl"] = "MultiAxisLayerNorm"
    return kwargs


def _layer_norm_fixed(a):
    if not a["elementwise_affine"]:
        return ("gamma", "beta")
    return () if a["bias"] else ("beta",)


def _affine_fixed(a):
    return () if a["affine"] else ("gamma", "beta")


def _group_norm_build(a):
    _require(a.get("bias", True) or not a["affine"], "GroupNorm(bias=False) has no MindSpore twin")
    return dict(num_groups=a["num_groups"], num_channels=a["num_channels"], eps=a["eps"], affine=bool(a["affine"]))


def _instance_norm_build(dims):
    def build(a):
        _require(not a["track_running_stats"],
                 f"InstanceNorm{dims}d(track_running_stats=True) has no MindSpore CPU twin "
                 f"(MindSpore's InstanceNorm kernel does not exist on the CPU)")
        _require(a.get("bias", True) or not a["affine"], f"InstanceNorm{dims}d(bias=False) has no MindSpore twin")
        # InstanceNorm is GroupNorm with one channel per group; MindSpore's own InstanceNorm has no CPU kernel.
        return dict(num_groups=a["num_features"], num_channels=a["num_features"], eps=a["eps"],
                    affine=bool(a["affine"]))
    return build


def _instance_norm_entry(dims):
    name = f"InstanceNorm{dims}d"
    return LayerEntry(
        name=name, torch_class=name, ms_class="GroupNorm",
        signature=(("num_features", REQUIRED), ("eps", 1e-5), ("momentum", 0.1), ("affine", False),
                   ("track_running_stats", False)),
        build=_instance_norm_build(dims), fixed=_affine_fixed,
        params=(Param("weight", "gamma", _ones, optional=True), Param("bias", "beta", _zeros, optional=True)),
        attrs=(Attr("eps", lambda m: m.eps, lambda c: c.eps, kind="rel", rtol=1e-3),),
        probe_input=lambda m: (2, m.num_features) + (5,) * dims,
        doc="Built as GroupNorm(C, C): MindSpore 2.10 has no InstanceNorm kernel on the CPU.",
    )


def _embedding_build(a):
    for unsupported in ("max_norm",):
        _require(a[unsupported] is None, f"Embedding({unsupported}=...) has no MindSpore twin")
    _require(not a["scale_grad_by_freq"], "Embedding(scale_grad_by_freq=True) has no MindSpore twin")
    padding_idx = a["padding_idx"]
    if padding_idx is not None and padding_idx < 0:
        padding_idx += a["num_embeddings"]
    return dict(vocab_size=a["num_embeddings"], embedding_size=a["embedding_dim"], padding_idx=padding_idx)


def _rnn_build(kind):
    def build(a):
        if kind == "LSTM":
            _require(not a.get("proj_size"), "LSTM(proj_size=...) has no MindSpore twin")
        kwargs = dict(input_size=a["input_size"], hidden_size=a["hidden_size"], num_layers=a["num_layers"],
                      has_bias=bool(a["bias"]), batch_first=bool(a["batch_first"]), dropout=float(a["dropout"]),
                      bidirectional=bool(a["bidirectional"]))
        if kind == "RNN":
            kwargs["nonlinearity"] = a["nonlinearity"]
        return kwargs
    return build


def _rnn_entry(kind):
    signature = (("input_size", REQUIRED), ("hidden_size", REQUIRED), ("num_layers", 1))
    if kind == "RNN":
        signature += (("nonlinearity", "tanh"),)
    signature += (("bias", True), ("batch_first", False), ("dropout", 0.0), ("bidirectional", False))
    if kind == "LSTM":
        signature += (("proj_size", 0),)
    names = r"(weight|bias)_(ih|hh)_l\d+(_reverse)?"
    return LayerEntry(
        name=kind, torch_class=kind, ms_class=kind, signature=signature, build=_rnn_build(kind),
        params=(Param(names, names, _uniform_hidden, pattern=True),),
        attrs=(Attr("hidden_size", lambda m: m.hidden_size, lambda c: c.hidden_size),
               Attr("num_layers", lambda m: m.num_layers, lambda c: c.num_layers),
               Attr("bidirectional", lambda m: bool(m.bidirectional), lambda c: bool(c.bidirectional)),
               Attr("batch_first", lambda m: bool(m.batch_first), lambda c: bool(c.batch_first))),
        context=lambda layer: {"hidden_size": layer.hidden_size},
        output_index=0,
        doc="Same parameter names, gate order and U(+-1/sqrt(hidden)) init in both frameworks.",
    )


def _mha_build(a):
    _require(not a["add_zero_attn"], "MultiheadAttention(add_zero_attn=True) is not supported by msport")
    return dict(embed_dim=a["embed_dim"], num_heads=a["num_heads"], dropout=float(a["dropout"]),
                has_bias=bool(a["bias"]), add_bias_kv=bool(a["add_bias_kv"]), kdim=a["kdim"], vdim=a["vdim"],
                batch_first=bool(a["batch_first"]))


def _pool_build(kind, dims):
    layer = f"{kind}Pool{dims}d"

    def build(a):
        kernel = _tuple(a["kernel_size"], dims, "kernel_size")
        stride = _tuple(a["stride"] if a["stride"] is not None else a["kernel_size"], dims, "stride")
        pads = _tuple(a["padding"], dims, "padding")
        one = (lambda v: v[0]) if dims == 1 else (lambda v: v)
        kwargs = dict(kernel_size=one(kernel), stride=one(stride), ceil_mode=bool(a["ceil_mode"]))
        if any(pads) or a["ceil_mode"]:  # MindSpore refuses ceil_mode with pad_mode='valid'
            kwargs.update(pad_mode="pad", padding=one(pads))
        else:
            kwargs.update(pad_mode="valid")
        if kind == "Max":
            _require(not a["return_indices"], f"{layer}(return_indices=True) is not supported by msport")
            dilation = _tuple(a["dilation"], dims, "dilation")
            if any(d != 1 for d in dilation):
                kwargs["dilation"] = one(dilation)
        else:
            kwargs["count_include_pad"] = bool(a["count_include_pad"])
            if dims == 2 and a.get("divisor_override") is not None:
                kwargs["divisor_override"] = a["divisor_override"]
        return kwargs

    return build


def _pool_entry(kind, dims):
    name = f"{kind}Pool{dims}d"
    signature = (("kernel_size", REQUIRED), ("stride", None), ("padding", 0))
    if kind == "Max":
        signature += (("dilation", 1), ("return_indices", False), ("ceil_mode", False))
    else:
        signature += (("ceil_mode", False), ("count_include_pad", True))
        if dims == 2:
            signature += (("divisor_override", None),)
    attrs = ()
    if kind == "Avg":
        attrs = (Attr("count_include_pad", lambda m: bool(m.count_include_pad),
                      lambda c: bool(getattr(c, "count_include_pad", True))),)
    return LayerEntry(
        name=name, torch_class=name, ms_class=name, signature=signature, build=_pool_build(kind, dims),
        attrs=attrs, probe_input=lambda m: (1, 3) + (11,) * dims,
        doc="MindSpore's pad_mode='same' pads asymmetrically; msport pads as torch does (pad_mode='pad').",
    )


def _plain(name, ms_class=None, signature=(), build=None, attrs=(), doc=""):
    """A layer without parameters; by default no argument reaches MindSpore (``inplace``: MindSpore cells
    return new tensors)."""
    return LayerEntry(name=name, torch_class=name, ms_class=ms_class or name, signature=signature,
                      build=build or (lambda a: {}), attrs=attrs, doc=doc)


ENTRIES = (
    _conv_entry(1), _conv_entry(2), _conv_entry(3),
    _conv_entry(1, transposed=True), _conv_entry(2, transposed=True), _conv_entry(3, transposed=True),
    LayerEntry(
        name="Linear", torch_class="Linear", ms_class="Dense",
        signature=(("in_features", REQUIRED), ("out_features", REQUIRED), ("bias", True)),
        build=_linear_build,
        params=(Param("weight", "weight", _uniform_fan_in, legacy=_normal_001),
                Param("bias", "bias", _uniform_fan_in, legacy=_zeros, optional=True)),
        attrs=(Attr("bias", lambda m: m.bias is not None, lambda c: bool(c.has_bias)),),
        probe_input=lambda m: (2, m.in_features), factory="dense",
        doc="Same layout (out, in); no transpose.",
    ),
    _bn_entry(1), _bn_entry(2), _bn_entry(3),
    LayerEntry(
        name="LayerNorm", torch_class="LayerNorm", ms_class="LayerNorm",
        signature=(("normalized_shape", REQUIRED), ("eps", 1e-5), ("elementwise_affine", True), ("bias", True)),
        build=_layer_norm_build, fixed=_layer_norm_fixed,
        read_args=(("bias", lambda m: m.bias is not None or not m.elementwise_affine),),
        params=(Param("weight", "gamma", _ones, optional=True), Param("bias", "beta", _zeros, optional=True)),
        attrs=(Attr("eps", lambda m: m.eps, lambda c: c.epsilon, kind="rel", rtol=1e-3,
                    hint="MindSpore's nn.LayerNorm defaults to epsilon=1e-7, torch's to eps=1e-5"),),
        probe_input=lambda m: (2, 3) + tuple(m.normalized_shape),
        doc="MindSpore's epsilon defaults to 1e-7 (torch 1e-5); without elementwise_affine MindSpore still "
            "holds gamma/beta, fixed at 1/0 and not trained.",
    ),
    LayerEntry(
        name="GroupNorm", torch_class="GroupNorm", ms_class="GroupNorm",
        signature=(("num_groups", REQUIRED), ("num_channels", REQUIRED), ("eps", 1e-5), ("affine", True)),
        build=_group_norm_build, fixed=_affine_fixed,
        params=(Param("weight", "gamma", _ones, optional=True), Param("bias", "beta", _zeros, optional=True)),
        attrs=(Attr("eps", lambda m: m.eps, lambda c: c.eps, kind="rel", rtol=1e-3),
               Attr("num_groups", lambda m: m.num_groups, lambda c: c.num_groups)),
        probe_input=lambda m: (2, m.num_channels, 4, 4),
    ),
    _instance_norm_entry(1), _instance_norm_entry(2),
    LayerEntry(
        name="Embedding", torch_class="Embedding", ms_class="Embedding",
        signature=(("num_embeddings", REQUIRED), ("embedding_dim", REQUIRED), ("padding_idx", None),
                   ("max_norm", None), ("norm_type", 2.0), ("scale_grad_by_freq", False), ("sparse", False)),
        build=_embedding_build,
        params=(Param("weight", "embedding_table", _embedding_normal, legacy=_embedding_normal_001,
                      ms_default=_embedding_normal_001),),
        attrs=(Attr("padding_idx", lambda m: m.padding_idx, lambda c: c.padding_idx),),
        probe_input=lambda m: (2, 5),
        context=lambda layer: {"padding_idx": layer.padding_idx},
        doc="MindSpore draws Normal(0.01) (std 0.01) where torch draws N(0, 1): 100x. The parameter is "
            "embedding_table (torch: weight).",
    ),
    _rnn_entry("LSTM"), _rnn_entry("GRU"), _rnn_entry("RNN"),
    LayerEntry(
        name="MultiheadAttention", torch_class="MultiheadAttention", ms_class="MultiheadAttention",
        signature=(("embed_dim", REQUIRED), ("num_heads", REQUIRED), ("dropout", 0.0), ("bias", True),
                   ("add_bias_kv", False), ("add_zero_attn", False), ("kdim", None), ("vdim", None),
                   ("batch_first", False)),
        build=_mha_build,
        read_args=(("bias", lambda m: m.in_proj_bias is not None), ("add_bias_kv", lambda m: m.bias_k is not None)),
        params=(Param("in_proj_weight", "in_proj_weight", _xavier_uniform),
                Param("in_proj_bias", "in_proj_bias", _zeros, optional=True),
                Param(r"[qkv]_proj_weight", r"[qkv]_proj_weight", _xavier_uniform, pattern=True),
                Param(r"bias_[kv]", r"bias_[kv]", _zeros, pattern=True),
                Param("out_proj.bias", "out_proj.bias", _zeros, optional=True, init_only=True)),
        attrs=(Attr("num_heads", lambda m: m.num_heads, lambda c: c.num_heads),
               Attr("batch_first", lambda m: bool(m.batch_first), lambda c: bool(c.batch_first))),
        output_index=0,
        doc="Same names on both sides: q, k and v are packed in in_proj_weight (3*embed_dim, embed_dim) in "
            "that order; out_proj is a Linear (MindSpore: Dense) child whose bias torch starts at 0.",
    ),
    LayerEntry(
        name="PReLU", torch_class="PReLU", ms_class="PReLU",
        signature=(("num_parameters", 1), ("init", 0.25)),
        build=lambda a: dict(channel=a["num_parameters"], w=float(a["init"])),
        params=(Param("weight", "w", _prelu_init),),
        doc="The parameter is w (torch: weight).",
    ),
    LayerEntry(
        name="Dropout", torch_class="Dropout", ms_class="Dropout",
        signature=(("p", 0.5), ("inplace", False)),
        build=lambda a: dict(p=float(a["p"])),
        attrs=(Attr("p", lambda m: float(m.p), lambda c: float(c.p) if c.p is not None else 1.0 - float(c.keep_prob),
                    kind="rel", rtol=1e-6,
                    hint="MindSpore's keep_prob is the probability to KEEP (1 - p); give p=..."),),
        stochastic=True,
        doc="Give p: MindSpore's keep_prob is 1 - p, and its keep_prob attribute reads 0.5 whatever p is.",
    ),
    _pool_entry("Max", 1), _pool_entry("Max", 2), _pool_entry("Avg", 1), _pool_entry("Avg", 2),
    LayerEntry(
        name="AdaptiveAvgPool2d", torch_class="AdaptiveAvgPool2d", ms_class="AdaptiveAvgPool2d",
        signature=(("output_size", REQUIRED),), build=lambda a: dict(output_size=a["output_size"]),
        probe_input=lambda m: (1, 3, 7, 7),
    ),
    LayerEntry(
        name="AdaptiveAvgPool1d", torch_class="AdaptiveAvgPool1d", ms_class="AdaptiveAvgPool1d",
        signature=(("output_size", REQUIRED),), build=lambda a: dict(output_size=a["output_size"]),
    ),
    _plain("ReLU", signature=(("inplace", False),)),
    _plain("ReLU6", signature=(("inplace", False),)),
    _plain("SiLU", signature=(("inplace", False),)),
    _plain("Sigmoid"), _plain("Tanh"),
    _plain("GELU", signature=(("approximate", "none"),),
           build=lambda a: dict(approximate=a["approximate"] == "tanh"),
           attrs=(Attr("approximate", lambda m: m.approximate == "tanh", lambda c: c.approximate in (True, "tanh"),
                       hint="MindSpore's nn.GELU defaults to the tanh approximation; torch's is exact"),),
           doc="MindSpore's default is the tanh approximation (approximate=True); torch's is exact."),
    _plain("Hardswish", ms_class="HSwish", signature=(("inplace", False),)),
    _plain("Hardsigmoid", ms_class="HSigmoid", signature=(("inplace", False),)),
    _plain("LeakyReLU", signature=(("negative_slope", 0.01), ("inplace", False)),
           build=lambda a: dict(alpha=float(a["negative_slope"])),
           attrs=(Attr("negative_slope", lambda m: m.negative_slope, lambda c: c.alpha, kind="rel"),)),
    _plain("Softmax", signature=(("dim", None),),
           build=lambda a: _require(a["dim"] is not None, "Softmax(dim=None) is deprecated in torch; give dim")
           or dict(axis=a["dim"])),
    _plain("Flatten", signature=(("start_dim", 1), ("end_dim", -1)),
           build=lambda a: dict(start_dim=a["start_dim"], end_dim=a["end_dim"])),
    _plain("Identity", build=lambda a: {}),
)

_BY_NAME = OrderedDict((e.name, e) for e in ENTRIES)


def entry(name):
    """The entry for a torch layer type name (``"Conv2d"``); raises :class:`UnknownLayer`."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownLayer(f"no registry entry for torch layer type {name!r}; registered: "
                           f"{', '.join(_BY_NAME)}") from None


def entries():
    return tuple(ENTRIES)


# --- class resolution (lazy: the frameworks are imported only when a class is asked for) -------

def torch_class(e):
    import torch

    return getattr(torch.nn, e.torch_class)


def ms_class(e, impl=None):
    """The MindSpore class of an entry; ``impl`` names a subclass of msport's own (msport.layers)."""
    if impl is not None:
        from msport import layers

        return getattr(layers, impl)
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


# --- names and layouts ------------------------------------------------------------------------

def to_ms_layout(param, array):
    if param.layout == "unsqueeze2":
        return array.reshape(array.shape[:2] + (1,) + array.shape[2:])
    return array


def to_torch_layout(param, array):
    if param.layout == "unsqueeze2":
        if array.ndim != 4 or array.shape[2] != 1:
            raise UserError(f"expected a MindSpore 1-d convolution weight shaped (out, in, 1, k), found {array.shape}")
        return array.reshape(array.shape[:2] + array.shape[3:])
    return array


def torch_layout_shape(param, ms_shape):
    ms_shape = tuple(ms_shape)
    return ms_shape[:2] + ms_shape[3:] if param.layout == "unsqueeze2" and len(ms_shape) == 4 else ms_shape


def ms_layout_shape(param, torch_shape):
    torch_shape = tuple(torch_shape)
    return torch_shape[:2] + (1,) + torch_shape[2:] if param.layout == "unsqueeze2" else torch_shape


# Without a model, a layer's type is inferred from its parameter names and ranks alone. Only what
# names and ranks determine is inferred; the rest maps by identical name, and a model that
# disagrees then fails to load with the names in the message (the conversion report says so).
def infer_from_names(shapes, side):
    """The entry one layer's parameters identify without a model, or ``None``.

    ``shapes``: ``{parameter name relative to the layer: shape}``, from ``side`` (``"torch"``/``"ms"``).
    """
    suffixes = set(shapes)
    ranks = {name: len(shape) for name, shape in shapes.items()}
    if side == "torch":
        if "running_mean" in suffixes:
            return _BY_NAME["BatchNorm2d"]
        if suffixes == {"weight", "bias"} and tuple(shapes["weight"]) == tuple(shapes["bias"]):
            return _BY_NAME["LayerNorm"]
        if "weight" in suffixes and ranks["weight"] == 3 and suffixes <= {"weight", "bias"}:
            return _BY_NAME["Conv1d"]
        return None
    if "moving_mean" in suffixes:
        return _BY_NAME["BatchNorm2d"]
    if "gamma" in suffixes or "beta" in suffixes:
        return _BY_NAME["LayerNorm"]
    if "embedding_table" in suffixes:
        return _BY_NAME["Embedding"]
    if suffixes == {"w"}:
        return _BY_NAME["PReLU"]
    return None


# --- the documentation table -------------------------------------------------------------------

_INIT_TEXT = {
    _uniform_fan_in: "U(-b, b), b = 1/sqrt(fan_in)", _ones: "1", _zeros: "0", _normal_001: "N(0, 0.01^2)",
    _embedding_normal: "N(0, 1), padding_idx row 0", _embedding_normal_001: "N(0, 0.01^2), padding_idx row 0",
    _uniform_hidden: "U(-b, b), b = 1/sqrt(hidden_size)", _xavier_uniform: "xavier-uniform",
    _prelu_init: "init (0.25)",
}


def markdown_table():
    """The per-layer table of docs/layers.md, generated from the entries (a test keeps the file equal)."""
    rows = ["| torch.nn | mindspore.nn | parameters (torch -> MindSpore) | torch's initial values | "
            "MindSpore's differing default (legacy = 1.x) | notes |",
            "| --- | --- | --- | --- | --- | --- |"]
    for e in ENTRIES:
        params = [p for p in e.params if not p.init_only]
        names = ", ".join(
            (p.torch.replace("|", "\\|") if p.pattern else (p.torch if p.torch == p.ms else f"{p.torch} -> {p.ms}"))
            + (" (reshaped: (out, in, k) <-> (out, in, 1, k))" if p.layout == "unsqueeze2" else "")
            for p in params) or "none"
        label = (lambda p: p.torch.replace("|", "\\|"))
        inits = ", ".join(f"{label(p)}: {_INIT_TEXT[p.init]}" for p in e.params) or "-"
        differing = ", ".join(
            f"{label(p)}: "
            + " / ".join(f"{scheme} {_INIT_TEXT[p.init_for(scheme)]}" for scheme in ("legacy", "mindspore")
                         if p.init_for(scheme) is not p.init)
            for p in e.params if p.init_for("legacy") is not p.init or p.init_for("mindspore") is not p.init) or "-"
        rows.append(f"| {e.name} | {e.ms_class} | {names} | {inits} | {differing} | {e.doc or '-'} |")
    return "\n".join(rows) + "\n"


__all__ = [
    "Attr", "Init", "INIT_SCHEMES", "LayerEntry", "Param", "REQUIRED", "UnknownLayer", "UnsupportedLayer",
    "bind", "entries", "entry", "markdown_table", "entry_for_ms", "entry_for_torch", "infer_from_names", "layer_context",
    "ms_class", "ms_layers", "ms_layout_shape", "to_ms_layout", "to_torch_layout", "torch_class",
    "torch_constructor_args", "torch_layers", "torch_layout_shape",
]


DOCS_PAGE = "docs/layers.md"
_BEGIN, _END = "<!-- registry table: begin -->", "<!-- registry table: end -->"


def docs_table_section(text):
    """The generated part of docs/layers.md."""
    return text[text.index(_BEGIN) + len(_BEGIN):text.index(_END)].strip("\n") + "\n"


if __name__ == "__main__":  # python -m msport.registry: rewrite the table in docs/layers.md
    import pathlib

    page = pathlib.Path(__file__).resolve().parent.parent / DOCS_PAGE
    text = page.read_text()
    head, tail = text[:text.index(_BEGIN) + len(_BEGIN)], text[text.index(_END):]
    page.write_text(f"{head}\n{markdown_table()}{tail}")
    print(f"wrote {page}")
