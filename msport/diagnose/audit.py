"""Audit a torch model and its MindSpore twin for porting mistakes, without training either.

Each check below is a mistake real ports make, and each produces records in
torch naming with a ``check`` field:

``parameters``
    every torch parameter/buffer has a MindSpore twin of the same shape.
``init``
    each MindSpore parameter's initial distribution against the reference:
    PyTorch's default U(-b, b), b = 1/sqrt(fan_in), for Conv/Linear weights and
    biases (when the torch model itself follows it; else the torch model's own
    values); a constant where torch is constant (BatchNorm's 1/0). The seed's
    Normal(0.01)/zero-bias init is caught here before a single epoch.
``batchnorm``
    momentum and eps. MindSpore's constructor takes ``momentum`` as the weight
    of the *old* running value (default 0.9 == torch's 0.1), so a port that
    writes torch's 0.1 updates running statistics 9x too fast. The momentum is
    measured, not read: one train-mode step on a probe batch shows which
    fraction of the batch mean enters the running mean (MindSpore 2.10 stores
    ``1 - momentum`` in the ``.momentum`` attribute, so reading it is a trap).
``conv`` / ``linear``
    bias presence (MindSpore's ``nn.Conv2d`` defaults to ``has_bias=False``),
    output shapes on a probe batch, and for convolutions a probe through both
    layers with the same weights: MindSpore's default ``pad_mode='same'`` with
    stride 2 pads bottom/right only and shifts every output against torch's
    symmetric ``padding=1`` while keeping the shape.
``weight_decay`` (with ``optimizer``)
    the decay each parameter really gets. MindSpore's optimizers, given a plain
    parameter list, skip every parameter whose name contains 'beta' or 'gamma'
    (``decay_filter`` in mindspore/nn/optim/optimizer.py); torch's SGD decays
    all. Read from the optimizer's ``decay_flags``/``group_weight_decay``.
``loss`` (with ``loss_fn``)
    the MindSpore loss on the same logits and integer labels as torch's
    ``CrossEntropyLoss()``: ``nn.SoftmaxCrossEntropyWithLogits()`` defaults to
    one-hot labels and per-sample losses (``sparse=False, reduction='none'``).

The models are left as they were (probes restore every value they touch).
"""

from collections import OrderedDict

import numpy as np

from msport.diagnose import plots
from msport.diagnose.capture import capture_mindspore
from msport.diagnose.compare_ckpt import mindspore_to_torch_names
from msport.diagnose.report import Column, DiagnosisResult, Figure, flag_mark
from msport.diagnose.stats import (BN_EPS_RTOL, BN_MOMENTUM_ATOL, FORWARD_RTOL_EVAL, INIT_KS_ALPHA,
                                   INIT_MIN_SAMPLES, INIT_STD_RATIO_RANGE, LOSS_RTOL, WEIGHT_DECAY_RTOL,
                                   compare, ks_two_sample, ks_uniform)
from msport.errors import UserError
from msport.progress import no_progress

CHECKS = ("parameters", "init", "batchnorm", "conv", "linear", "weight_decay", "loss")
#: Values a constant-initialised parameter (BatchNorm's 1 and 0) may deviate by.
CONSTANT_ATOL = 1e-6
DEFAULT_INPUT_SHAPE = (2, 3, 32, 32)
STAGES = 3  # the calls audit makes to ``progress``


