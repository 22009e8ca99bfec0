"""Audit a torch model and its MindSpore twin for porting mistakes, without training either.

Every check reads :mod:`msport.registry`, so every registered layer type is
covered the same way, and each produces records in torch naming with a
``check`` field:

``parameters``
    every torch parameter/buffer has a MindSpore twin of the same shape (names
    paired by :mod:`msport.diagnose.pairing`: a name map, the registry's rules,
    then structure).
``init``
    each MindSpore parameter's initial distribution against torch's default for
    its layer type (the registry's ``Param.init``: U(+-1/sqrt(fan_in)) for
    Conv/Linear, N(0, 1) for Embedding with its padding row zero, xavier for
    MultiheadAttention, U(+-1/sqrt(hidden)) for LSTM/GRU, 1/0 for norms), when
    the torch model itself follows that default; else the torch model's own
    values. KS test and std ratio. The seed's Normal(0.01)/zero-bias init and
    MindSpore's Normal(0.01) Embedding (100x torch's scale) are caught here.
one record per registered layer, ``check`` = its torch type (``Conv2d``, ``LayerNorm``...)
    * the entry's ``attrs``, read off both layers: eps, bias presence,
      Dropout ``p`` (read as ``p``: MindSpore's ``keep_prob`` attribute
      reads 0.5 whatever ``p`` is), GELU ``approximate``, padding_idx, groups...;
    * BatchNorm momentum, measured: one train-mode step on a probe batch
      shows which fraction of the batch mean enters the running mean
      (MindSpore 2.10 stores ``1 - momentum`` in ``.momentum``, so reading it
      is a trap);
    * a probe for every type with a ``probe_input``: both layers run on the
      same input (the layer's real input from one forward pass of the
      example inputs, else a random one) with MindSpore's weights copied into
      a copy of the torch layer. Padding shows here: a stride-2 conv or a
      MaxPool with ``pad_mode='same'`` pads bottom/right only and shifts every
      output against torch's symmetric padding while keeping the shape.
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

import copy
import math
from collections import OrderedDict

import numpy as np

from msport import registry
from msport.diagnose import plots
from msport.diagnose.capture import as_inputs, describe_inputs
from msport.diagnose.pairing import pair_models
from msport.diagnose.report import Column, DiagnosisResult, Figure, flag_mark
from msport.diagnose.stats import ks_normal, ks_two_sample, ks_uniform
from msport.errors import UserError
from msport.tolerances import (AUDIT_INIT_KS_ALPHA, BN_MOMENTUM_MAX_ABS, INIT_MIN_SAMPLES, INIT_STD_RATIO_RANGE,
                               LAYER_PROBE_MAX_REL, LOSS_REL, WEIGHT_DECAY_REL, max_rel)
from msport.progress import no_progress

CHECKS = ("parameters", "init", "weight_decay", "loss")
#: Values a constant-initialised parameter (BatchNorm's 1 and 0) may deviate by.
CONSTANT_ATOL = 1e-6
DEFAULT_INPUT_SHAPE = (2, 3, 32, 32)
STAGES = 3  # the calls audit makes to ``progress``


def audit(torch_module, ms_cell, *, optimizer=None, torch_optimizer=None, loss_fn=None,
          torch_loss_fn=None, inputs=None, input_shape=DEFAULT_INPUT_SHAPE, check_init=True, name_map=None,
          seed=0, pairing=None, progress=no_progress):
    """Run every check (see the module docstring); returns a :class:`DiagnosisResult`.

    ``inputs``: example inputs (a tensor, a tuple or a dict, any dtype; token
    ids included) for the probes; without them a random float batch of
    ``input_shape``. ``optimizer``: the MindSpore optimizer built the port's
    way (checks weight decay); ``torch_optimizer``: the torch one it should
    match (default: the MindSpore optimizer's nominal decay on every parameter,
    as torch's SGD does). ``loss_fn``: the MindSpore loss cell;
    ``torch_loss_fn`` defaults to ``torch.nn.CrossEntropyLoss()``.
    ``check_init=False`` for trained weights. ``name_map``: torch name ->
    MindSpore name (a dict, a callable or a file) for names neither the
    registry nor the structure pairs. ``progress(stage)`` is called as each of
    its :data:`STAGES` starts.
    """
    rng = np.random.default_rng(seed)
    pairing = pairing or pair_models(torch_module, ms_cell, name_map)
    torch_subs = OrderedDict(torch_module.named_modules())
    ms_subs = OrderedDict(ms_cell.cells_and_names())
    torch_layers = registry.torch_layers(torch_module)
    torch_state = OrderedDict((k, v.detach().cpu().numpy()) for k, v in torch_module.state_dict().items()
                              if k not in pairing.ignored)
    # copies: asnumpy() can alias the live buffer, which the BatchNorm probe below updates
    ms_params = OrderedDict((p.name, p) for p in ms_cell.get_parameters())
    ms_values = OrderedDict((t, np.array(ms_params[m].asnumpy(), copy=True)) for t, m in pairing.params.items())

    progress("parameters and initial distributions")
    records = _parameter_records(torch_state, ms_values, pairing)
    if check_init:
        records += _init_records(torch_state, ms_values, torch_layers, torch_subs)
    progress("probing every layer in both frameworks")
    if inputs is None:
        inputs = rng.standard_normal(input_shape).astype(np.float32)
    layer_inputs = _torch_layer_inputs(torch_module, inputs, torch_layers)
    records += _layer_records(torch_layers, torch_subs, ms_subs, ms_params, pairing, layer_inputs, rng)
    progress("weight decay and loss")
    if optimizer is not None:
        records += _weight_decay_records(optimizer, torch_optimizer, torch_module, pairing.ms_to_torch)
    if loss_fn is not None:
        records.append(_loss_record(loss_fn, torch_loss_fn, rng))

    flagged = [r for r in records if r["flagged"]]
    summary = OrderedDict([
        ("flagged", len(flagged)),
        ("first_divergence", flagged[0]["name"] if flagged else None),
    ])
    for check in OrderedDict.fromkeys(r["check"] for r in records):
        of_check = [r for r in records if r["check"] == check]
        summary[f"{check}_checked"] = len(of_check)
        summary[f"{check}_flagged"] = sum(1 for r in of_check if r["flagged"])
    summary.update(pairing.summary())
    missing = [f"{n} ({e.name})" for n, e in torch_layers.items() if n not in pairing.layers]
    summary["layers_without_twin"] = missing
    notes = list(pairing.lines())
    args, kwargs = as_inputs(inputs)
    notes.append(f"probe input: {describe_inputs(args, kwargs)}")
    if missing:
        notes.append(f"not audited, no MindSpore layer found for: {', '.join(missing[:8])}"
                     + (f" (+{len(missing) - 8} more)" if len(missing) > 8 else "")
                     + "; give a name map if the port has them under other names")
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


# --- parameters -----------------------------------------------------------------------------

def _parameter_records(torch_state, ms_values, pairing):
    records = []
    for name, value in torch_state.items():
        other = ms_values.get(name)
        if other is None:
            records.append(_record("parameters", name, _shape_text(value), "missing",
                                   [f"{name} has no MindSpore twin"]))
        elif other.size != value.size or _squeezed(other.shape) != _squeezed(value.shape):
            records.append(_record("parameters", name, _shape_text(value), _shape_text(other),
                                   [f"shape {value.shape} vs {other.shape}"]))
    for ms_name in pairing.only_ms:
        records.append(_record("parameters", ms_name, "missing", "",
                               [f"MindSpore's {ms_name} has no torch twin"]))
    return records


def _squeezed(shape):
    return tuple(d for d in shape if d != 1)


def _shape_text(value):
    return "shape (" + ",".join(str(d) for d in value.shape) + ")"


# --- init -----------------------------------------------------------------------------------

def _init_records(torch_state, ms_values, torch_layers, torch_subs):
    records = []
    specs = _torch_default_specs(torch_state, torch_layers, torch_subs)
    for name, torch_value in torch_state.items():
        ms_value = ms_values.get(name)
        if ms_value is None or ms_value.size != torch_value.size:
            continue  # reported by the parameters check
        record = _init_record(name, torch_value, ms_value.reshape(torch_value.shape), specs.get(name))
        layer_name = name.rpartition(".")[0]
        record["layer_type"] = type(torch_subs[layer_name]).__name__ if layer_name in torch_subs else None
        records.append(record)
    return records


def _torch_default_specs(torch_state, torch_layers, torch_subs):
    """``{torch parameter name: registry.Init}``: torch's default draw for every registered layer's parameter."""
    specs = {}
    for layer_name, entry in torch_layers.items():
        prefix = f"{layer_name}." if layer_name else ""
        own = OrderedDict((k[len(prefix):], v) for k, v in torch_state.items()
                          if k.startswith(prefix) and "." not in k[len(prefix):])
        if not own:
            continue
        shapes = {k: tuple(v.shape) for k, v in own.items()}
        try:
            ctx = registry.layer_context(entry, torch_subs[layer_name], shapes)
        except (AttributeError, KeyError):
            continue
        for relative in own:
            rule = entry.param_for(relative, "torch")
            if rule is None:
                continue
            ctx["param"] = relative
            try:
                specs[prefix + relative] = rule.init(ctx)
            except (KeyError, IndexError, ValueError):
                continue
    return specs


def _init_record(name, torch_value, ms_value, spec):
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
    elif spec is not None and spec.kind != "constant" and _follows(torch_value, spec):
        figures["reference"] = f"{spec.describe()} (PyTorch default)"
        figures["expected_std"] = spec.std
        ms_draw = _drop_zero_row(ms_value, spec)
        figures["ks_p"] = _ks_against(ms_draw, spec)
        reasons += _distribution_reasons(figures, ms_draw)
        if spec.zero_row is not None and np.any(ms_value[spec.zero_row] != 0):
            reasons.append(f"row {spec.zero_row} (padding_idx) is not zero: torch zeroes it")
        torch_text = f"{spec.describe()}, std {spec.std:.3g}"
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


def _drop_zero_row(values, spec):
    if spec.zero_row is None or values.ndim < 1 or not -values.shape[0] <= spec.zero_row < values.shape[0]:
        return values
    return np.delete(values, spec.zero_row, axis=0)


def _ks_against(values, spec):
    if values.size < INIT_MIN_SAMPLES:
        return None
    if spec.kind == "uniform":
        return ks_uniform(values, spec.scale)[1]
    return ks_normal(values, spec.scale)[1]


def _follows(values, spec):
    """True when the torch side itself looks like its default (a user may re-initialise on purpose)."""
    values = _drop_zero_row(values, spec)
    if values.size == 0:
        return False
    if spec.kind == "uniform" and np.max(np.abs(values)) > spec.scale * (1 + 1e-6):
        return False
    if values.size < INIT_MIN_SAMPLES:
        return True
    low, high = INIT_STD_RATIO_RANGE
    std = float(np.std(values, dtype=np.float64))
    return low <= std / spec.std <= high and _ks_against(values, spec) >= AUDIT_INIT_KS_ALPHA


def _distribution_reasons(figures, ms_value):
    reasons = []
    expected = figures["expected_std"]
    if ms_value.size >= INIT_MIN_SAMPLES and expected:
        ratio = figures["ms_std"] / expected
        low, high = INIT_STD_RATIO_RANGE
        if not low <= ratio <= high:
            reasons.append(f"std {figures['ms_std']:.3g} is {ratio:.3g}x the reference {expected:.3g}")
    if figures["ks_p"] is not None and figures["ks_p"] < AUDIT_INIT_KS_ALPHA:
        reasons.append(f"KS test rejects the reference distribution (p = {figures['ks_p']:.2g})")
    # the sample std of n normal draws has standard error sigma/sqrt(2n): allow 5 of them (and 10%)
    near = max(0.001, 5 * 0.01 / np.sqrt(2 * max(ms_value.size, 1)))
    if reasons and figures["ms_std"] > 0 and abs(figures["ms_std"] - 0.01) < near \
            and abs(np.mean(ms_value)) < 5 * 0.01 / np.sqrt(max(ms_value.size, 1)):
        reasons.append("looks like MindSpore's default Normal(0.01) (nn.Embedding's in every version, "
                       "nn.Dense/Conv2d's in 1.x): set the initialiser explicitly (msport.layers does)")
    elif reasons and figures["ms_std"] == 0.0 and figures["ms_max_abs"] == 0.0:
        reasons.append("all zeros: MindSpore 1.x's default bias_init='zeros'")
    return reasons


# --- layers: what the registry says to read, and probes ------------------------------------------

def _torch_layer_inputs(torch_module, inputs, torch_layers):
    """``{layer: first positional input array}`` of every registered layer with a probe, from one eval pass."""
    import torch

    wanted = {n for n, e in torch_layers.items() if e.probe_input is not None}
    seen = {}

    def hook(name):
        def record(_module, args, _output):
            if name not in seen and args and torch.is_tensor(args[0]):
                seen[name] = args[0].detach().cpu().numpy().copy()
        return record

    args, kwargs = as_inputs(inputs)
    subs = dict(torch_module.named_modules())
    was_training = [(m, m.training) for m in torch_module.modules()]
    handles = [subs[n].register_forward_hook(hook(n)) for n in wanted if n in subs]
    try:
        torch_module.eval()
        with torch.no_grad():
            torch_module(*[torch.from_numpy(np.array(a)) for a in args],
                         **{k: torch.from_numpy(np.array(v)) for k, v in kwargs.items()})
    except Exception as exc:  # noqa: BLE001 - any failure means the example input does not fit
        raise UserError(f"the torch model cannot run the example input ({describe_inputs(args, kwargs)}): "
                        f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}; "
                        f"give the model's own input shape or example inputs") from exc
    finally:
        for h in handles:
            h.remove()
        for m, flag in was_training:
            m.training = flag
    return seen


def _ms_is(cell, class_name):
    return any(cls.__name__ == class_name.rpartition(".")[2] for cls in type(cell).__mro__)


def _layer_records(torch_layers, torch_subs, ms_subs, ms_params, pairing, layer_inputs, rng):
    records = []
    for name, entry in torch_layers.items():
        ms_name = pairing.layers.get(name)
        if ms_name is None:
            continue
        layer, ms_layer = torch_subs[name], ms_subs[ms_name]
        if not _ms_is(ms_layer, entry.ms_class):
            records.append(_record(entry.name, name, entry.name, type(ms_layer).__name__,
                                   [f"the MindSpore twin {ms_name!r} is a {type(ms_layer).__name__}, expected "
                                    f"nn.{entry.ms_class} for torch's {entry.name}"]))
            continue
        if not entry.attrs and entry.probe_input is None and not entry.name.startswith("BatchNorm"):
            continue
        records.append(_layer_record(name, entry, layer, ms_name, ms_layer, pairing, layer_inputs.get(name), rng))
    return records


def _layer_record(name, entry, layer, ms_name, ms_layer, pairing, layer_input, rng):
    reasons, torch_parts, ms_parts = [], [], []
    figures = OrderedDict(type=entry.name, ms_name=ms_name)
    for attr in entry.attrs:
        try:
            want, got = attr.torch(layer), attr.ms(ms_layer)
        except (AttributeError, TypeError) as exc:
            reasons.append(f"cannot read {attr.name} off the MindSpore layer ({exc})")
            continue
        figures[f"torch_{attr.name}"], figures[f"ms_{attr.name}"] = _plain(want), _plain(got)
        torch_parts.append(f"{attr.name} {_text(want)}")
        ms_parts.append(f"{attr.name} {_text(got)}")
        if not _attr_equal(attr, want, got):
            reasons.append(_attr_reason(entry, attr, want, got))
    if entry.name.startswith("BatchNorm"):
        momentum_reasons, torch_text, ms_text, momentum = _batchnorm_momentum(layer, ms_layer, entry, rng)
        reasons += momentum_reasons
        torch_parts.insert(0, torch_text)
        ms_parts.insert(0, ms_text)
        figures.update(momentum)
    pad_mode = getattr(ms_layer, "pad_mode", None)
    if isinstance(pad_mode, str):
        ms_parts.append(f"pad_mode {pad_mode.lower()}")
        padding = getattr(layer, "padding", None)
        if padding is not None:
            torch_parts.append(f"padding {_text(padding)}")
    if entry.probe_input is not None:
        probe = _probe(entry, layer, ms_layer, name, pairing, layer_input, rng)
        figures.update(probe)
        if probe.get("probe_error"):
            reasons.append(probe["probe_error"])
        elif probe.get("probe_max_rel") is not None and probe["probe_max_rel"] > LAYER_PROBE_MAX_REL:
            hint = ""
            if isinstance(pad_mode, str) and pad_mode.lower() == "same":
                hint = ("; MindSpore's pad_mode='same' pads bottom/right only where torch pads symmetrically: "
                        f"use pad_mode='pad' with torch's padding (msport.layers.{entry.factory_name} does)")
            reasons.append(f"on the same input{' with the same weights' if probe.get('probe_weights') else ''} "
                           f"the outputs differ (max relative {probe['probe_max_rel']:.3g}){hint}")
    return _record(entry.name, name, ", ".join(torch_parts) or entry.name, ", ".join(ms_parts) or ms_name,
                   reasons, **figures)


def _plain(value):
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        return list(value)
    return str(value)


def _text(value):
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)):
        return "x".join(str(v) for v in value) if value else "()"
    return str(value)


def _attr_equal(attr, want, got):
    if attr.kind == "rel":
        try:
            want, got = float(want), float(got)
        except (TypeError, ValueError):
            return want == got
        return abs(want - got) <= attr.rtol * max(abs(want), abs(got), 1e-30)
    return want == got


def _attr_reason(entry, attr, want, got):
    reason = f"{attr.name} {_text(got)} vs torch {_text(want)}"
    if entry.stochastic and isinstance(want, float) and isinstance(got, float) and abs((1.0 - got) - want) < 1e-6:
        reason += (f": MindSpore was given keep_prob semantics ({got:g} = 1 - torch's p); "
                   f"write nn.Dropout(p={want:g}) (msport.layers.dropout takes torch's p)")
    elif attr.hint:
        reason += f": {attr.hint}"
    return reason


def _batchnorm_momentum(layer, ms_layer, entry, rng):
    torch_momentum = layer.momentum
    ms_momentum = _measured_ms_momentum(ms_layer, int(entry.name[-2]), rng)
    reasons = []
    if torch_momentum is None:
        reasons.append("torch uses a cumulative average (momentum=None); MindSpore has no such mode")
    elif ms_momentum is None:
        reasons.append("the MindSpore layer's running mean did not move in a train-mode step")
    elif abs(ms_momentum - torch_momentum) > BN_MOMENTUM_MAX_ABS:
        hint = ""
        if abs(ms_momentum - (1 - torch_momentum)) <= BN_MOMENTUM_MAX_ABS:
            hint = (f": MindSpore's momentum is 1 - torch's, so write nn.{entry.ms_class}(momentum="
                    f"{1 - torch_momentum:g}) (msport.layers.{entry.factory_name} does)")
        reasons.append(f"running statistics update with momentum {ms_momentum:.4g} (torch convention), "
                       f"torch uses {torch_momentum:g}{hint}")
    return (reasons, f"momentum {torch_momentum}", f"momentum {_fmt(ms_momentum)} (torch convention)",
            OrderedDict(torch_momentum=torch_momentum, ms_momentum=ms_momentum))


def _fmt(value):
    return "?" if value is None else f"{value:.4g}"


def _measured_ms_momentum(ms_layer, dims, rng):
    """The fraction of a batch's mean that one train-mode step moves MindSpore's running mean by.

    This is torch's ``momentum``. The layer's running statistics and flags are restored.
    """
    from msport._mindspore import ms

    stats = [p for p in ms_layer.get_parameters() if p.name.endswith(("moving_mean", "moving_variance"))]
    mean_param = next((p for p in stats if p.name.endswith("moving_mean")), None)
    if mean_param is None:
        return None
    channels = int(mean_param.shape[0])
    spatial = {1: (), 2: (4, 4), 3: (2, 2, 2)}[dims]
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


def _probe_input(entry, layer, layer_input, rng):
    if layer_input is not None:
        return layer_input[:2] if layer_input.ndim > 1 and layer_input.shape[0] > 2 else layer_input
    shape = entry.probe_input(layer)
    if entry.name == "Embedding":  # token ids, not floats
        return rng.integers(0, layer.num_embeddings, shape).astype(np.int64)
    return rng.standard_normal(shape).astype(np.float32)


def _probe(entry, layer, ms_layer, name, pairing, layer_input, rng):
    """Both layers on one input, the torch layer (a copy) holding MindSpore's weights: what differs is the
    computation (padding, eps, stride...), not the values."""
    import torch
    from msport._mindspore import ms

    figures = OrderedDict(probe_max_rel=None, probe_weights=False, torch_output_shape=None, ms_output_shape=None,
                          probe_error=None)
    twin = copy.deepcopy(layer).eval()
    prefix = f"{name}." if name else ""
    ms_by_name = OrderedDict((p.name, p) for p in ms_layer.get_parameters())
    with torch.no_grad():
        for relative, tensor in list(twin.state_dict().items()):
            ms_name = pairing.params.get(prefix + relative)
            if ms_name in ms_by_name:
                value = ms_by_name[ms_name].asnumpy().reshape(tuple(tensor.shape))
                tensor.copy_(torch.from_numpy(np.array(value)))
                figures["probe_weights"] = True
            elif relative == "bias":
                tensor.zero_()  # MindSpore has none: the bias check reports that; probe the rest
    x = _probe_input(entry, layer, layer_input, rng)
    with torch.no_grad():
        want = twin(torch.from_numpy(np.array(x)))
    want = _pick(want, entry.output_index, torch.is_tensor)
    flags = [(c, c.training) for _, c in ms_layer.cells_and_names()]
    mode = ms.get_context("mode")
    try:
        ms.set_context(mode=ms.PYNATIVE_MODE)
        ms_layer.set_train(False)
        got = _pick(ms_layer(ms.Tensor(np.array(x))), entry.output_index, lambda v: isinstance(v, ms.Tensor))
    except Exception as exc:  # noqa: BLE001 - a layer that rejects torch's input is the finding
        figures["probe_error"] = (f"the MindSpore layer fails on the torch layer's input {x.dtype}{tuple(x.shape)} "
                                  f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
        return figures
    finally:
        for c, flag in flags:
            c.add_flags(training=flag)
        ms.set_context(mode=mode)
    want, got = want.numpy(), got.asnumpy()
    figures["torch_output_shape"], figures["ms_output_shape"] = tuple(want.shape), tuple(got.shape)
    if want.shape != got.shape:
        figures["probe_error"] = f"output shape {tuple(got.shape)} vs torch {tuple(want.shape)}"
        figures["probe_max_rel"] = math.inf
        return figures
    figures["probe_max_rel"] = max_rel(want, got)
    return figures


def _pick(output, index, is_tensor):
    if is_tensor(output):
        return output
    if index is not None:
        return output[index]
    return next(o for o in output if is_tensor(o))




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
    return abs(a - b) <= WEIGHT_DECAY_REL * max(abs(a), abs(b)) or a == b


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
            if abs(got - want) > LOSS_REL * abs(want):
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
