"""Run each paired MindSpore layer on the input its torch twin received, and say why it differs.

Down a network every output after a mistake differs, so an output that
differs only says "here or earlier". Replaying a layer on torch's own input
(captured in the torch run) separates the error a layer makes from the error it
inherits: a layer that differs in isolation computes something else. The
culprits are the paired calls that differ in isolation while no paired call
inside them does, in forward order; a block whose layers all match alone but
which differs alone computes something between its layers (a functional op,
the wiring).

A call is replayed only where the two sides received inputs of one form (the
same number of arrays, of the same shapes and kinds): a torchvision DenseNet
layer takes a list of feature maps where mindcv's takes their concatenation,
and feeding one the other's input would measure the feeding, not the layer.

Why, where msport knows: for a culprit whose type the registry holds, the
audit's reading of that layer (:mod:`msport.diagnose.audit`: the entry's
``attrs`` read off both layers, the padding, a probe on the same input) is the
reason, e.g. ``MaxPool2d: torch padding 1, MindSpore pad_mode same``.
"""

from collections import OrderedDict

import numpy as np

from msport import registry
from msport.diagnose.alignment import LOOSE
from msport.diagnose.capture import _first_tensor, _MindSporeState
from msport.tolerances import norm_rel


def replay(ms_cell, alignment, torch_capture, ms_capture, *, train_mode=False, skip=frozenset()):
    """``{torch call: {"alone_rel_diff": float or None, "alone_note": str or None}}`` for every paired
    call with a torch output; ``skip``: torch module names not to replay (train-mode random layers)."""
    from msport._mindspore import ms

    cells = OrderedDict((n, c) for n, c in ms_cell.cells_and_names() if n)
    out = OrderedDict()
    saved = _MindSporeState(ms_cell, train_mode=True)  # keep every value: a train-mode BatchNorm moves
    try:
        ms.set_context(mode=ms.PYNATIVE_MODE)
        ms_cell.set_train(train_mode)
        for t_call, m_call in alignment.pairs.items():
            want = torch_capture.outputs.get(t_call)
            if want is None:
                continue
            result = out.setdefault(t_call, OrderedDict(alone_rel_diff=None, alone_note=None))
            if t_call.partition("#")[0] in skip:
                result["alone_note"] = "not replayed: draws random masks in train mode"
                continue
            given, seen = torch_capture.inputs.get(t_call), ms_capture.inputs.get(m_call)
            if given is None or seen is None or _form(given) != _form(seen):
                result["alone_note"] = "not replayed: the two layers receive inputs of different forms"
                continue
            cell = cells[m_call.partition("#")[0]]
            entry = registry.entry_for_ms(cell)
            try:
                got = cell(*[_to_ms(v, ms) for v in given])
            except Exception as exc:  # noqa: BLE001 - a layer that rejects its twin's input is a finding
                first = str(exc).strip().splitlines()
                result["alone_rel_diff"] = float("inf")
                result["alone_note"] = (f"fails on torch's input ({type(exc).__name__}: {first[0] if first else ''})")
                continue
            got = _first_tensor(got, lambda v: isinstance(v, ms.Tensor), entry.output_index if entry else None)
            if got is None:
                result["alone_note"] = "not replayed: no tensor output"
                continue
            got = got.asnumpy()
            result["alone_rel_diff"] = norm_rel(want, got) if got.shape == want.shape else float("inf")
            if got.shape != want.shape:
                result["alone_note"] = f"output shape {tuple(got.shape)} vs torch {tuple(want.shape)} on torch's input"
    finally:
        saved.restore()
    return out


def _form(value):
    if isinstance(value, (tuple, list)):
        return ("seq", tuple(_form(v) for v in value))
    if isinstance(value, np.ndarray):
        return ("array", tuple(value.shape), value.dtype.kind)
    return ("value", repr(value))


def _to_ms(value, ms):
    if isinstance(value, (tuple, list)):
        return type(value)(_to_ms(v, ms) for v in value)
    if isinstance(value, np.ndarray):
        return ms.Tensor(np.array(value))
    return value


def culprits(alignment, alone, spans, rtol):
    """Torch calls that differ alone with no paired call inside them that differs alone, forward order."""
    differing = [c for c, r in alone.items() if r["alone_rel_diff"] is not None and r["alone_rel_diff"] > rtol
                 and alignment.how.get(c) != LOOSE]

    def inside(inner, outer):
        return spans[outer][0] < spans[inner][0] and spans[inner][1] < spans[outer][1]

    return [c for c in differing if not any(inside(o, c) for o in differing if o != c)]


def reason(t_call, m_call, torch_module, ms_cell, pairing, torch_capture, seed=0):
    """``(text, found)``: what the audit reads off the two layers of a culprit, and whether that reading finds a
    difference (a setting, a probe on the same input); ``(None, None)`` for a type the registry does not hold."""
    from msport.diagnose.audit.layers import layer_record

    name, ms_name = t_call.partition("#")[0], m_call.partition("#")[0]
    layer = dict(torch_module.named_modules())[name]
    entry = registry.entry_for_torch(layer)
    if entry is None:
        return None, None
    given = torch_capture.inputs.get(t_call) or ()
    first = given[0] if given and isinstance(given[0], np.ndarray) else None
    ms_layer = dict(ms_cell.cells_and_names())[ms_name]
    record = layer_record(name, entry, layer, ms_name, ms_layer, pairing, first, np.random.default_rng(seed))
    torch_parts, ms_parts = record["torch"].split(", "), record["mindspore"].split(", ")
    both = set(torch_parts) & set(ms_parts)  # what agrees is no reason: "bias False" on both sides
    torch_text = ", ".join(p for p in torch_parts if p not in both) or "same settings"
    ms_text = ", ".join(p for p in ms_parts if p not in both) or "same settings"
    found = f"{entry.name}: torch {torch_text}, MindSpore {ms_text}"
    return (f"{found}; {record['reason']}" if record["reason"] else found), bool(record["flagged"])


__all__ = ["culprits", "reason", "replay"]
