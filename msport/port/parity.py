"""How a ported model is checked against its torch original, on the model's own inputs.

:func:`parity_report` runs both models on the example inputs (any number, any dtype) and compares
every output tensor, norm-relative (``||ms - torch|| / ||torch||``) against
:data:`msport.tolerances.PORT_OUTPUT_NORM_REL`, max-abs beside it; then every layer
(:func:`msport.diagnose.layer_diff`) for the first divergence.

Random weights alone can make that vacuous: with fresh BatchNorm statistics activations vanish
through the depth (mobilenet_v3_small's logits come out near 1e-16, where anything agrees), and a
head or class token left at zero makes its output exactly 0. So the check runs on a copy of the torch
model whose BatchNorm statistics come from one train-mode pass over the example inputs (random ones
where that pass fails) and whose all-zero parameters are drawn N(0, 0.02); the port is given the
copy's weights for the check and its own back after. The report says so (``prepared``).
"""

import copy
import inspect
import re
from collections import OrderedDict

import numpy as np

from msport.tolerances import PORT_OUTPUT_NORM_REL, norm_rel


def prepare_copy(module, args, kwargs):
    """A copy of ``module`` whose BatchNorm statistics and all-zero parameters say something; ``(copy, notes)``."""
    import torch

    model = copy.deepcopy(module)
    notes = []
    generator = torch.Generator().manual_seed(2)
    zeros = []
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.is_floating_point() and p.numel() > 1 and not p.detach().any():
                p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * 0.02)
                zeros.append(name)
    if zeros:
        notes.append(f"all-zero parameters drawn N(0, 0.02) on the copy checked: {_few(zeros)}")
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
             and m.track_running_stats]
    if norms:
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average: after one pass, exactly its statistics
        model.train()
        try:
            with torch.no_grad():
                model(*args, **kwargs)
            how = "one train-mode pass over the example inputs"
        except Exception:  # noqa: BLE001 - a batch of one cannot give statistics; random ones do
            for m in norms:
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=generator) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=generator) + 0.5)
            how = "random draws (mean N(0, 0.01), variance U(0.5, 1.5))"
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        notes.append(f"BatchNorm running statistics of {len(norms)} layers set from {how} on the copy checked")
    model.eval()
    return model, notes


def _flatten_ms(value):
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _flatten_ms(v)]
    if isinstance(value, (tuple, list)):
        return [leaf for v in value for leaf in _flatten_ms(v)]
    return [] if value is None else [value]


def _numpy(value):
    if hasattr(value, "asnumpy"):
        value = value.asnumpy()
    elif hasattr(value, "detach"):
        value = value.detach().float().numpy() if value.dtype.is_floating_point else value.detach().numpy()
    return np.asarray(value)


def compare_outputs(model, cell, args, kwargs, tolerance=PORT_OUTPUT_NORM_REL):
    """Every output tensor of both models on the same inputs: a list of rows."""
    import torch
    from torch.utils import _pytree as pytree

    from msport._mindspore import ms

    with torch.no_grad():
        expected = model(*args, **kwargs)
    leaves, _spec = pytree.tree_flatten(expected)
    paths = [re.sub(r"\['([^']*)'\]", r".\1", pytree.keystr(p)).lstrip(".") or "output"
             for p, _ in pytree.tree_flatten_with_path(expected)[0]]
    inputs = [ms.Tensor(_numpy(v)) for v in pytree.tree_leaves((args, kwargs)) if isinstance(v, torch.Tensor)]
    got = _flatten_ms(cell(*inputs))
    rows = []
    pairs = [(p, e) for p, e in zip(paths, leaves) if isinstance(e, torch.Tensor)]
    if len(pairs) != len(got):
        raise AssertionError(f"torch returned {len(pairs)} tensors, the port {len(got)}")
    for (path, e), g in zip(pairs, got):
        e, g = _numpy(e), _numpy(g)
        row = OrderedDict([("output", path.lstrip(".")), ("shape", list(e.shape)), ("dtype", str(e.dtype))])
        if e.shape != g.shape:
            row.update(norm_rel=None, max_abs=None, within_tolerance=False, why=f"port's shape {list(g.shape)}")
        else:
            diff = float(np.abs(e.astype(np.float64) - g.astype(np.float64)).max()) if e.size else 0.0
            rel = norm_rel(e, g) if np.any(e) else (0.0 if diff == 0 else float("inf"))
            row.update(norm_rel=rel, max_abs=diff, scale=float(np.abs(e).max()) if e.size else 0.0,
                       within_tolerance=bool(rel <= tolerance))
        rows.append(row)
    return rows


