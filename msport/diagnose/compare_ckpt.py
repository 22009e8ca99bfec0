"""Compare two weight sets parameter by parameter, in torch naming.

Either side may be a torch state_dict, a MindSpore parameter dict, a ``.pth``
or ``.ckpt`` file, a ``torch.nn.Module`` or a ``mindspore.nn.Cell``; MindSpore
names are mapped to torch's through :mod:`msport.convert`'s rules (the same
rules the converter uses, so a name this module cannot map is a name the
converter cannot map either). What has no twin is set aside and said so:
MindSpore training-checkpoint optimizer state, and torch's BatchNorm step
counter ``num_batches_tracked``.

For two copies of the same weights (a checkpoint and its conversion) the
differences must be zero; for two independently trained checkpoints they are
not, and the per-side distributions (mean, std, min, max) are what can be
compared.
"""

from collections import OrderedDict

import numpy as np

from msport.numeric import as_numpy
from msport.checkpoints import MS_OPTIMIZER_STATE, load_any, looks_mindspore
from msport.convert import TORCH_ONLY_SUFFIXES, TORCH_STATE_PREFIX, mindspore_to_torch
from msport.diagnose import plots
from msport.diagnose.report import Column, DiagnosisResult, Figure, flag_mark
from msport.diagnose.stats import compare, summarize
from msport.tolerances import CKPT_ELEMENT_REL, CKPT_MAX_ABS

DIFF_KEYS = ("max_abs_diff", "mean_abs_diff", "rel_diff", "cosine")
SIDE_KEYS = ("mean", "std", "min", "max")


def torch_naming(weights, kind=None):
    """``(OrderedDict {torch_name: ndarray}, notes)`` for any weight set; see the module docstring.

    ``kind`` is ``'torch'`` or ``'mindspore'``; ``None`` guesses it from the names.
    """
    weights = _as_weight_dict(weights)
    if kind is None:
        kind = "mindspore" if looks_mindspore(weights) else "torch"
    notes = []
    if kind == "mindspore":
        state, report = mindspore_to_torch(weights)
        for counter in report.added:  # invented by the converter, not read from the file
            del state[counter]
        if report.extra_state:
            notes.append(f"ignored {len(report.extra_state)} MindSpore optimizer/training-state tensors "
                         f"(e.g. {', '.join(list(report.extra_state)[:3])})")
    else:
        state = OrderedDict(weights)
        if state and all(k.startswith("module.") for k in state):
            state = OrderedDict((k[len("module."):], v) for k, v in state.items())
            notes.append("stripped the DataParallel prefix 'module.'")
    counters = [k for k in state if k.rpartition(".")[2] in TORCH_ONLY_SUFFIXES]
    for key in counters:
        del state[key]
    if counters:
        notes.append(f"not compared: {len(counters)} torch BatchNorm step counters (num_batches_tracked), "
                     f"which MindSpore does not have")
    return OrderedDict((k, as_numpy(v)) for k, v in state.items()), notes


def _as_weight_dict(weights):
    # A MindSpore 2.x Cell has a state_dict() too: recognise it first, by a method torch lacks.
    if hasattr(weights, "parameters_and_names"):  # mindspore.nn.Cell
        return OrderedDict((p.name, p) for p in weights.get_parameters())
    if hasattr(weights, "state_dict") and callable(weights.state_dict):  # torch.nn.Module
        return OrderedDict(weights.state_dict())
    return OrderedDict(weights)


def _is_torch_module(value):
    return hasattr(value, "named_modules") and hasattr(value, "state_dict")


def _is_ms_cell(value):
    return hasattr(value, "parameters_and_names")


def _to_shape(array, shape):
    """An array in the other side's layout: MindSpore's Conv1d weight holds an extra axis of length 1."""
    if tuple(array.shape) != tuple(shape) and array.size == int(np.prod(shape)) \
            and tuple(d for d in array.shape if d != 1) == tuple(d for d in shape if d != 1):
        return array.reshape(shape)
    return array


def model_states(torch_module, ms_cell, pairing):
    """``(torch state, MindSpore state)`` both keyed by torch name through ``pairing`` (MindSpore arrays in
    torch's layout); unpaired names stay on their own side under their own names."""
    torch_state = OrderedDict((k, as_numpy(v)) for k, v in torch_module.state_dict().items()
                              if k not in pairing.ignored)
    ms_values = OrderedDict((p.name, np.array(p.asnumpy(), copy=True)) for p in ms_cell.get_parameters())
    return _states_from_pairing(torch_state, ms_values, pairing)


def _states_from_pairing(torch_state, ms_values, pairing):
    ms_state = OrderedDict()
    for torch_name, ms_name in pairing.params.items():
        ms_state[torch_name] = _to_shape(ms_values[ms_name], torch_state[torch_name].shape)
    for ms_name in pairing.only_ms:
        ms_state[ms_name] = ms_values[ms_name]
    return torch_state, ms_state


