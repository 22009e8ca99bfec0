"""layer-diff's verdict: culprits in isolation, the span where outputs part, and never "clean" by omission.

In values mode (same weights) the records of paired outputs say whether each
output differs; that alone blames everything downstream of a mistake. Here

* every paired call is replayed on torch's own input (:mod:`msport.diagnose.replay`),
  and only the *culprits* (differ alone, nothing paired inside them does) stay
  flagged, each with the audit's reading of the two layers where the registry
  knows the type; outputs that differ only by inheritance are kept, unflagged,
  with ``differs`` set;
* the model's own output is a record, ``(output)``: when it differs and no
  culprit explains the first output that differs, a ``span`` record names the
  last matching and the first differing output and the layers in between that
  pair with nothing (the suspects), so a divergent port is never "nothing flagged".
  Outputs that part and meet again while the model's output agrees and nothing
  differs alone are noted, not flagged (two calls paired by position that are
  not twins, or a difference that dies out);
* with gradients, the loss is a record, ``(loss)``: different losses on
  matching outputs (label smoothing on one side) are flagged, and gradients
  are judged against the float32 noise of this model on this batch, measured by
  running torch's twin in float64 (:func:`measured_grad_tolerance`);
* a pairing with parameters left over on either side (weights not all compared
  or copied) makes the verdict ``incomplete``, never clean, until a name map
  pairs them.

``summary["verdict"]`` is ``clean``, ``diverges`` or ``incomplete``.
"""

import math
from collections import OrderedDict

import numpy as np

from msport.diagnose.replay import culprits, reason, replay
from msport.errors import few
from msport.tolerances import (GRAD_NOISE_FACTOR, GRAD_NOISE_FLOOR_COSINE, GRAD_NOISE_FLOOR_REL,
                               GRAD_VANISHING_FRACTION, LAYER_DIFF_GRAD_MIN_COSINE, LAYER_DIFF_GRAD_NORM_REL,
                               LOSS_REL, cosine, norm_rel)

VERDICTS = ("clean", "diverges", "incomplete")
OUTPUT = "(output)"
LOSS = "(loss)"


def judge(records, summary, notes, *, mode, forward_rtol, alignment, pairing, models, captures, train_mode,
          skip=frozenset()):
    """Complete ``records`` and ``summary`` in place (see the module docstring)."""
    ms_cell = models[1]
    torch_capture, ms_capture = captures
    outputs = [r for r in records if r["kind"] == "output"]
    final = _output_record(torch_capture.logits, ms_capture.logits, mode, forward_rtol)
    if final is not None:
        records.insert(len(outputs), final)
        outputs.append(final)
    values = [r for r in outputs if r.get("judged_by") == "values"]
    found, suspects, span = [], [], None
    if mode == "values":
        alone = replay(ms_cell, alignment, torch_capture, ms_capture, train_mode=train_mode, skip=skip)
        found = culprits(alignment, alone, torch_capture.spans, forward_rtol)
        for record in values:
            record["differs"] = bool(record["flagged"])
            figures = alone.get(record["name"], {})
            record["alone_rel_diff"] = figures.get("alone_rel_diff")
            record["flagged"] = record["name"] in found
            if record["flagged"]:
                record["reason"], record["cause_known"] = _culprit_reason(record, figures, forward_rtol, alignment,
                                                                          models, pairing, torch_capture)
            else:
                record["reason"] = figures.get("alone_note")
        # outputs that part and meet again, while the model's own output agrees and nothing differs alone,
        # are two calls paired by position that are not twins, or a difference that dies out: no divergence
        parted = final["differs"] if final is not None and "differs" in final else any(r["differs"] for r in values)
        span, suspects = (_span(values, found, alignment, torch_capture.spans, ms_capture.spans) if parted
                          else (None, []))
        if not parted and any(r["differs"] for r in values):
            notes.append(f"outputs differ at {few([r['name'] for r in values if r['differs']], 4)}, but no layer "
                         f"differs alone and the model's output agrees: not a divergence")
        if span is not None:
            records.insert(records.index(span[1]), _span_record(span, suspects, alignment))
        if torch_capture.loss is not None and ms_capture.loss is not None:
            forward = sum(1 for r in records if r["kind"] in ("output", "span"))
            records.insert(forward, _loss_record(torch_capture.loss, ms_capture.loss, final))
    summary["culprits"] = found
    summary["span"] = [span[0]["name"] if span[0] else "input", span[1]["name"]] if span else None
    summary["suspects"] = suspects
    flagged = [r for r in records if r["flagged"]]
    summary["flagged"] = len(flagged)
    summary["first_divergence"] = found[0] if found else (flagged[0]["name"] if flagged else None)
    summary["logits_differ"] = bool(final and (final.get("differs") or final["flagged"]))
    diverges = bool(flagged) or bool(final and final.get("differs"))
    incomplete = bool(pairing.unresolved_torch or pairing.unresolved_ms)
    summary["verdict"] = "incomplete" if incomplete else ("diverges" if diverges else "clean")
    if incomplete:
        notes.append(f"INCOMPLETE: {len(pairing.unresolved_torch)} torch and {len(pairing.unresolved_ms)} MindSpore "
                     f"parameters pair with nothing, so those weights were neither compared nor copied; no values "
                     f"verdict until a --name-map pairs them")


