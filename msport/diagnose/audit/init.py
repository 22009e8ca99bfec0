"""The ``init`` check: each MindSpore parameter's initial distribution against torch's default for its
layer type (the registry's ``Param.init``), or the torch model's own values when it departs from it."""

from collections import OrderedDict

import numpy as np

from msport import registry
from msport.diagnose.stats import ks_normal, ks_two_sample, ks_uniform
from msport.tolerances import (AUDIT_INIT_KS_ALPHA, INIT_MIN_SAMPLES, INIT_STD_RATIO_RANGE)
from msport.diagnose.audit.records import record as _record
CONSTANT_ATOL = 1e-6  #: values a constant-initialised parameter (BatchNorm's 1 and 0) may deviate by


def init_records(torch_state, ms_values, torch_layers, torch_subs):
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