def compare_state(a, b, *, atol=CKPT_MAX_ABS, rtol=CKPT_ELEMENT_REL, a_kind=None, b_kind=None, labels=("a", "b"),
                  name_map=None):
    """Compare two weight sets; returns a :class:`DiagnosisResult` with one record per parameter.

    ``a``/``b``: state dicts, parameter dicts, or a ``torch.nn.Module`` and a
    ``mindspore.nn.Cell``. Names pair through ``name_map`` (torch name ->
    MindSpore name: a dict, a callable or a file), the registry's rules, and
    then structure (:mod:`msport.diagnose.pairing`); the notes say how.
    A parameter is flagged when its shapes differ, when it exists on one side
    only, or when ``b`` is not ``allclose(b, a, rtol, atol)`` to ``a``.
    """
    state_a = state_b = None
    notes = []
    if _is_torch_module(a) and _is_ms_cell(b):
        from msport.diagnose.pairing import pair_models

        pairing = pair_models(a, b, name_map)
        state_a, state_b = model_states(a, b, pairing)
        notes += pairing.lines()
    else:
        state_a, state_b, notes = _paired_states(a, b, a_kind, b_kind, labels, name_map)
    records = [_compare_one(name, state_a.get(name), state_b.get(name), atol, rtol, labels)
               for name in list(state_a) + [k for k in state_b if k not in state_a]]
    flagged = [r for r in records if r["flagged"]]
    summary = OrderedDict([
        ("compared", sum(1 for r in records if r["max_abs_diff"] is not None)),
        ("flagged", len(flagged)),
        ("differ", sum(1 for r in records if r["status"] == "differs")),
        ("shape_mismatch", sum(1 for r in records if r["status"] == "shape mismatch")),
        (f"only_{labels[0]}", [r["name"] for r in records if r["status"] == f"only in {labels[0]}"]),
        (f"only_{labels[1]}", [r["name"] for r in records if r["status"] == f"only in {labels[1]}"]),
        ("first_divergence", flagged[0]["name"] if flagged else None),
        ("atol", atol),
        ("rtol", rtol),
    ])
    return DiagnosisResult("compare-ckpt", records, summary, notes)


def _paired_states(a, b, a_kind, b_kind, labels, name_map):
    """Both weight sets in torch naming: the converter's rules where they suffice, else a pairing."""
    from msport.convert import ConversionError

    raw_a, raw_b = _as_weight_dict(a), _as_weight_dict(b)
    kind_a = a_kind or ("mindspore" if looks_mindspore(raw_a) else "torch")
    kind_b = b_kind or ("mindspore" if looks_mindspore(raw_b) else "torch")
    if name_map is None:
        try:
            state_a, notes_a = torch_naming(raw_a, kind_a)
            state_b, notes_b = torch_naming(raw_b, kind_b)
            notes = [f"{labels[0]}: {n}" for n in notes_a] + [f"{labels[1]}: {n}" for n in notes_b]
            one_sided = (set(state_a) - set(state_b), set(state_b) - set(state_a))
            if kind_a == kind_b or not all(one_sided):
                return state_a, state_b, notes
        except ConversionError:
            if kind_a == kind_b:
                raise
    if kind_a == kind_b:
        from msport.diagnose.name_map import NameMapError

        raise NameMapError("a name map pairs torch names with MindSpore names: give one torch and one MindSpore "
                           "weight set")
    from msport.diagnose.pairing import pair_names

    torch_raw, ms_raw = (raw_a, raw_b) if kind_a == "torch" else (raw_b, raw_a)
    torch_state, notes_t = torch_naming(torch_raw, "torch")
    # torch's own step counters travel in msport's .ckpt as msport.torch.* records: set aside like torch's
    ms_values = OrderedDict((k, as_numpy(v)) for k, v in ms_raw.items()
                            if not MS_OPTIMIZER_STATE.match(k) and not k.startswith(TORCH_STATE_PREFIX))
    skipped = sum(1 for k in ms_raw if MS_OPTIMIZER_STATE.match(k))
    pairing = pair_names(OrderedDict((k, v.shape) for k, v in torch_state.items()),
                         OrderedDict((k, v.shape) for k, v in ms_values.items()), name_map=name_map)
    torch_state, ms_state = _states_from_pairing(torch_state, ms_values, pairing)
    notes = list(pairing.lines()) + notes_t
    if skipped:
        notes.append(f"ignored {skipped} MindSpore optimizer/training-state tensors")
    return (torch_state, ms_state, notes) if kind_a == "torch" else (ms_state, torch_state, notes)