def audit(torch_module, ms_cell, *, optimizer=None, torch_optimizer=None, loss_fn=None,
          torch_loss_fn=None, input_shape=DEFAULT_INPUT_SHAPE, check_init=True, name_map=None, seed=0,
          progress=no_progress):
    """Run every check (see the module docstring); returns a :class:`DiagnosisResult`.

    ``optimizer``: the MindSpore optimizer built the port's way (checks weight
    decay); ``torch_optimizer``: the torch one it should match (default: the
    MindSpore optimizer's nominal decay on every parameter, as torch's SGD
    does). ``loss_fn``: the MindSpore loss cell; ``torch_loss_fn`` defaults to
    ``torch.nn.CrossEntropyLoss()``. ``input_shape``: a probe batch for shapes
    and convolution probes. ``check_init=False`` for trained weights.
    ``name_map``: ``{torch_layer_name: mindspore_layer_name}``. ``progress(stage)``
    is called as each of its :data:`STAGES` starts.
    """
    rng = np.random.default_rng(seed)
    name_map = dict(name_map or {})
    ms_layers = OrderedDict(ms_cell.cells_and_names())
    torch_layers = OrderedDict(torch_module.named_modules())
    ms_params = OrderedDict((p.name, p) for p in ms_cell.get_parameters())
    ms_to_torch = _parameter_names(ms_params, name_map)
    torch_state = OrderedDict((k, v.detach().cpu().numpy()) for k, v in torch_module.state_dict().items()
                              if not k.endswith("num_batches_tracked"))
    # copies: asnumpy() can alias the live buffer, which the BatchNorm probe below updates
    ms_values = OrderedDict((ms_to_torch[k], np.array(p.asnumpy(), copy=True))
                            for k, p in ms_params.items() if k in ms_to_torch)

    progress("parameters and initial distributions")
    records = _parameter_records(torch_state, ms_values)
    if check_init:
        records += _init_records(torch_state, ms_values, torch_layers)
    progress("probing every layer in both frameworks")
    probe = rng.standard_normal(input_shape).astype(np.float32)
    torch_shapes = _torch_layer_shapes(torch_module, probe)
    ms_out_shapes = _ms_layer_output_shapes(ms_cell, probe)
    records += _layer_records(torch_layers, ms_layers, ms_params, torch_shapes, ms_out_shapes, name_map, rng)
    progress("weight decay and loss")
    if optimizer is not None:
        records += _weight_decay_records(optimizer, torch_optimizer, torch_module, ms_to_torch)
    if loss_fn is not None:
        records.append(_loss_record(loss_fn, torch_loss_fn, rng))

    flagged = [r for r in records if r["flagged"]]
    summary = OrderedDict([
        ("flagged", len(flagged)),
        ("first_divergence", flagged[0]["name"] if flagged else None),
    ])
    for check in CHECKS:
        of_check = [r for r in records if r["check"] == check]
        if of_check:
            summary[f"{check}_checked"] = len(of_check)
            summary[f"{check}_flagged"] = sum(1 for r in of_check if r["flagged"])
    notes = []
    if not check_init:
        notes.append("initial distributions not checked (trained weights)")
    if optimizer is None:
        notes.append("weight decay not checked: no optimizer given")
    if loss_fn is None:
        notes.append("loss not checked: no loss given")
    return DiagnosisResult("audit", records, summary, notes)


def _record(check, name, torch_text, ms_text, reasons, **figures):
    record = OrderedDict([("check", check), ("name", name), ("torch", torch_text), ("mindspore", ms_text)])
    record.update(figures)
    reasons = [r for r in reasons if r]
    record["flagged"] = bool(reasons)
    record["reason"] = "; ".join(reasons) if reasons else None
    return record


def _parameter_names(ms_params, name_map):
    """``{ms_parameter_name: torch_name}`` through the conversion rules and ``name_map``."""
    try:
        names = mindspore_to_torch_names(ms_params)
    except UserError as exc:
        raise UserError(f"MindSpore parameter names do not map to torch names: {exc}") from exc
    torch_layer_of = {ms: pt for pt, ms in name_map.items()}
    mapped = OrderedDict()
    for ms_name, torch_name in names.items():
        layer, _, suffix = torch_name.rpartition(".")
        mapped[ms_name] = f"{torch_layer_of[layer]}.{suffix}" if layer in torch_layer_of else torch_name
    return mapped


# --- parameters -----------------------------------------------------------------------------

