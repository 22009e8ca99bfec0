"""Run a torch model and its MindSpore twin on one batch and compare them layer by layer.

Parameters are lined up by :mod:`msport.diagnose.pairing` (a name map, the
registry's rules, then structure; what was matched and how is in the notes);
layer *calls* by :mod:`msport.diagnose.alignment`, by what they compute and not
by path: leaves through their parameters, parameter-free layers by type and
position between them, containers by the layers they ran. What pairs with
nothing is listed, not compared (torch's functional ``F.relu`` is no module, so
MindSpore's ``relu`` cells have no twin). Inputs may be a tensor, a tuple or a
dict of any dtype (token ids included), and each side may bring its own loss
for ``grads``.

Two ways to judge a layer, chosen by ``mode``:

``"values"`` (same weights)
    outputs must agree within ``LAYER_DIFF_EVAL_NORM_REL`` or ``LAYER_DIFF_TRAIN_NORM_REL``
    (norm-relative; see :mod:`msport.tolerances`); gradients within ten times the
    float32 noise measured on this model and batch. Every paired call is replayed
    on torch's own input, and only the calls that differ there (the culprits,
    with the audit's reason) are flagged; outputs that only inherit a difference
    keep ``differs`` and are not named (:mod:`msport.diagnose.verdict`).
``"magnitude"`` (independent initialisations)
    values cannot agree, but sizes must: the mean |x| ratio MindSpore/torch must
    stay in ``MAGNITUDE_RATIO_RANGE``. This is the case study's order-of-magnitude
    check: the legacy Normal(0.01) init made the first conv's outputs ~10x too small.
``"auto"``
    ``"values"`` when every parameter agrees after name conversion, else ``"magnitude"``.

Each record's ``score`` says how many tolerances away it is (flagged above 1).
``summary['first_divergence']`` is the first culprit in forward order (else the
first flagged record), ``summary['verdict']`` is ``clean``, ``diverges`` or
``incomplete`` (parameters left unpaired: never clean).
"""

import math
import os
from collections import OrderedDict

import numpy as np

from msport.diagnose.capture import as_inputs, capture_mindspore, capture_torch, describe_inputs
from msport.diagnose.alignment import align
from msport.diagnose.pairing import pair_models
from msport.diagnose.verdict import judge, measured_grad_tolerance
from msport.diagnose.report import Column, DiagnosisResult, Plot, flag_mark
from msport.diagnose.stats import compare, within_magnitude_range
from msport.tolerances import (DROPOUT_ZERO_FRACTION_SIGMAS, GRAD_VANISHING_FRACTION, LAYER_DIFF_EVAL_NORM_REL,
                               LAYER_DIFF_GRAD_MIN_COSINE, LAYER_DIFF_GRAD_NORM_REL, LAYER_DIFF_TRAIN_NORM_REL,
                               MAGNITUDE_RATIO_RANGE, SAME_WEIGHTS_MAX_ABS)
from msport.errors import UserError, few
from msport.progress import no_progress

MODES = ("auto", "values", "magnitude")
STAGES = 3  # torch pass, MindSpore pass, comparison: the calls layer_diff makes to ``progress``
KINDS = ("output", "output_grad", "param_grad")


class LayerDiffResult(DiagnosisResult):
    """A :class:`DiagnosisResult` that also keeps the two :class:`~msport.diagnose.capture.Capture` objects."""

    def __init__(self, records, summary, notes, captures):
        super().__init__("layer-diff", records, summary, notes)
        self.captures = captures

    @property
    def exit_code(self):
        return 0 if self.summary.get("verdict", "clean") == "clean" and not self.flagged else 1

    def verdict(self):
        """``incomplete`` is never clean: parameters left unpaired were neither compared nor copied."""
        text = super().verdict()
        if self.summary.get("verdict") != "incomplete":
            return text
        summary = self.summary
        torch_left = len(summary["unpaired_torch"]) - len(summary.get("lacking_torch", ()))
        ms_left = len(summary["unpaired_mindspore"]) - len(summary.get("lacking_mindspore", ()))
        unpaired = f"{torch_left} torch / {ms_left} MindSpore"
        return (f"INCOMPLETE: {unpaired} parameters pair with nothing (not compared, not copied); no values "
                f"verdict until --name-map pairs them ({text})")


