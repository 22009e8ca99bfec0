"""How a ported model is checked against its torch original.

* :func:`parity_report`: both models on one input, every layer's output compared
  (:func:`msport.diagnose.layer_diff`, same weights) and the logits' largest absolute
  difference judged against :data:`msport.tolerances.PORT_LOGITS_MAX_ABS`.
* :func:`train_step_parity`: one training step from the same weights on the same batch, each
  framework with the optimizer and step the paired trainers use; losses and BatchNorm running
  statistics compared.
"""

import types
from collections import OrderedDict

import numpy as np

from msport.tolerances import PORT_LOGITS_MAX_ABS


def parity_report(torch_module, cell, x, tolerance=PORT_LOGITS_MAX_ABS):
    """Layer-by-layer and logits comparison of ``torch_module`` and its ported ``cell`` on ``x``
    (a float32 array); a JSON-ready dict. The models are left as they were."""
    from msport.diagnose import layer_diff
    from msport.diagnose.report import json_ready

    x = np.ascontiguousarray(x, dtype=np.float32)
    result = layer_diff(torch_module, cell, x, mode="values")
    torch_logits = result.captures["torch"].logits
    ms_logits = result.captures["mindspore"].logits
    max_abs = float(np.abs(torch_logits.astype(np.float64) - ms_logits.astype(np.float64)).max())
    outputs = [r for r in result.records if r["kind"] == "output"]
    layers = [OrderedDict((k, r[k]) for k in ("name", "shape_torch", "max_abs_diff", "rel_diff", "flagged", "reason"))
              for r in outputs]
    return json_ready(OrderedDict([
        ("input_shape", list(x.shape)),
        ("logits", OrderedDict([("shape", list(torch_logits.shape)), ("max_abs_diff", max_abs),
                                ("rel_diff", result.summary.get("logits_rel_diff")), ("tolerance", tolerance),
                                ("within_tolerance", max_abs <= tolerance)])),
        ("first_divergence", result.summary.get("first_output_divergence")),
        ("layer_rtol", result.summary.get("forward_rtol")),
        ("layers_compared", len(outputs)),
        ("layers_flagged", sum(1 for r in outputs if r["flagged"])),
        ("layers", layers),
    ]))


def parity_markdown(report, title):
    """``parity.md``: the logits verdict, the first divergence and the layers furthest apart."""
    logits = report["logits"]
    verdict = "within" if logits["within_tolerance"] else "OUTSIDE"
    lines = [f"# Parity: {title}", "",
             f"Input {tuple(report['input_shape'])}, same weights in both frameworks.", "",
             f"- logits {tuple(logits['shape'])}: max |torch - MindSpore| = {logits['max_abs_diff']:.3g} "
             f"({verdict} the tolerance {logits['tolerance']:g}); relative difference {logits['rel_diff']:.3g}",
             f"- layers compared: {report['layers_compared']}, flagged: {report['layers_flagged']} "
             f"(relative difference above {report['layer_rtol']:g})",
             f"- first divergence: {report['first_divergence'] or 'none'}", ""]
    worst = sorted(report["layers"], key=lambda r: -(r["rel_diff"] or 0.0))[:10]
    if worst:
        lines += ["Layers furthest apart:", "", "| layer | shape | max abs diff | rel diff | flagged |",
                  "| --- | --- | --- | --- | --- |"]
        lines += [f"| {r['name']} | {tuple(r['shape_torch'])} | {r['max_abs_diff']:.3g} | {r['rel_diff']:.3g} | "
                  f"{'yes' if r['flagged'] else ''} |" for r in worst]
    return "\n".join(lines) + "\n"


def train_step_parity(torch_module, cell, x, y, lr=0.1, momentum=0.9, weight_decay=5e-4):
    """One SGD step (momentum, weight decay on every parameter, mean cross-entropy) in both frameworks
    from the weights they hold, on the same batch, in train mode. Returns the two losses and, for every
    BatchNorm running statistic (torch naming), the largest relative difference after the step."""
    import torch

    from msport.convert import layer_map, mindspore_to_torch
    from msport.training import ms_side

    cfg = types.SimpleNamespace(weight_decay=weight_decay, momentum=momentum, nesterov=False, lr=lr)
    torch_module.train()
    optimizer = torch.optim.SGD(torch_module.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    optimizer.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(torch_module(torch.from_numpy(x)), torch.from_numpy(y).long())
    loss.backward()
    optimizer.step()
    torch_loss = float(loss.detach())

    cell.set_train(True)
    step = ms_side.Stepper(cell, ms_side.build_optimizer(cfg, cell), cfg)
    loss_sum, _ = step(x, y.astype(np.int32), lr)
    ms_loss = loss_sum / len(y)

    ms_state, _ = mindspore_to_torch(OrderedDict((p.name, p.asnumpy()) for p in cell.get_parameters()),
                                     layers=layer_map(cell))
    stats = OrderedDict()
    torch_state = torch_module.state_dict()
    for name, value in torch_state.items():
        if not name.endswith("running_mean") or name not in ms_state:
            continue
        layer = name[:-len("running_mean")]
        var = torch_state[layer + "running_var"].detach().numpy().astype(np.float64)
        # a mean is judged against its channel's spread (a BatchNorm after a BatchNorm has means of ~1e-9, pure
        # rounding, whose relative difference means nothing); a variance against itself
        std = np.sqrt(var + 1e-5)
        mean_diff = np.abs(value.detach().numpy().astype(np.float64) - ms_state[name]) / std
        var_diff = np.abs(var - ms_state[layer + "running_var"]) / np.maximum(var, 1e-12)
        stats[layer + "running_mean"] = float(mean_diff.max())
        stats[layer + "running_var"] = float(var_diff.max())
    return OrderedDict([("torch_loss", torch_loss), ("ms_loss", ms_loss),
                        ("loss_rel_diff", abs(torch_loss - ms_loss) / max(abs(torch_loss), 1e-30)),
                        ("running_stats_max_rel_diff", max(stats.values()) if stats else 0.0),
                        ("running_stats", stats)])


__all__ = ["parity_markdown", "parity_report", "train_step_parity"]
