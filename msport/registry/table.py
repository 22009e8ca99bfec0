"""The table of layer entries: the one part of the registry a person adding a layer touches.

One :class:`~msport.registry.schema.LayerEntry` per torch layer type (see :mod:`msport.registry` for
what an entry holds). Adding a layer type is one entry here and one row in ``tests/test_registry.py``.
"""

from collections import OrderedDict

from msport.tolerances import NORM_EPS_REL
from msport.registry.builders import (_bn_entry, _conv_entry, _embedding_build, _group_norm_build,
                                      _instance_norm_entry, _layer_norm_build, _layer_norm_fixed, _linear_build,
                                      _mha_build, _plain, _pool_entry, _require, _rnn_entry, _affine_fixed,
                                      _DEPRECATED_LOSS_ARGS, _loss)
from msport.registry.schema import (REQUIRED, Attr, LayerEntry, Param, UnknownLayer, _embedding_normal,
                                    _embedding_normal_001, _normal_001, _ones, _prelu_init, _uniform_fan_in,
                                    _xavier_uniform, _zeros)


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
        attrs=(Attr("eps", lambda m: m.eps, lambda c: c.epsilon, kind="rel", rtol=NORM_EPS_REL,
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
        attrs=(Attr("eps", lambda m: m.eps, lambda c: c.eps, kind="rel", rtol=NORM_EPS_REL),
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
    # --- losses: called as loss(input, target); MindSpore 2.10's classes match torch's (measured to 2.6e-7,
    # tests/test_losses.py) once reduction is passed; KLDivLoss(log_target=True) is a cell of msport's own
    _loss("CrossEntropyLoss", (("weight", None), *_DEPRECATED_LOSS_ARGS[:1], ("ignore_index", -100),
                               _DEPRECATED_LOSS_ARGS[1], ("reduction", "mean"), ("label_smoothing", 0.0)),
          ("weight", "ignore_index", "label_smoothing"), factory="cross_entropy_loss",
          doc="Integer labels or class probabilities, like torch's. The common port, "
              "nn.SoftmaxCrossEntropyWithLogits(), wants one-hot labels and returns per-sample losses."),
    _loss("NLLLoss", (("weight", None), *_DEPRECATED_LOSS_ARGS[:1], ("ignore_index", -100),
                      _DEPRECATED_LOSS_ARGS[1], ("reduction", "mean")), ("weight", "ignore_index"),
          factory="nll_loss"),
    _loss("BCEWithLogitsLoss", (("weight", None), *_DEPRECATED_LOSS_ARGS, ("reduction", "mean"), ("pos_weight", None)),
          ("weight", "pos_weight"), factory="bce_with_logits_loss"),
    _loss("BCELoss", (("weight", None), *_DEPRECATED_LOSS_ARGS, ("reduction", "mean")), ("weight",),
          factory="bce_loss"),
    _loss("MSELoss", (*_DEPRECATED_LOSS_ARGS, ("reduction", "mean")), (), factory="mse_loss"),
    _loss("L1Loss", (*_DEPRECATED_LOSS_ARGS, ("reduction", "mean")), (), factory="l1_loss"),
    _loss("SmoothL1Loss", (*_DEPRECATED_LOSS_ARGS, ("reduction", "mean"), ("beta", 1.0)), ("beta",),
          factory="smooth_l1_loss", doc="MindSpore's reduction defaults to 'none' (torch 'mean')."),
    _loss("HuberLoss", (("reduction", "mean"), ("delta", 1.0)), ("delta",), factory="huber_loss"),
    _loss("KLDivLoss", (*_DEPRECATED_LOSS_ARGS, ("reduction", "mean"), ("log_target", False)), (),
          factory="kl_div_loss", impl=lambda a: "KLDivLoss" if a["log_target"] else None,
          attrs=(Attr("log_target", lambda m: bool(m.log_target), lambda c: bool(getattr(c, "log_target", False))),),
          doc="MindSpore's has no log_target; msport's cell adds it."),
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