def layer_diff(torch_module, ms_cell, x, y=None, *, grads=False, train_mode=False, mode="auto",
               name_map=None, torch_loss_fn=None, loss_fn=None, pairing=None, progress=no_progress):
    """Compare every common layer's output (and with ``grads`` every gradient) of the two models.

    ``x``: the example input, a tensor/array, a tuple (positional) or a dict
    (keyword arguments), any dtype. ``y``: labels for the loss (default with
    logits: :func:`~msport.diagnose.capture.default_labels`). ``torch_loss_fn``
    / ``loss_fn``: each side's ``(output, labels) -> scalar`` loss for
    ``grads`` (default: cross-entropy, only where the output is logits).
    ``name_map``: torch name -> MindSpore name (dict, callable or file), for
    names neither the registry nor the structure lines up. ``progress(stage)`` is
    called as each of its :data:`STAGES` starts.
    Returns a :class:`LayerDiffResult`; the models are left as they were.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: choose one of {', '.join(MODES)}")
    pairing = pairing or pair_models(torch_module, ms_cell, name_map)
    notes = list(pairing.lines())
    differing = None
    if mode == "auto":
        same, why, differing = weights_match(torch_module, ms_cell, pairing=pairing)
        mode = "values" if same else "magnitude"
        notes.append(f"mode {mode}: {why}")
    args, kwargs = as_inputs(x)
    x = kwargs if kwargs else (args[0] if len(args) == 1 else args)
    described = f"input {describe_inputs(args, kwargs)}"
    passes = "forward and backward" if grads else "forward"
    keep = mode == "values"  # each call's inputs, to replay its twin on them
    progress(f"torch {passes}")
    torch_capture = _run("torch", capture_torch, torch_module, x, y, grads=grads, train_mode=train_mode,
                         loss_fn=torch_loss_fn, described=described, inputs=keep)
    progress(f"MindSpore {passes}")
    ms_capture = _run("MindSpore", capture_mindspore, ms_cell, x, torch_capture.labels, grads=grads,
                      train_mode=train_mode, loss_fn=loss_fn, described=described, inputs=keep)
    progress("comparing every layer")
    forward_rtol = LAYER_DIFF_TRAIN_NORM_REL if train_mode else LAYER_DIFF_EVAL_NORM_REL
    alignment = align(torch_module, ms_cell, pairing, torch_capture, ms_capture,
                      loose_rtol=forward_rtol if mode == "values" else None)
    notes.append(alignment.line())
    twin = alignment.pairs.get

    random_layers, randomising = _random_layers(torch_module) if train_mode else (set(), set())
    randomised = _outputs_after(torch_capture.outputs, randomising)
    if randomised:
        called = sorted(randomising & {n.partition("#")[0] for n in torch_capture.outputs})
        notes.append(f"train mode: {few(called, 4)} draw random dropout masks in each framework, so from the first "
                     f"of them on outputs{' and all gradients' if grads else ''} are compared by magnitude; "
                     f"each Dropout by its fraction of zeros")
    records = _layer_records("output", torch_capture.outputs, ms_capture.outputs, twin, mode, forward_rtol,
                             random_layers, randomised)
    for record in records:
        record["paired_by"] = alignment.how[record["name"]]
    grad_tolerance = None
    if grads:
        grad_tolerance = measured_grad_tolerance(torch_module, x, torch_capture, train_mode, torch_loss_fn) \
            if mode == "values" else None
        every = set(torch_capture.output_grads) | set(torch_capture.param_grads) if randomised else set()
        records += _layer_records("output_grad", torch_capture.output_grads, ms_capture.output_grads,
                                  twin, mode, forward_rtol, set(), every, grad_tolerance)
        ms_to_torch = pairing.ms_to_torch
        ms_param_grads = OrderedDict((ms_to_torch.get(k, k), v) for k, v in ms_capture.param_grads.items())
        records += _layer_records("param_grad", torch_capture.param_grads, ms_param_grads, lambda n: n, mode,
                                  forward_rtol, set(), every, grad_tolerance)
    summary = _summary(records, mode, torch_capture, ms_capture, alignment, train_mode, grads)
    summary.update(pairing.summary())
    if mode == "values":
        summary["forward_rtol"] = forward_rtol
        if grads:
            summary["grad_rtol"], summary["grad_min_cosine"] = grad_tolerance
    else:
        summary["magnitude_ratio_range"] = list(MAGNITUDE_RATIO_RANGE)
    if mode == "values" and differing:
        summary["weights_differ"] = differing
    judge(records, summary, notes, mode=mode, forward_rtol=forward_rtol, alignment=alignment, pairing=pairing,
          models=(torch_module, ms_cell), captures=(torch_capture, ms_capture), train_mode=train_mode,
          skip=randomising)
    return LayerDiffResult(records, summary, notes, {"torch": torch_capture, "mindspore": ms_capture})


def _run(side, capture, model, x, y, *, described, **kwargs):
    """One capture; a model that cannot run the input is the user's to fix, said in one line."""
    try:
        return capture(model, x, y, **kwargs)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's model (or loss) failed on the given input
        text = str(exc).strip().splitlines()
        raise UserError(f"the {side} model failed on the {described} ({type(exc).__name__}: "
                        f"{text[0] if text else ''}); give its own inputs (--example / --input) "
                        f"and, for gradients of a non-logits output, its loss") from exc