def _parameter_records(torch_state, ms_values):
    records = []
    for name, value in torch_state.items():
        other = ms_values.get(name)
        if other is None:
            records.append(_record("parameters", name, _shape_text(value), "missing",
                                   [f"{name} has no MindSpore twin"]))
        elif other.shape != value.shape:
            records.append(_record("parameters", name, _shape_text(value), _shape_text(other),
                                   [f"shape {value.shape} vs {other.shape}"]))
    for name, other in ms_values.items():
        if name not in torch_state:
            records.append(_record("parameters", name, "missing", _shape_text(other),
                                   [f"{name} exists only in MindSpore"]))
    return records


def _shape_text(value):
    return "shape (" + ",".join(str(d) for d in value.shape) + ")"


# --- init -----------------------------------------------------------------------------------

def _init_records(torch_state, ms_values, torch_layers):
    records = []
    for name, torch_value in torch_state.items():
        ms_value = ms_values.get(name)
        if ms_value is None or ms_value.shape != torch_value.shape:
            continue  # reported by the parameters check
        layer_name, _, suffix = name.rpartition(".")
        bound = _torch_default_bound(torch_layers.get(layer_name), suffix)
        record = _init_record(name, torch_value, ms_value, bound)
        record["layer_type"] = type(torch_layers[layer_name]).__name__ if layer_name in torch_layers else None
        records.append(record)
    return records


def _torch_default_bound(layer, suffix):
    """b of PyTorch's default U(-b, b) for this Conv/Linear weight or bias; ``None`` for other layers."""
    import torch

    convolution = isinstance(layer, torch.nn.modules.conv._ConvNd) and not layer.transposed
    if not (convolution or isinstance(layer, torch.nn.Linear)) or suffix not in ("weight", "bias"):
        return None
    fan_in = int(np.prod(layer.weight.shape[1:]))  # in_channels/groups * kernel area
    return 1.0 / np.sqrt(fan_in)


def _init_record(name, torch_value, ms_value, bound):
    figures = OrderedDict(reference=None, expected_std=None, torch_std=float(np.std(torch_value, dtype=np.float64)),
                          ms_std=float(np.std(ms_value, dtype=np.float64)), std_ratio=None, ks_p=None,
                          ms_max_abs=float(np.max(np.abs(ms_value))) if ms_value.size else 0.0)
    reasons = []
    constant = torch_value.size > 0 and np.all(torch_value == torch_value.reshape(-1)[0])
    if constant and torch_value.size > 1:
        value = float(torch_value.reshape(-1)[0])
        figures["reference"] = f"constant {value:g}"
        figures["expected_std"] = 0.0
        deviation = float(np.max(np.abs(ms_value.astype(np.float64) - value)))
        if deviation > CONSTANT_ATOL:
            reasons.append(f"torch starts at {value:g} everywhere, MindSpore deviates by up to {deviation:.3g}")
        torch_text = f"constant {value:g}"
    elif bound is not None and _follows_uniform(torch_value, bound):
        figures["reference"] = f"U(-{bound:.4g}, {bound:.4g}) (PyTorch default)"
        figures["expected_std"] = bound / np.sqrt(3.0)
        figures["ks_p"] = ks_uniform(ms_value, bound)[1]
        reasons += _distribution_reasons(figures, ms_value)
        torch_text = f"U(+-{bound:.3g}), std {figures['expected_std']:.3g}"
    else:
        figures["reference"] = "torch model's values"
        figures["expected_std"] = figures["torch_std"]
        figures["ks_p"] = ks_two_sample(ms_value, torch_value)[1] if torch_value.size > 1 else None
        reasons += _distribution_reasons(figures, ms_value)
        torch_text = f"std {figures['torch_std']:.3g}"
    if figures["expected_std"]:
        figures["std_ratio"] = figures["ms_std"] / figures["expected_std"]
    ms_text = f"std {figures['ms_std']:.3g}, max|w| {figures['ms_max_abs']:.3g}"
    return _record("init", name, torch_text, ms_text, reasons, **figures)