def _output_record(torch_logits, ms_logits, mode, rtol):
    from msport.diagnose.layer_diff import FIGURES, _judge
    from msport.diagnose.stats import compare

    if torch_logits is None or ms_logits is None:
        return None
    record = OrderedDict([("name", OUTPUT), ("kind", "output"), ("shape_torch", tuple(torch_logits.shape)),
                          ("shape_ms", tuple(ms_logits.shape)), ("paired_by", "model")])
    if torch_logits.shape != ms_logits.shape:
        record.update(dict.fromkeys(FIGURES))
        record.update(vanishing=False, score=math.inf, judged_by=mode, flagged=True,
                      reason=f"shape {torch_logits.shape} vs {ms_logits.shape}")
        return record
    record.update((k, v) for k, v in compare(torch_logits, ms_logits, sides=("torch", "ms")).items() if k in FIGURES)
    score, why = _judge("output", record, mode, rtol)
    record.update(vanishing=False, score=score, judged_by=mode, flagged=why is not None, reason=why)
    return record


def _culprit_reason(record, figures, rtol, alignment, models, pairing, torch_capture):
    """``(reason, cause_known)``: ``cause_known`` says whether the audit's reading of a registered layer type
    finds the difference (``None``: a type the registry does not hold)."""
    name = record["name"]
    alone = figures.get("alone_rel_diff")
    text = figures.get("alone_note") or f"differs on torch's own input (alone {alone:.3g} > {rtol:g})"
    if alignment.how.get(name) == "contents":
        text += ("; every paired layer inside it matches alone, so it computes something between them "
                 "(a functional op, the wiring)")
    why, known = reason(name, alignment.pairs[name], *models, pairing, torch_capture)
    if why and "output shape" in why and "output shape" in text:
        text = "differs on torch's own input"  # the audit's probe already gives both shapes
    return (f"{why}; {text}" if why else text), known


def _span(values, found, alignment, torch_spans, ms_spans):
    """``((last matching record or None, first differing record), suspects)`` where no culprit explains
    the first output that differs; ``(None, [])`` where one does or nothing differs."""
    first = next((i for i, r in enumerate(values) if r["differs"]), None)
    if first is None:
        return None, []
    end = _end(values[first]["name"], torch_spans)
    if any(torch_spans[c][1] <= end for c in found):
        return None, []
    last = next((r for r in reversed(values[:first]) if not r["differs"]), None)
    t_from = _end(last["name"], torch_spans) if last else -1
    m_from = _end(alignment.pairs.get(last["name"]), ms_spans) if last else -1
    m_to = _end(alignment.pairs.get(values[first]["name"]), ms_spans)
    suspects = [f"torch {c} ({alignment.types[f'torch:{c}']})" for c in alignment.unpaired_torch
                if t_from < torch_spans[c][1] <= end]
    suspects += [f"MindSpore {c} ({alignment.types[f'ms:{c}']})" for c in alignment.unpaired_ms
                 if m_from < ms_spans[c][1] <= m_to]
    return (last, values[first]), suspects