def weights_match(torch_module, ms_cell, atol=SAME_WEIGHTS_MAX_ABS, pairing=None, name_map=None):
    """``(same, why, differing)``: do the models hold the same weights (after name conversion)?

    "Same" means most of the parameters that carry information agree; constant
    ones (BatchNorm's fresh 1s and 0s) agree under any init and do not count.
    A port that loaded converted weights with one mistake (a transposed Dense)
    is still "same": its values are compared and the mistake shows as a layer,
    and ``differing`` names the parameters that differ.
    """
    from msport.diagnose.compare_ckpt import model_states

    pairing = pairing or pair_models(torch_module, ms_cell, name_map)
    torch_state, ms_state = model_states(torch_module, ms_cell, pairing)
    if not ms_state:
        return False, "no parameter pairs up by name or structure", []
    # a bias the twin layer lacks is a setting (the culprit's reason), not a sign of independent weights
    informative = [k for k, v in torch_state.items() if v.size > 1 and np.ptp(v) > 0 and k not in pairing.lacking_torch]
    differing = [k for k in informative
                 if k not in ms_state or ms_state[k].shape != torch_state[k].shape
                 or not np.allclose(ms_state[k].astype(np.float64), torch_state[k].astype(np.float64),
                                    rtol=0.0, atol=atol)]
    if informative and len(differing) * 2 < len(informative):
        why = "the models hold the same weights; comparing values"
        if differing:
            why += f" (except {len(differing)} parameter(s): {', '.join(differing[:5])})"
        return True, why, differing
    return False, (f"{len(differing)} of {len(informative)} parameters differ (independent weights); "
                   f"comparing magnitudes, not values"), differing


def _random_layers(torch_module):
    """``(Dropout-like layers, every layer drawing random masks in train mode)``: the registry's stochastic
    entries, and any module with a ``dropout`` probability above 0 (MultiheadAttention, LSTM)."""
    from msport.registry import torch_layers

    stochastic = {name for name, entry in torch_layers(torch_module).items() if entry.stochastic}
    inner = {name for name, module in torch_module.named_modules()
             if isinstance(getattr(module, "dropout", None), float) and module.dropout > 0}
    return stochastic, stochastic | inner




def _outputs_after(outputs, random_layers):
    """Output names (forward order) from the first random layer's output on, Dropouts' own excluded."""
    after, seen = set(), False
    for name in outputs:
        if name.partition("#")[0] in random_layers:
            seen = True
        if seen:
            after.add(name)
    return after


def _zero_fraction_judge(torch_value, ms_value):
    """A random layer in train mode: do both zero the same fraction (Dropout's p)?"""
    n = torch_value.size
    f_torch, f_ms = float(np.mean(torch_value == 0)), float(np.mean(ms_value == 0))
    p = min(max((f_torch + f_ms) / 2, 1.0 / n), 1 - 1.0 / n)
    allowed = DROPOUT_ZERO_FRACTION_SIGMAS * math.sqrt(2 * p * (1 - p) / n) + 1e-3
    score = abs(f_ms - f_torch) / allowed
    if score <= 1.0:
        return score, None
    return score, (f"train mode zeroes {f_ms:.3g} of MindSpore's outputs and {f_torch:.3g} of torch's: the drop "
                   f"probability differs (MindSpore's keep_prob is 1 - p; give nn.Dropout(p=...))")