def _follows_uniform(values, bound):
    """True when the torch side itself looks like PyTorch's default (a user may re-init on purpose)."""
    if values.size == 0 or np.max(np.abs(values)) > bound * (1 + 1e-6):
        return False
    return values.size < INIT_MIN_SAMPLES or ks_uniform(values, bound)[1] >= INIT_KS_ALPHA


def _distribution_reasons(figures, ms_value):
    reasons = []
    expected = figures["expected_std"]
    if ms_value.size >= INIT_MIN_SAMPLES and expected:
        ratio = figures["ms_std"] / expected
        low, high = INIT_STD_RATIO_RANGE
        if not low <= ratio <= high:
            reasons.append(f"std {figures['ms_std']:.3g} is {ratio:.3g}x the reference {expected:.3g}")
    if figures["ks_p"] is not None and figures["ks_p"] < INIT_KS_ALPHA:
        reasons.append(f"KS test rejects the reference distribution (p = {figures['ks_p']:.2g})")
    if reasons and figures["ms_std"] > 0 and abs(figures["ms_std"] - 0.01) < 0.001 and abs(np.mean(ms_value)) < 0.002:
        reasons.append("looks like MindSpore 1.x's default Normal(0.01): set the initialiser explicitly")
    elif reasons and figures["ms_std"] == 0.0 and figures["ms_max_abs"] == 0.0:
        reasons.append("all zeros: MindSpore 1.x's default bias_init='zeros'")
    return reasons


# --- layers: BatchNorm, Conv, Linear -----------------------------------------------------------

def _torch_layer_shapes(torch_module, probe):
    """``{layer: (input shape, output shape)}`` of a torch eval-mode pass (first call of each layer)."""
    import torch

    shapes = {}

    def hook(name):
        def record(_module, inputs, output):
            if name not in shapes and inputs and torch.is_tensor(inputs[0]) and torch.is_tensor(output):
                shapes[name] = (tuple(inputs[0].shape), tuple(output.shape))
        return record

    was_training = [(m, m.training) for m in torch_module.modules()]
    handles = [m.register_forward_hook(hook(n)) for n, m in torch_module.named_modules() if n]
    try:
        torch_module.eval()
        with torch.no_grad():
            torch_module(torch.from_numpy(probe))
    except Exception as exc:  # noqa: BLE001 - any failure means the probe shape does not fit
        raise UserError(f"the torch model cannot run a probe batch of shape {probe.shape} "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                        f"give the model's input shape") from exc
    finally:
        for h in handles:
            h.remove()
        for m, flag in was_training:
            m.training = flag
    return shapes


