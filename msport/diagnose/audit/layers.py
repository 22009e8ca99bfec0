"""The per-layer checks (``check`` = the torch type): the registry's ``attrs`` read off both layers,
BatchNorm momentum measured, and a forward probe of both layers on the same input."""

import copy
import math
from collections import OrderedDict

import numpy as np

from msport.diagnose.capture import as_inputs, capture_mindspore, capture_torch, describe_inputs
from msport.errors import UserError
from msport.tolerances import (BN_MOMENTUM_MAX_ABS, LAYER_PROBE_MAX_REL, max_rel)
from msport.diagnose.audit.records import record as _record


def paired_layers(torch_module, ms_cell, pairing, inputs):
    """``(twins, layer inputs, note)`` from one eval pass of each model on the example inputs.

    ``twins``: torch layer -> MindSpore layer, paired as layer-diff pairs them
    (:func:`msport.diagnose.alignment.layer_twins`): through the parameters, and parameter-free layers (pools,
    activations, dropout) by type and position between paired neighbours, so torchvision's ``maxpool`` is
    audited against mindcv's ``max_pool``. ``layer inputs``: each torch layer's first positional input array
    in that pass, which the probes run both layers on. When the MindSpore model cannot run the example
    input, only layers whose parameters pair have twins, and ``note`` says why.
    """
    from msport.diagnose.alignment import Alignment, align, layer_twins

    args, kwargs = as_inputs(inputs)
    try:
        torch_capture = capture_torch(torch_module, inputs, inputs=True)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure means the example input does not fit
        raise UserError(f"the torch model cannot run the example input ({describe_inputs(args, kwargs)}): "
                        f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}; "
                        f"give the model's own input shape or example inputs") from exc
    note = None
    try:
        ms_capture = capture_mindspore(ms_cell, inputs, inputs=True)
    except Exception as exc:  # noqa: BLE001 - the port failing on the input is reported, the audit goes on
        alignment = Alignment()
        note = (f"the MindSpore model fails on the probe input ({type(exc).__name__}: "
                f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}), so only layers whose "
                f"parameters pair are audited; layers without parameters need a run of both models to pair")
    else:
        alignment = align(torch_module, ms_cell, pairing, torch_capture, ms_capture)
    seen = {}
    for call, given in torch_capture.inputs.items():
        name = call.partition("#")[0]
        if name not in seen and given and isinstance(given[0], np.ndarray):
            seen[name] = given[0]
    return layer_twins(alignment, pairing), seen, note


def _ms_is(cell, class_name):
    return any(cls.__name__ == class_name.rpartition(".")[2] for cls in type(cell).__mro__)


def layer_records(torch_layers, torch_subs, ms_subs, twins, pairing, layer_inputs, rng):
    """One record per registered torch layer with a twin in ``twins`` (:func:`paired_layers`)."""
    records = []
    for name, entry in torch_layers.items():
        ms_name = twins.get(name)
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
        records.append(layer_record(name, entry, layer, ms_name, ms_layer, pairing, layer_inputs.get(name), rng))
    return records


def layer_record(name, entry, layer, ms_name, ms_layer, pairing, layer_input, rng):
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
    return (reasons, f"momentum {_text(torch_momentum)}", f"momentum {_fmt(ms_momentum)} (torch convention)",
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
