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

from msport.convert import MS_OPTIMIZER_STATE, TORCH_ONLY_SUFFIXES, load_any, mindspore_to_torch
from msport.diagnose import plots
from msport.diagnose.report import Column, DiagnosisResult, Figure, flag_mark
from msport.diagnose.stats import CKPT_ATOL, CKPT_RTOL, as_numpy, compare, summarize

# Suffixes only MindSpore's BatchNorm uses: a dict holding them is in MindSpore naming.
_MS_ONLY_SUFFIXES = ("gamma", "beta", "moving_mean", "moving_variance")
DIFF_KEYS = ("max_abs_diff", "mean_abs_diff", "rel_diff", "cosine")
SIDE_KEYS = ("mean", "std", "min", "max")


def torch_naming(weights, kind=None):
    """``(OrderedDict {torch_name: ndarray}, notes)`` for any weight set; see the module docstring.

    ``kind`` is ``'torch'`` or ``'mindspore'``; ``None`` guesses it from the names.
    """
    weights = _as_weight_dict(weights)
    if kind is None:
        kind = "mindspore" if _looks_mindspore(weights) else "torch"
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


def _looks_mindspore(weights):
    return any(k.rpartition(".")[2] in _MS_ONLY_SUFFIXES or MS_OPTIMIZER_STATE.match(k) for k in weights)


def mindspore_to_torch_names(ms_names):
    """``{mindspore_name: torch_name}`` for a model's full MindSpore parameter names.

    Pass every name (moving statistics included): a module is a BatchNorm
    because it has ``moving_mean``. Names the rules cannot map raise
    :class:`msport.convert.ConversionError`.
    """
    ms_names = list(ms_names)
    # The converter maps values; give each name its index as the value to learn where it went.
    state, report = mindspore_to_torch(OrderedDict((n, np.array(i)) for i, n in enumerate(ms_names)))
    return OrderedDict((ms_names[int(v)], k) for k, v in state.items() if k not in report.added)


def compare_state(a, b, *, atol=CKPT_ATOL, rtol=CKPT_RTOL, a_kind=None, b_kind=None, labels=("a", "b")):
    """Compare two weight sets; returns a :class:`DiagnosisResult` with one record per parameter.

    A parameter is flagged when its shapes differ, when it exists on one side
    only, or when ``b`` is not ``allclose(b, a, rtol, atol)`` to ``a``.
    """
    state_a, notes_a = torch_naming(a, a_kind)
    state_b, notes_b = torch_naming(b, b_kind)
    notes = [f"{labels[0]}: {n}" for n in notes_a] + [f"{labels[1]}: {n}" for n in notes_b]
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


def _compare_one(name, a, b, atol, rtol, labels):
    la, lb = labels
    # one float64 copy per side, shared by every figure below (ResNet50: 23.5M values a side)
    a = a.astype(np.float64) if a is not None else None
    b = b.astype(np.float64) if b is not None else None
    record = OrderedDict([("name", name), (f"shape_{la}", _shape(a)), (f"shape_{lb}", _shape(b))])
    record.update(dict.fromkeys(DIFF_KEYS))
    comparable = a is not None and b is not None and a.shape == b.shape
    figures = compare(a, b, sides=labels) if comparable else {}
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
        if _allclose(a, b, atol, rtol):
            status, reason = ("equal" if figures["max_abs_diff"] == 0.0 else "close"), None
        else:
            status = "differs"
            reason = (f"max |{la}-{lb}| = {figures['max_abs_diff']:.3g} beyond atol + rtol*|{la}|"
                      + _transpose_hint(a, b, atol, rtol))
    record["status"] = status
    record["flagged"] = status not in ("equal", "close")
    record["reason"] = reason
    return record


def _shape(value):
    return None if value is None else tuple(int(d) for d in value.shape)


def _allclose(a, b, atol, rtol):
    return bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(a)))


def _transpose_hint(a, b, atol, rtol):
    """A converter that transposes a Linear weight (TensorFlow's layout habit) leaves a clear trace."""
    if a.ndim == 2 and b.ndim == 2 and a.shape == b.shape[::-1] and _allclose(a, b.T, atol, rtol):
        return "; it equals the other side transposed (a Linear/Dense weight transposed in conversion?)"
    return ""


def compare_checkpoints(path_a, path_b, *, atol=CKPT_ATOL, rtol=CKPT_RTOL):
    """:func:`compare_state` of two files (.pth/.pt or .ckpt, any pairing), labelled A and B."""
    kind_a, weights_a = load_any(path_a)
    kind_b, weights_b = load_any(path_b)
    result = compare_state(weights_a, weights_b, atol=atol, rtol=rtol, a_kind=kind_a, b_kind=kind_b,
                           labels=("a", "b"))
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

__all__ = ["compare_state", "compare_checkpoints", "torch_naming", "mindspore_to_torch_names", "TABLE_COLUMNS",
           "PLOTS", "SORT_KEY"]