def _ms_layer_output_shapes(ms_cell, probe):
    try:
        outputs = capture_mindspore(ms_cell, probe).outputs
    except Exception as exc:  # noqa: BLE001 - any failure means the probe shape does not fit
        raise UserError(f"the MindSpore model cannot run a probe batch of shape {probe.shape} "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from exc
    return {name: value.shape for name, value in outputs.items()}


def _layer_records(torch_layers, ms_layers, ms_params, torch_shapes, ms_out_shapes, name_map, rng):
    import torch

    records = []
    for name, layer in torch_layers.items():
        if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
            check = "batchnorm"
        elif isinstance(layer, torch.nn.modules.conv._ConvNd) and not layer.transposed:
            check = "conv"
        elif isinstance(layer, torch.nn.Linear):
            check = "linear"
        else:
            continue
        ms_name = name_map.get(name, name)
        ms_layer = ms_layers.get(ms_name)
        if ms_layer is None:
            records.append(_record(check, name, type(layer).__name__, "missing",
                                   [f"no MindSpore layer named {ms_name!r}"]))
        elif check == "batchnorm":
            records.append(_batchnorm_record(name, layer, ms_layer, rng))
        else:
            records.append(_weighted_layer_record(check, name, layer, ms_name, ms_layer, ms_params,
                                                  torch_shapes.get(name), ms_out_shapes.get(ms_name), rng))
    return records


def _batchnorm_record(name, layer, ms_layer, rng):
    torch_momentum = layer.momentum
    ms_momentum = _measured_ms_momentum(ms_layer, layer, rng)
    ms_eps = float(getattr(ms_layer, "eps", float("nan")))
    reasons = []
    if torch_momentum is None:
        reasons.append("torch uses a cumulative average (momentum=None); MindSpore has no such mode")
    elif ms_momentum is None:
        reasons.append("the MindSpore layer's running mean did not move in a train-mode step")
    elif abs(ms_momentum - torch_momentum) > BN_MOMENTUM_ATOL:
        hint = ""
        if abs(ms_momentum - (1 - torch_momentum)) <= BN_MOMENTUM_ATOL:
            hint = (f": MindSpore's momentum is 1 - torch's, so write nn.BatchNorm2d(momentum={1 - torch_momentum:g}) "
                    f"(msport.layers.batch_norm2d does)")
        reasons.append(f"running statistics update with momentum {ms_momentum:.4g} (torch convention), "
                       f"torch uses {torch_momentum:g}{hint}")
    if not abs(ms_eps - layer.eps) <= BN_EPS_RTOL * layer.eps:
        reasons.append(f"eps {ms_eps:g} vs torch {layer.eps:g}")
    torch_text = f"momentum {torch_momentum}, eps {layer.eps:g}"
    ms_text = f"momentum {_fmt(ms_momentum)} (torch convention), eps {ms_eps:g}"
    return _record("batchnorm", name, torch_text, ms_text, reasons, torch_momentum=torch_momentum,
                   ms_momentum=ms_momentum, torch_eps=float(layer.eps), ms_eps=ms_eps)


def _fmt(value):
    return "?" if value is None else f"{value:.4g}"


def _measured_ms_momentum(ms_layer, torch_layer, rng):
    """The fraction of a batch's mean that one train-mode step moves MindSpore's running mean by.

    This is torch's ``momentum``. The layer's running statistics and flags are restored.
    """
    from msport._mindspore import ms

    stats = [p for p in ms_layer.get_parameters() if p.name.endswith(("moving_mean", "moving_variance"))]
    mean_param = next((p for p in stats if p.name.endswith("moving_mean")), None)
    if mean_param is None:
        return None
    channels = int(mean_param.shape[0])
    spatial = {1: (), 2: (4, 4), 3: (2, 2, 2)}[_bn_dims(torch_layer)]
    old_mean = mean_param.asnumpy().astype(np.float64)
    offset = (old_mean + 1.0).reshape((1, channels) + (1,) * len(spatial))
    batch = (rng.standard_normal((8, channels) + spatial) + offset).astype(np.float32)
    saved = [(p, np.array(p.asnumpy(), copy=True)) for p in stats]
    flags = [(c, c.training) for _, c in ms_layer.cells_and_names()]
    mode = ms.get_context("mode")
    try:
        ms.set_context(mode=ms.PYNATIVE_MODE)
        ms_layer.set_train(True)
        ms_layer(ms.Tensor(batch))
        new_mean = mean_param.asnumpy().astype(np.float64)
    finally:
        for p, value in saved:
            p.set_data(ms.Tensor(value))
        for c, flag in flags:
            c.add_flags(training=flag)
        ms.set_context(mode=mode)
    batch_mean = batch.astype(np.float64).mean(axis=(0,) + tuple(range(2, batch.ndim)))
    moved = float(np.mean((new_mean - old_mean) / (batch_mean - old_mean)))
    return None if abs(moved) < 1e-12 else moved


def _bn_dims(torch_layer):
    import torch

    for dims, kind in ((1, torch.nn.BatchNorm1d), (3, torch.nn.BatchNorm3d)):
        if isinstance(torch_layer, kind):
            return dims
    return 2


def _weighted_layer_record(check, name, layer, ms_name, ms_layer, ms_params, torch_shapes, ms_out_shape, rng):
    torch_bias = layer.bias is not None
    ms_bias_param = ms_params.get(f"{ms_name}.bias") if ms_name else ms_params.get("bias")
    ms_bias = ms_bias_param is not None
    reasons = []
    if torch_bias != ms_bias:
        default = " (MindSpore's nn.Conv2d defaults to has_bias=False)" if check == "conv" and torch_bias else ""
        reasons.append(f"bias: torch {'has one' if torch_bias else 'has none'}, "
                       f"MindSpore {'has one' if ms_bias else 'has none'}{default}")
    torch_out = torch_shapes[1] if torch_shapes else None
    if torch_out is not None and ms_out_shape is not None and tuple(ms_out_shape) != torch_out:
        reasons.append(f"output shape {tuple(ms_out_shape)} vs torch {torch_out}")
    figures = OrderedDict(torch_bias=torch_bias, ms_bias=ms_bias, torch_output_shape=torch_out,
                          ms_output_shape=tuple(ms_out_shape) if ms_out_shape is not None else None,
                          probe_rel_diff=None)
    if check == "conv":
        torch_text = (f"k{_pair(layer.kernel_size)} s{_pair(layer.stride)} p{_pair(layer.padding)}"
                      f"{' d' + _pair(layer.dilation) if max(layer.dilation) > 1 else ''}"
                      f"{' g' + str(layer.groups) if layer.groups > 1 else ''}")
        ms_text = _ms_conv_text(ms_layer)
        if torch_shapes is not None:
            figures["probe_rel_diff"] = _conv_probe(layer, ms_layer, torch_shapes[0], rng)
            if figures["probe_rel_diff"] is not None and figures["probe_rel_diff"] > FORWARD_RTOL_EVAL:
                reasons.append(f"with the same weights the outputs differ (relative {figures['probe_rel_diff']:.3g}): "
                               f"padding/stride differ; torch pads symmetrically, use pad_mode='pad', padding=p")
    else:
        torch_text = f"{layer.in_features}->{layer.out_features}"
        ms_text = f"{getattr(ms_layer, 'in_channels', '?')}->{getattr(ms_layer, 'out_channels', '?')}"
    torch_text += f", bias {'yes' if torch_bias else 'no'}"
    ms_text += f", bias {'yes' if ms_bias else 'no'}"
    return _record(check, name, torch_text, ms_text, reasons, **figures)


def _pair(value):
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    return str(values[0]) if len(set(values)) == 1 else "x".join(str(v) for v in values)


def _ms_conv_text(ms_layer):
    pad_mode = getattr(ms_layer, "pad_mode", "?")
    text = f"k{_pair(getattr(ms_layer, 'kernel_size', '?'))} s{_pair(getattr(ms_layer, 'stride', '?'))} {pad_mode}"
    if pad_mode == "pad":
        text += f" p{_pair(getattr(ms_layer, 'padding', '?'))}"
    return text


def _conv_probe(torch_layer, ms_layer, torch_input_shape, rng):
    """Relative difference of the two layers' outputs on one input, both with MindSpore's weights.

    The torch layer is not modified: its ``_conv_forward`` (which applies its
    padding mode, stride, dilation and groups) is called with MindSpore's
    weight and bias. ``None`` when the layers cannot take the same weight.
    """
    import torch
    from msport._mindspore import ms

    weight = getattr(ms_layer, "weight", None)
    if weight is None or tuple(weight.shape) != tuple(torch_layer.weight.shape):
        return None
    has_bias = getattr(ms_layer, "has_bias", False) and getattr(ms_layer, "bias", None) is not None
    bias = ms_layer.bias.asnumpy() if has_bias else None
    probe = rng.standard_normal((1,) + tuple(torch_input_shape[1:])).astype(np.float32)
    with torch.no_grad():
        expected = torch_layer._conv_forward(torch.from_numpy(probe), torch.from_numpy(weight.asnumpy()),
                                             torch.from_numpy(bias) if bias is not None else None).numpy()
    mode = ms.get_context("mode")
    try:
        ms.set_context(mode=ms.PYNATIVE_MODE)
        actual = ms_layer(ms.Tensor(probe)).asnumpy()
    except Exception:  # noqa: BLE001 - a layer that rejects the input is reported via shapes
        return None
    finally:
        ms.set_context(mode=mode)
    if actual.shape != expected.shape:
        return float("inf")
    return compare(expected, actual)["rel_diff"]


# --- weight decay -------------------------------------------------------------------------------

def _weight_decay_records(optimizer, torch_optimizer, torch_module, ms_to_torch):
    ms_decay = ms_weight_decay_per_parameter(optimizer)
    if torch_optimizer is not None:
        expected = torch_weight_decay_per_parameter(torch_optimizer, torch_module)
        source = "torch optimizer"
    else:
        nominal = max((d for d in ms_decay.values() if d is not None), default=0.0)
        nominal = _nominal_decay(optimizer, nominal)
        expected = OrderedDict((n, nominal) for n, p in torch_module.named_parameters() if p.requires_grad)
        source = "torch SGD convention: every parameter decays"
    ms_name_of = {t: m for m, t in ms_to_torch.items()}
    records = []
    for torch_name, want in expected.items():
        ms_name = ms_name_of.get(torch_name)
        reasons = []
        if ms_name not in ms_decay:
            got, ms_text = None, "not optimized"
            if want:
                reasons.append("not trained by the MindSpore optimizer")
        elif ms_decay[ms_name] is None:
            got, ms_text = None, "dynamic"  # a Cell schedule: nothing to compare
        else:
            got = ms_decay[ms_name]
            ms_text = f"{got:g}"
        if got is not None and not _close(got, want):
            why = ""
            if got == 0.0 and want and not getattr(optimizer, "is_group", False) and \
                    ("beta" in ms_name or "gamma" in ms_name):
                why = (": MindSpore optimizers given a plain parameter list skip every parameter whose name "
                       "contains 'beta' or 'gamma'; pass groups [{'params': params, 'weight_decay': wd}]")
            reasons.append(f"weight decay {got:g}, expected {want:g}{why}")
        records.append(_record("weight_decay", torch_name, f"{want:g}", ms_text, reasons,
                               torch_weight_decay=want, ms_weight_decay=got, expected_from=source))
    return records


def _close(a, b):
    return abs(a - b) <= WEIGHT_DECAY_RTOL * max(abs(a), abs(b)) or a == b


def _nominal_decay(optimizer, largest):
    """The decay the user asked for: the ungrouped optimizer's ``weight_decay``, else the largest group's."""
    if getattr(optimizer, "is_group", False):
        return largest
    value = getattr(optimizer, "weight_decay", largest)
    try:
        return float(np.asarray(value.asnumpy() if hasattr(value, "asnumpy") else value))
    except (TypeError, ValueError):
        return largest


def ms_weight_decay_per_parameter(optimizer):
    """``{parameter name: decay really applied}`` of a MindSpore optimizer (``None``: a dynamic schedule).

    Mirrors ``Optimizer._init_opt_attrs``/``decay_weight`` in MindSpore 2.10:
    nothing decays unless ``exec_weight_decay``; parameter i decays only when
    ``decay_flags[i]``, by the group's value (grouped) or the single value.
    """
    params = list(optimizer.parameters)
    flags = tuple(optimizer.decay_flags)
    if not getattr(optimizer, "exec_weight_decay", True):
        return OrderedDict((p.name, 0.0) for p in params)
    if getattr(optimizer, "is_group", False):
        values = [_decay_value(v) for v in optimizer.group_weight_decay]
    else:
        values = [_decay_value(optimizer.weight_decay)] * len(params)
    return OrderedDict((p.name, (v if flag else 0.0)) for p, flag, v in zip(params, flags, values))


def _decay_value(value):
    if hasattr(value, "construct"):  # a Cell: weight decay as a schedule
        return None
    return float(np.asarray(value.asnumpy() if hasattr(value, "asnumpy") else value))


def torch_weight_decay_per_parameter(torch_optimizer, torch_module):
    """``{torch parameter name: weight_decay of its group}`` (torch decays every parameter of a group)."""
    names = {id(p): n for n, p in torch_module.named_parameters()}
    decay = OrderedDict()
    for group in torch_optimizer.param_groups:
        for p in group["params"]:
            if id(p) in names:
                decay[names[id(p)]] = float(group.get("weight_decay", 0.0))
    return decay


# --- loss -----------------------------------------------------------------------------------------

def _loss_record(loss_fn, torch_loss_fn, rng):
    import torch
    from msport._mindspore import ms

    torch_loss_fn = torch_loss_fn or torch.nn.CrossEntropyLoss()
    logits = rng.standard_normal((4, 10)).astype(np.float32)
    labels = np.array([0, 3, 7, 9], dtype=np.int64)
    want = float(torch_loss_fn(torch.from_numpy(logits), torch.from_numpy(labels)))
    settings = _loss_settings(loss_fn)
    reasons, got, shape = [], None, None
    mode = ms.get_context("mode")
    try:
        ms.set_context(mode=ms.PYNATIVE_MODE)
        result = loss_fn(ms.Tensor(logits), ms.Tensor(labels.astype(np.int32)))
        got_array = result.asnumpy()
        shape = tuple(got_array.shape)
        if got_array.size == 1:
            got = float(got_array.reshape(-1)[0])
            if abs(got - want) > LOSS_RTOL * abs(want):
                reasons.append(f"loss {got:.6g} vs torch {want:.6g} on the same logits and labels")
        else:
            reasons.append(f"returns {got_array.size} values (shape {shape}), not their mean: reduction='none'? "
                           f"use reduction='mean' as torch's CrossEntropyLoss")
    except Exception as exc:  # noqa: BLE001 - what fails is the finding
        reasons.append(f"fails on integer class labels ({type(exc).__name__}): it expects one-hot labels; "
                       f"use sparse=True as torch's CrossEntropyLoss")
    finally:
        ms.set_context(mode=mode)
    if settings:
        reasons = [f"{r} [{settings}]" for r in reasons]
    return _record("loss", type(loss_fn).__name__, f"{type(torch_loss_fn).__name__}: {want:.6g}",
                   f"{settings or type(loss_fn).__name__}: " + (f"{got:.6g}" if got is not None else
                                                                 "per-sample" if shape else "error"),
                   reasons, torch_loss=want, ms_loss=got, ms_output_shape=shape)


def _loss_settings(loss_fn):
    parts = [f"{key}={getattr(loss_fn, key)!r}" for key in ("sparse", "reduction") if hasattr(loss_fn, key)]
    return ", ".join(parts)


# --- presentation -----------------------------------------------------------------------------

TABLE_COLUMNS = [
    Column("check", "check", left=True),
    Column("name", "name", left=True),
    Column("torch", "torch", left=True),
    Column("mindspore", "mindspore", left=True),
    Column("flag", "flagged", flag_mark),
]

PLOTS = [Figure("init_std.png", plots.init_std)]  # std ratio per layer type; constants counted, not drawn

#: --top N shows flagged records first, in check order.
SORT_KEY = "flagged"

__all__ = ["audit", "ms_weight_decay_per_parameter", "torch_weight_decay_per_parameter", "CHECKS",
           "DEFAULT_INPUT_SHAPE", "TABLE_COLUMNS", "PLOTS", "SORT_KEY"]
