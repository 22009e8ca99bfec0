"""How much of PyTorch's Core ATen opset the op table maps, and why the rest is not.

Core ATen is the closed set of ops every ``torch.export`` graph can be decomposed into (the ops
tagged ``torch.Tag.core``: 193 overloads in torch 2.14.1). :func:`coverage` sorts them into mapped
and not mapped; every op not mapped gets a reason from :data:`REASONS`, a rule table (first
match wins) rather than prose, so a new torch release's ops are classified, or named by
``tests/test_port_ops.py`` when no rule fits. ``python -m msport.port.coverage`` prints the table
that docs/port.md shows.
"""

import re
from collections import OrderedDict

import torch

from msport.port import aten_ops  # noqa: F401 - fills the table
from msport.port.ops import OPS, lookup

#: (pattern over the overload name, reason); the first match names why an op is not mapped.
REASONS = [
    (r"_backward|backward", "a gradient op: an inference export never holds one, MindSpore differentiates the forward"),
    ((r"^aten\.(rand|randn|randperm|bernoulli|normal|uniform|exponential|geometric|cauchy|log_normal|multinomial"
     r"|native_dropout_backward)"), "a random draw: MindSpore's generator differs, so no parity can be shown"),
    (r"_\.|copy_|^aten\.(resize|set_)", "in place: the functional graph export writes has no mutation"),
    (r"^aten\._native_batch_norm_legit\.default", "updates the running statistics in place: an eval-mode export "
                                                  "holds _native_batch_norm_legit_no_training (mapped)"),
    (r"\.out$", "an out= variant: the functional graph export writes holds the functional overload (mapped)"),
    (r"^aten\.(_local_scalar_dense|item)", "a tensor's value as a Python number (.item()): what follows depends on "
                                         "the data, GRAPH_MODE needs static shapes"),
    (r"^aten\.(as_strided|_unsafe_index|sym_is_contiguous)",
     "memory layout: no meaning for MindSpore tensors"),
    (r"^aten\.(nonzero|masked_select|unique|_unique)", "data-dependent output shape: GRAPH_MODE needs static shapes"),
    (r"^aten\.sym_(numel|stride|storage_offset)", "export writes sizes as sym_size.int and its products: "
                                                   "never seen in a graph"),
    (r"", "not mapped yet"),
]


def core_aten_ops():
    """Every Core ATen overload name (``aten.add.Tensor``), sorted: every registered ATen schema whose op
    carries ``torch.Tag.core`` (``dir(torch.ops.aten)`` would list only the ops loaded so far)."""
    names = set()
    for schema in torch._C._jit_get_all_schemas():
        if not schema.name.startswith("aten::"):
            continue
        packet = getattr(torch.ops.aten, schema.name[len("aten::"):], None)
        try:
            op = getattr(packet, schema.overload_name or "default")
        except AttributeError:
            continue
        if torch.Tag.core in op.tags:
            names.add(str(op))
    return sorted(names)


def reason(name):
    return next(text for pattern, text in REASONS if re.search(pattern, name))


def known_reason(name):
    """Why ``name`` (``aten._local_scalar_dense.default``) is not mapped, where a rule says more than
    "not mapped yet"; None otherwise. The port's unsupported-op report adds it."""
    text = reason(name)
    return None if text == REASONS[-1][1] else text


def coverage():
    """``(mapped, not_mapped)``: Core ATen names the table maps (-> entry name), and the rest (-> reason)."""
    mapped, missing = OrderedDict(), OrderedDict()
    for name in core_aten_ops():
        op = lookup(_overload(name))
        if op is not None:
            mapped[name] = op.name
        else:
            missing[name] = reason(name)
    return mapped, missing


def _overload(name):
    _aten, packet, overload = name.split(".")
    return getattr(getattr(torch.ops.aten, packet), overload)


def kept_ops():
    """The ATen overloads export must not decompose: every one the table maps."""
    out = []
    for op in OPS:
        for target in op.targets:
            if target.startswith("aten."):
                try:
                    out.append(_overload(target))
                except AttributeError:
                    continue
    return out


def markdown():
    mapped, missing = coverage()
    total = len(mapped) + len(missing)
    lines = [f"{len(mapped)} of {total} Core ATen ops mapped (torch {torch.__version__.split('+')[0]}).", "",
             "| not mapped | reason |", "| --- | --- |"]
    lines += [f"| `{name}` | {why} |" for name, why in missing.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")

__all__ = ["REASONS", "core_aten_ops", "coverage", "kept_ops", "known_reason", "markdown", "reason"]