def _compare_one(name, a, b, atol, rtol, labels):
    la, lb = labels
    identical = a is not None and b is not None and a.shape == b.shape and np.array_equal(a, b)
    # one float64 copy per side, shared by every figure below (ResNet50: 23.5M values a side)
    if not identical:
        a = a.astype(np.float64) if a is not None else None
        b = b.astype(np.float64) if b is not None else None
    record = OrderedDict([("name", name), (f"shape_{la}", _shape(a)), (f"shape_{lb}", _shape(b))])
    record.update(dict.fromkeys(DIFF_KEYS))
    comparable = a is not None and b is not None and a.shape == b.shape
    figures = _identical_figures(a, labels) if identical else compare(a, b, sides=labels) if comparable else {}
    for side, value in ((la, a), (lb, b)):
        if comparable:
            record.update((f"{side}_{key}", figures[f"{side}_{key}"]) for key in SIDE_KEYS)
        else:
            stats = summarize(value) if value is not None else {}
            record.update((f"{side}_{key}", stats.get(key)) for key in SIDE_KEYS)
    if a is None or b is None:
        status = f"only in {la}" if b is None else f"only in {lb}"
        reason = f"missing in {lb}" if b is None else f"missing in {la}"
    elif a.shape != b.shape:
        status, reason = "shape mismatch", f"shape {a.shape} vs {b.shape}" + _transpose_hint(a, b, atol, rtol)
    else:
        record.update((key, figures[key]) for key in DIFF_KEYS)
        if identical or _allclose(a, b, atol, rtol):
            status, reason = ("equal" if figures["max_abs_diff"] == 0.0 else "close"), None
        else:
            status = "differs"
            reason = (f"max |{la}-{lb}| = {figures['max_abs_diff']:.3g} beyond atol + rtol*|{la}|"
                      + _transpose_hint(a, b, atol, rtol))
    record["status"] = status
    record["flagged"] = status not in ("equal", "close")
    record["reason"] = reason
    return record


def _identical_figures(a, labels):
    """:func:`compare`'s figures for two equal tensors (a checkpoint and its conversion): one side's
    statistics, no difference to compute. Half the work, and exact where a computed cosine is 1 - 1e-16."""
    stats = summarize(a)
    figures = {"max_abs_diff": 0.0, "mean_abs_diff": 0.0, "rel_diff": 0.0, "cosine": 1.0, "magnitude_ratio": 1.0}
    figures.update((f"{side}_{key}", stats[key]) for side in labels for key in SIDE_KEYS)
    return figures


def _shape(value):
    return None if value is None else tuple(int(d) for d in value.shape)


def _allclose(a, b, atol, rtol):
    return bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(a)))


def _transpose_hint(a, b, atol, rtol):
    """A converter that transposes a Linear weight (TensorFlow's layout habit) leaves a clear trace."""
    if a.ndim == 2 and b.ndim == 2 and a.shape == b.shape[::-1] and _allclose(a, b.T, atol, rtol):
        return "; it equals the other side transposed (a Linear/Dense weight transposed in conversion?)"
    return ""


def compare_checkpoints(path_a, path_b, *, atol=CKPT_MAX_ABS, rtol=CKPT_ELEMENT_REL, name_map=None):
    """:func:`compare_state` of two files (.pth/.pt or .ckpt, any pairing), labelled A and B."""
    kind_a, weights_a = load_any(path_a)
    kind_b, weights_b = load_any(path_b)
    result = compare_state(weights_a, weights_b, atol=atol, rtol=rtol, a_kind=kind_a, b_kind=kind_b,
                           labels=("a", "b"), name_map=name_map)
    result.summary["a"] = f"{path_a} ({kind_a})"
    result.summary["b"] = f"{path_b} ({kind_b})"
    return result


TABLE_COLUMNS = [
    Column("parameter (torch name)", "name", left=True),
    Column("shape A", "shape_a"),
    Column("shape B", "shape_b"),
    Column("max|A-B|", "max_abs_diff"),
    Column("mean|A-B|", "mean_abs_diff"),
    Column("cosine", "cosine"),
    Column("A mean", "a_mean"),
    Column("A std", "a_std"),
    Column("A min", "a_min"),
    Column("A max", "a_max"),
    Column("B mean", "b_mean"),
    Column("B std", "b_std"),
    Column("B min", "b_min"),
    Column("B max", "b_max"),
    Column("flag", "flagged", flag_mark),
]

PLOTS = [
    Figure("distribution.png", plots.distribution),  # weights, BatchNorm statistics, 1-D: separate panels
    Figure("difference.png", plots.difference),
]

#: --top N shows the N parameters that differ most, by this record key.
SORT_KEY = "rel_diff"

__all__ = ["compare_state", "compare_checkpoints", "torch_naming", "model_states",
           "TABLE_COLUMNS",
           "PLOTS", "SORT_KEY"]