def _layer_records(kind, torch_tensors, ms_tensors, twin, mode, forward_rtol, random_layers=frozenset(),
                   by_magnitude=frozenset(), grad_tolerance=None):
    """One record per tensor both sides hold: ``twin(torch key)`` is the MindSpore key (None: no twin)."""
    records = []
    for name, torch_value in torch_tensors.items():
        ms_value = ms_tensors.get(twin(name)) if twin(name) is not None else None
        if ms_value is None:
            continue
        record = OrderedDict([("name", name), ("kind", kind), ("shape_torch", tuple(torch_value.shape)),
                              ("shape_ms", tuple(ms_value.shape))])
        if torch_value.shape != ms_value.shape:
            record.update(dict.fromkeys(FIGURES))
            record["vanishing"], record["score"], record["judged_by"] = False, float("inf"), mode
            record["flagged"], record["reason"] = True, f"shape {torch_value.shape} vs {ms_value.shape}"
        else:
            record.update((key, value) for key, value in compare(torch_value, ms_value, sides=("torch", "ms")).items()
                          if key in FIGURES)
        records.append(record)
    if kind != "output":
        floor = GRAD_VANISHING_FRACTION * max((r["torch_mean_abs"] or 0.0 for r in records), default=0.0)
    for record in records:
        if "flagged" in record:
            continue
        vanishing = kind != "output" and max(record["torch_mean_abs"], record["ms_mean_abs"]) < floor
        judged = "magnitude" if record["name"] in by_magnitude else mode
        if kind == "output" and record["name"].partition("#")[0] in random_layers:
            judged = "zero fraction"
            score, reason = _zero_fraction_judge(torch_tensors[record["name"]], ms_tensors[twin(record["name"])])
        elif vanishing:
            score, reason = 0.0, None
        else:
            score, reason = _judge(kind, record, judged, forward_rtol, grad_tolerance)
        record["vanishing"], record["score"], record["judged_by"] = vanishing, score, judged
        record["flagged"], record["reason"] = reason is not None, reason
    return records


FIGURES = ("max_abs_diff", "mean_abs_diff", "rel_diff", "cosine", "torch_mean_abs", "ms_mean_abs",
           "magnitude_ratio", "torch_std", "ms_std")


def _judge(kind, figures, mode, forward_rtol, grad_tolerance=None):
    """``(score, reason)``: how many tolerances away the record is (> 1 is flagged), and why."""
    if mode == "magnitude":
        ratio = figures["magnitude_ratio"]
        low, high = MAGNITUDE_RATIO_RANGE
        # symmetric in log space: ratios 1/4 and 4 are equally far outside [1/2, 2]
        score = abs(math.log(ratio)) / math.log(high) if 0.0 < ratio < float("inf") else float("inf")
        if within_magnitude_range(ratio):
            return min(score, 1.0), None
        return score, f"magnitude ratio mean|ms|/mean|torch| = {ratio:.3g} outside [{low:g}, {high:g}]"
    if kind == "output":
        score = figures["rel_diff"] / forward_rtol
        if score > 1.0:
            return score, f"relative difference {figures['rel_diff']:.3g} > {forward_rtol:g}"
        return score, None
    rtol, min_cosine = grad_tolerance or (LAYER_DIFF_GRAD_NORM_REL, LAYER_DIFF_GRAD_MIN_COSINE)
    score = max(figures["rel_diff"] / rtol, (1.0 - figures["cosine"]) / (1.0 - min_cosine))
    if score > 1.0:
        return score, (f"gradient relative difference {figures['rel_diff']:.3g} (max {rtol:.3g}), "
                       f"cosine {figures['cosine']:.5f} (min {min_cosine:.5f})")
    return score, None


def _summary(records, mode, torch_capture, ms_capture, alignment, train_mode, grads):
    def first(kind):
        return next((r["name"] for r in records if r["kind"] == kind and r["flagged"]), None)

    summary = OrderedDict([
        ("mode", mode),
        ("train_mode", train_mode),
        ("grads", grads),
        ("first_divergence", first("output") or first("output_grad") or first("param_grad")),
        ("first_output_divergence", first("output")),
        ("first_grad_divergence", first("output_grad")),
        ("first_param_grad_divergence", first("param_grad")),
        ("flagged", sum(1 for r in records if r["flagged"])),
    ])
    for kind in KINDS:
        summary[f"{kind}s_compared"] = sum(1 for r in records if r["kind"] == kind)
    summary.update((f"calls_paired_by_{h}", n) for h, n in alignment.counts().items())
    summary["only_torch"] = _unique_bases(alignment.unpaired_torch)
    summary["only_mindspore"] = _unique_bases(alignment.unpaired_ms)
    comparable = torch_capture.logits is not None and ms_capture.logits is not None \
        and torch_capture.logits.shape == ms_capture.logits.shape
    summary["logits_rel_diff"] = compare(torch_capture.logits, ms_capture.logits)["rel_diff"] if comparable else None
    if grads:
        summary["loss_torch"], summary["loss_ms"] = torch_capture.loss, ms_capture.loss
    return summary