def _end(call, spans):
    return spans[call][1] if call in spans else math.inf


def _span_record(span, suspects, alignment):
    last, first = span
    where = f"{last['name'] if last else 'input'} .. {first['name']}"
    if suspects:
        why = f"outputs part here and no paired layer differs on torch's input; pairing with nothing here: " \
              f"{', '.join(suspects)}"
    else:
        why = ("outputs part here, no paired layer differs on torch's input and every layer here is paired: "
               "the difference is in computation no layer holds (functional ops between layers)")
    return OrderedDict([("name", where), ("kind", "span"), ("shape_torch", first["shape_torch"]),
                        ("rel_diff", first.get("rel_diff")), ("score", first.get("score")),
                        ("flagged", True), ("reason", why)])


def _loss_record(torch_loss, ms_loss, final):
    """The two losses: different values on matching outputs mean different loss functions."""
    rel = abs(ms_loss - torch_loss) / max(abs(torch_loss), 1e-30)
    outputs_match = final is not None and not final.get("differs") and not final["flagged"]
    flagged = rel > LOSS_REL and outputs_match
    why = (f"the losses differ ({torch_loss:.6g} torch, {ms_loss:.6g} MindSpore, relative {rel:.3g} > {LOSS_REL:g}) "
           f"on matching outputs: the two losses compute different things (label smoothing, class weights, "
           f"reduction); every gradient inherits it") if flagged else None
    return OrderedDict([("name", LOSS), ("kind", "loss"), ("shape_torch", ()), ("rel_diff", rel),
                        ("score", rel / LOSS_REL), ("flagged", flagged), ("reason", why)])


def measured_grad_tolerance(torch_module, x, torch_capture, train_mode, loss_fn):
    """``(norm-relative, min cosine)`` for gradients: ``GRAD_NOISE_FACTOR`` times the float32 noise of torch's
    own parameter gradients on this batch (float32 against a float64 copy of the model), floored.

    The float64 pass runs without hooks (parameter gradients are all it needs): about the cost of one
    plain torch forward and backward.
    """
    import copy

    import torch

    from msport.diagnose.capture import _first_tensor, as_inputs

    args, kwargs = as_inputs(x)

    def wide(a):
        return torch.from_numpy(a.astype(np.float64) if np.issubdtype(a.dtype, np.floating) else np.array(a))

    double = copy.deepcopy(torch_module).double().train(train_mode)
    labels = torch.from_numpy(np.array(torch_capture.labels)) if torch_capture.labels is not None else None
    try:
        with torch.random.fork_rng():
            output = double(*[wide(a) for a in args], **{k: wide(v) for k, v in kwargs.items()})
            loss = loss_fn(output, labels) if loss_fn is not None else \
                torch.nn.functional.cross_entropy(_first_tensor(output, torch.is_tensor), labels.long())
            loss.backward()
    except Exception:  # noqa: BLE001 - a model or loss that cannot run in float64: the fixed bounds stand
        return LAYER_DIFF_GRAD_NORM_REL, LAYER_DIFF_GRAD_MIN_COSINE
    wide_grads = {n: p.grad.numpy() for n, p in double.named_parameters() if p.grad is not None}
    # structurally zero gradients (layer-diff does not judge them) are pure rounding: leave them out
    floor = GRAD_VANISHING_FRACTION * max((float(np.mean(np.abs(g))) for g in wide_grads.values()), default=0.0)
    worst_rel, worst_cos = 0.0, 0.0
    for name, g in torch_capture.param_grads.items():
        reference = wide_grads.get(name)
        if reference is not None and reference.shape == g.shape and float(np.mean(np.abs(reference))) > floor:
            worst_rel = max(worst_rel, norm_rel(reference, g))
            worst_cos = max(worst_cos, 1.0 - cosine(reference, g))
    rtol = max(GRAD_NOISE_FACTOR * worst_rel, GRAD_NOISE_FLOOR_REL)
    min_cos = 1.0 - max(GRAD_NOISE_FACTOR * worst_cos, GRAD_NOISE_FLOOR_COSINE)
    return rtol, min_cos


__all__ = ["LOSS", "OUTPUT", "VERDICTS", "judge", "measured_grad_tolerance"]