def parity_report(module, cell, args, kwargs, convert, changes=(), tolerance=PORT_OUTPUT_NORM_REL):
    """Outputs and layers of ``module`` and its ported ``cell`` on the inputs; a JSON-ready dict.

    ``convert(torch_module)``: the cell's parameters for a torch module of the same structure (the
    prepared copy's weights go into the cell for the check; the cell gets its own back after)."""
    from msport.diagnose.report import json_ready
    from msport.port.build import load_into

    model, notes = prepare_copy(module, args, kwargs)
    own = OrderedDict((p.name, p.asnumpy()) for p in cell.get_parameters())
    was_training = cell.training
    cell.set_train(False)
    load_into(cell, convert(model))
    try:
        outputs = compare_outputs(model, cell, args, kwargs, tolerance)
        layers, first, layer_rtol, layer_note = _layers(model, cell, args, kwargs)
    finally:
        load_into(cell, own)
        cell.set_train(was_training)
    if layer_note:
        notes.append(layer_note)
    worst = max(outputs, key=lambda r: -1 if r["norm_rel"] is None else r["norm_rel"]) if outputs else None
    return json_ready(OrderedDict([
        ("inputs", _describe(args, kwargs)),
        ("tolerance", tolerance),
        ("within_tolerance", bool(outputs) and all(r["within_tolerance"] for r in outputs)),
        ("outputs", outputs),
        ("worst_output", worst),
        ("first_divergence", first),
        ("layer_rtol", layer_rtol),
        ("layers_compared", len(layers)),
        ("layers_flagged", sum(1 for r in layers if r["flagged"])),
        ("layers", layers),
        ("changes", list(changes)),
        ("prepared", notes),
    ]))


def _layers(model, cell, args, kwargs):
    from msport.diagnose import layer_diff

    try:
        bound = inspect.signature(model.forward).bind(*args, **kwargs)
        x = {k: _numpy(v) for k, v in bound.arguments.items() if hasattr(v, "detach")}
        if len(x) == 1 and not kwargs:
            x = next(iter(x.values()))
        result = layer_diff(model, cell, x, mode="values")
    except Exception as exc:  # noqa: BLE001 - the per-layer view is extra; the outputs were compared
        return [], None, None, f"layers not compared ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
    rows = [OrderedDict((k, r[k]) for k in ("name", "shape_torch", "max_abs_diff", "rel_diff", "flagged", "reason"))
            for r in result.records if r["kind"] == "output"]
    return rows, result.summary.get("first_output_divergence"), result.summary.get("forward_rtol"), None


def _describe(args, kwargs):
    def one(v):
        return f"{tuple(v.shape)} {str(v.dtype).replace('torch.', '')}" if hasattr(v, "shape") else repr(v)
    return [one(v) for v in args] + [f"{k}={one(v)}" for k, v in kwargs.items()]


def _few(items, n=5):
    items = list(items)
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def parity_markdown(report, title):
    """``parity.md``: every output's verdict, the first divergence, the layers furthest apart."""
    verdict = "within" if report["within_tolerance"] else "OUTSIDE"
    lines = [f"# Parity: {title}", "", (f"Inputs {', '.join(report['inputs'])}, same weights in both frameworks; "
             f"all outputs {verdict} ||ms - torch|| / ||torch|| <= {report['tolerance']:g}."), "",
             "| output | shape | norm-rel diff | max abs diff | within |", "| --- | --- | --- | --- | --- |"]
    for r in report["outputs"]:
        rel = "-" if r["norm_rel"] is None else f"{r['norm_rel']:.3g}"
        diff = "-" if r["max_abs"] is None else f"{r['max_abs']:.3g}"
        lines.append(f"| {r['output']} | {tuple(r['shape'])} | {rel} | {diff} | "
                     f"{'yes' if r['within_tolerance'] else 'NO'} |")
    lines += ["", f"- layers compared: {report['layers_compared']}, flagged: {report['layers_flagged']}",
              f"- first divergence: {report['first_divergence'] or 'none'}"]
    lines += [f"- changed to export: {c}" for c in report["changes"]]
    lines += [f"- checked on a prepared copy: {n}" for n in report["prepared"]]
    worst = sorted(report["layers"], key=lambda r: -(r["rel_diff"] or 0.0))[:10]
    if worst:
        lines += ["", "Layers furthest apart:", "", "| layer | shape | max abs diff | rel diff | flagged |",
                  "| --- | --- | --- | --- | --- |"]
        lines += [f"| {r['name']} | {tuple(r['shape_torch'])} | {r['max_abs_diff']:.3g} | {r['rel_diff']:.3g} | "
                  f"{'yes' if r['flagged'] else ''} |" for r in worst]
    return "\n".join(lines) + "\n"


__all__ = ["compare_outputs", "parity_markdown", "parity_report", "prepare_copy"]