def _unique_bases(names):
    return list(OrderedDict.fromkeys(n.partition("#")[0] for n in names))


# --- --dump -----------------------------------------------------------------------------------

def write_dump(result, directory, x):
    """Save every captured tensor: ``torch.npz`` and ``mindspore.npz``, keys ``<kind>/<name>``.

    Names are torch names on both sides (MindSpore parameter gradients are
    converted); both files also hold ``input``, ``labels`` (when gradients were
    taken) and ``logits``. Returns the two paths.
    """
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create dump folder {directory}: {exc.strerror}") from exc
    paths = []
    args, kwargs = as_inputs(x)
    inputs = {"input": args[0]} if len(args) == 1 and not kwargs else \
        {**{f"input/{i}": a for i, a in enumerate(args)}, **{f"input/{k}": v for k, v in kwargs.items()}}
    for side, capture in result.captures.items():
        arrays = dict(inputs)
        if capture.logits is not None:
            arrays["logits"] = capture.logits
        if capture.labels is not None:
            arrays["labels"] = capture.labels
        for kind, tensors in (("output", capture.outputs), ("output_grad", capture.output_grads),
                              ("param_grad", capture.param_grads)):
            for name, value in tensors.items():
                arrays[f"{kind}/{name}"] = value
        path = os.path.join(directory, f"{side}.npz")
        np.savez(path, **arrays)
        paths.append(path)
    return paths


# --- presentation -------------------------------------------------------------------------------

TABLE_COLUMNS = [
    Column("layer", "name", left=True),
    Column("kind", "kind", left=True),
    Column("shape", "shape_torch"),
    Column("max|d|", "max_abs_diff"),
    Column("rel diff", "rel_diff"),
    Column("cosine", "cosine"),
    Column("torch mean|x|", "torch_mean_abs"),
    Column("ms mean|x|", "ms_mean_abs"),
    Column("ratio", "magnitude_ratio"),
    Column("torch std", "torch_std"),
    Column("ms std", "ms_std"),
    Column("x tol", "score"),
    Column("alone", "alone_rel_diff"),
    Column("paired by", "paired_by", left=True),
    Column("flag", "flagged", flag_mark),
]

def plots_for(result):
    """The ``--report`` plots of the figure this run was judged by.

    values mode (same weights): how far each output departs, against the tolerance.
    magnitude mode (independent inits): the mean|ms| / mean|torch| ratio with the band
    that passes; a values difference means nothing there (every value is ~1).
    """
    summary = result.summary
    output = lambda r: r["kind"] == "output"  # noqa: E731
    output_grad = lambda r: r["kind"] == "output_grad"  # noqa: E731
    plots = [Plot("magnitude.png", "mean |output| per layer", "mean |x|",
                  (("torch", "torch_mean_abs"), ("MindSpore", "ms_mean_abs")), select=output)]
    if summary.get("mode") == "magnitude":
        band = tuple(summary["magnitude_ratio_range"])
        plots.append(Plot("magnitude_ratio.png", "mean|ms| / mean|torch| of each layer's output", "ratio (log)",
                          (("outputs", "magnitude_ratio"),), select=output, band=band))
    else:
        plots.append(Plot("difference.png", "relative difference of outputs ||torch-ms|| / ||torch||",
                          "relative difference", (("outputs", "rel_diff"),), select=output,
                          threshold=summary.get("forward_rtol")))
    if summary.get("grads"):
        plots.append(Plot("grad_magnitude.png", "mean |d loss / d output| per layer (backward order)",
                          "mean |grad|", (("torch", "torch_mean_abs"), ("MindSpore", "ms_mean_abs")),
                          select=output_grad))
        if summary.get("mode") == "magnitude":
            plots.append(Plot("grad_magnitude_ratio.png", "mean|ms| / mean|torch| of each output gradient (backward order)",
                              "ratio (log)", (("output grads", "magnitude_ratio"),), select=output_grad,
                              band=tuple(summary["magnitude_ratio_range"])))
        else:
            plots.append(Plot("grad_difference.png", "relative difference of output gradients",
                              "relative difference", (("output grads", "rel_diff"),), select=output_grad,
                              threshold=summary.get("grad_rtol")))
    return plots


#: --top N shows the N records furthest outside their tolerance (in either mode).
SORT_KEY = "score"

__all__ = ["layer_diff", "weights_match", "write_dump", "LayerDiffResult", "MODES", "TABLE_COLUMNS",
           "plots_for", "SORT_KEY"]
