"""Helpers that build :class:`~msport.registry.schema.LayerEntry` rows for layer families (convolutions
of every rank, BatchNorm, pooling, RNNs...): each turns torch's constructor arguments into MindSpore's.

A ``_impl`` key in a build's result names a cell of msport's own in :mod:`msport.cells`.
"""

from msport.tolerances import NORM_EPS_REL
from msport.registry.schema import (REQUIRED, Attr, LayerEntry, Param, UnsupportedLayer, _normal_001, _ones, _uniform_fan_in, _uniform_hidden,
                                    _zeros)


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
        attrs=(Attr("eps", lambda m: m.eps, lambda c: c.eps, kind="rel", rtol=NORM_EPS_REL),),
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
        attrs=(Attr("eps", lambda m: m.eps, lambda c: c.eps, kind="rel", rtol=NORM_EPS_REL),),
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


def _ms_ceil_mode(cell):
    """A MindSpore pool keeps ``ceil_mode`` only on its primitive, and only with pad_mode='pad' (else False)."""
    for name in ("max_pool", "avg_pool"):
        attrs = getattr(getattr(cell, name, None), "attrs", None)
        if isinstance(attrs, dict) and "ceil_mode" in attrs:
            return bool(attrs["ceil_mode"])
    return False


def _pool_entry(kind, dims):
    name = f"{kind}Pool{dims}d"
    signature = (("kernel_size", REQUIRED), ("stride", None), ("padding", 0))
    if kind == "Max":
        signature += (("dilation", 1), ("return_indices", False), ("ceil_mode", False))
    else:
        signature += (("ceil_mode", False), ("count_include_pad", True))
        if dims == 2:
            signature += (("divisor_override", None),)
    attrs = (Attr("ceil_mode", lambda m: bool(m.ceil_mode), _ms_ceil_mode,
                  hint="torch rounds the output size up; give MindSpore pad_mode='pad' with ceil_mode=True"),)
    if kind == "Avg":
        attrs += (Attr("count_include_pad", lambda m: bool(m.count_include_pad),
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


# --- losses ---------------------------------------------------------------------------------

#: torch's deprecated loss arguments, replaced by ``reduction``.
_DEPRECATED_LOSS_ARGS = (("size_average", None), ("reduce", None))


def _ms_reduction(cell):
    """A MindSpore loss's reduction: its ``reduction`` attribute, else the flags every loss sets
    (``nn.MSELoss`` keeps no ``reduction``)."""
    if hasattr(cell, "reduction"):
        return cell.reduction
    return "none" if not cell.reduce else ("mean" if cell.average else "sum")


def _tensor_arg(value):
    """A weight argument (torch tensor, numpy array, list or MindSpore tensor) as a float32 MindSpore tensor."""
    if value is None:
        return None
    from msport._mindspore import ms

    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return value if isinstance(value, ms.Tensor) else ms.Tensor(value, ms.float32)


def _reader(arg, presence):
    """Reads ``arg`` off a torch module or a MindSpore cell (whether it is set, for a tensor argument)."""
    if presence:
        return lambda layer: getattr(layer, arg, None) is not None
    return lambda layer: getattr(layer, arg)


def _loss(name, signature, passed, ms_class=None, attrs=(), factory=None, doc="", impl=None):
    """A loss entry. ``passed``: the torch arguments MindSpore's class takes under the same name
    (tensors converted); ``reduction`` is always passed, since MindSpore's defaults differ
    (``nn.SmoothL1Loss``: 'none'). ``impl(arguments)`` may name a cell of msport.cells instead."""

    def build(a):
        for arg, _ in _DEPRECATED_LOSS_ARGS:
            if arg in a:
                _require(a[arg] is None, f"{name}({arg}=...) is deprecated in torch; give reduction= instead")
        kwargs = {k: (_tensor_arg(a[k]) if k in ("weight", "pos_weight") else a[k]) for k in passed}
        kwargs["reduction"] = a["reduction"]
        cell = impl(a) if impl else None
        if cell:
            kwargs.update(_impl=cell, **{k: a[k] for k in a if k not in kwargs and k not in dict(_DEPRECATED_LOSS_ARGS)})
        return kwargs

    reads = [Attr("reduction", lambda m: m.reduction, _ms_reduction,
                  hint="torch's losses default to reduction='mean'; MindSpore's nn.SmoothL1Loss and "
                       "SoftmaxCrossEntropyWithLogits to 'none'")]
    for arg in passed:
        tensor = arg in ("weight", "pos_weight")  # compared by presence: a tensor's values are the user's data
        reads.append(Attr(arg, _reader(arg, tensor), _reader(arg, tensor),
                          kind="exact" if tensor or arg == "ignore_index" else "rel"))
    return LayerEntry(name=name, torch_class=name, ms_class=ms_class or name, signature=signature, build=build,
                      attrs=tuple(reads) + tuple(attrs), factory=factory, doc=doc, loss=True)
