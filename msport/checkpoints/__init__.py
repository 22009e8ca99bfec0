"""Checkpoint files: reading and writing ``.pth``, ``.ckpt`` and ``.safetensors``, and their integrity.

What a file holds is opened lazily (:func:`open_checkpoint`): names, dtypes and
shapes are read from its header, the bytes only when a tensor is asked for, so
a checkpoint of any size can be listed, compared or converted one tensor at a
time. No framework is imported to read any of the three formats, nor to write
a ``.ckpt`` or ``.safetensors``; writing a ``.pth`` uses ``torch.save``.

* ``.pth``/``.pt``/``.bin``: torch's zip, through an unpickler that builds
  tensors and nothing else (:mod:`.pth`); pytorch-cifar's ``{'net': ...}``
  wrappers are unwrapped.
* ``.ckpt``: MindSpore's protobuf (:mod:`.ckpt`).
* ``.safetensors``, one file or a sharded ``*.safetensors.index.json``
  (:mod:`.safetensors`), in either side's naming: the metadata's ``format``
  says which (``pt`` torch, ``ms`` MindSpore), else the names do.

dtypes stay as stored, bfloat16 and float16 included (as raw bits where numpy
has no type). Every ``.ckpt`` and ``.safetensors`` msport writes carries its
integrity record (:mod:`.integrity`), checked whenever one is opened.
"""

import os
import re
from collections import OrderedDict

import numpy as np

from msport import registry
from msport.checkpoints import integrity
from msport.checkpoints.ckpt import read_ckpt, write_ckpt
from msport.checkpoints.pth import read_pth
from msport.checkpoints.safetensors import INDEX_SUFFIX, integrity_record, read_safetensors, write_safetensors
from msport.checkpoints.tensors import ArrayEntry, CheckpointError, Entry, raw_dtype
from msport.files import atomic_write

INTEGRITY_KEY = integrity.INTEGRITY_KEY
TORCH_SUFFIXES = (".pth", ".pt", ".bin")
#: Names MindSpore optimizers and training wrappers add to a training checkpoint.
MS_OPTIMIZER_STATE = re.compile(
    r"^(moments|accum|moment1|moment2|vhat|stat|mean_grad|mean_square|global_step|"
    r"learning_rate|momentum|weight_decay|beta1_power|beta2_power|scale_sense|"
    r"current_iterator_step|last_overflow_iterator_step|epoch_num|step_num|"
    r"epoch)(\.|$)"  # epoch: the finished-epoch counter msport's own resume.ckpt appends
)
_SAFETENSORS_KINDS = {"pt": "torch", "torch": "torch", "ms": "mindspore", "mindspore": "mindspore"}


def file_format(path):
    """``'pth'``, ``'ckpt'`` or ``'safetensors'`` by the name's ending; raises for anything else."""
    name = str(path).lower()
    if name.endswith((INDEX_SUFFIX, ".safetensors")):
        return "safetensors"
    ext = os.path.splitext(name)[1]
    if ext in TORCH_SUFFIXES:
        return "pth"
    if ext == ".ckpt":
        return "ckpt"
    raise CheckpointError(f"{path}: unknown checkpoint type {ext!r}; use .pth/.pt for torch, .ckpt for MindSpore, "
                          f"or .safetensors (or a sharded {INDEX_SUFFIX}) for either")


def looks_mindspore(names):
    """Whether parameter names are MindSpore's: a name only MindSpore's layers use, or optimizer state."""
    only_ms = {p.ms for e in registry.entries() for p in e.params if p.ms != p.torch}
    return any(n.rpartition(".")[2] in only_ms or MS_OPTIMIZER_STATE.match(n) for n in names)


class Checkpoint:
    """An opened checkpoint: ``entries`` (``{name: Entry}``, file order), ``kind`` (``'torch'`` or
    ``'mindspore'``: whose names it holds), ``format``, and ``strings`` (MindSpore's string values)."""

    def __init__(self, path, fmt, kind, entries, strings=None, record=None):
        self.path, self.format, self.kind, self.entries = str(path), fmt, kind, entries
        self.strings, self.record = strings or OrderedDict(), record

    def verify(self):
        """Check msport's integrity record, where the file has one (every file msport wrote)."""
        if self.record is not None:
            integrity.verify(self.path, self.record, list(self.entries.values()))

    def arrays(self):
        """``{name: np.ndarray}`` of every tensor, for arithmetic (bfloat16 widened to float32)."""
        return OrderedDict((name, entry.numpy()) for name, entry in self.entries.items())


def open_checkpoint(path, *, verify=True):
    """A :class:`Checkpoint` of ``path``; with ``verify``, a file msport wrote is checked against its record."""
    fmt = file_format(path)
    require_file(path)
    if fmt == "pth":
        checkpoint = Checkpoint(path, fmt, "torch", read_pth(path))
    elif fmt == "ckpt":
        entries, strings, record = read_ckpt(path)
        checkpoint = Checkpoint(path, fmt, "mindspore", entries, strings, record)
    else:
        entries, metadata = read_safetensors(path)
        if not entries:
            raise CheckpointError(f"{path}: the checkpoint holds no tensors")
        kind = _SAFETENSORS_KINDS.get(metadata.get("format"))
        kind = kind or ("mindspore" if looks_mindspore(entries) else "torch")
        checkpoint = Checkpoint(path, fmt, kind, entries, record=integrity_record(metadata))
    if verify:
        checkpoint.verify()
    return checkpoint


def load_any(path):
    """``(kind, {name: np.ndarray})`` of any checkpoint file (integrity checked; bfloat16 as float32)."""
    checkpoint = open_checkpoint(path)
    return checkpoint.kind, checkpoint.arrays()


def as_entries(tensors):
    """``[Entry]`` from ``{name: Entry or array}`` (0-d shapes kept; a bfloat16 torch tensor's bits kept)."""
    out = []
    for name, value in tensors.items():
        if isinstance(value, Entry):
            out.append(value if value.name == name else value.renamed(name))
        elif hasattr(value, "detach") and str(value.dtype) == "torch.bfloat16":
            import torch

            out.append(ArrayEntry(name, value.detach().cpu().view(torch.int16).numpy().view(np.uint16), "bfloat16"))
        else:
            from msport.numeric import as_numpy

            out.append(ArrayEntry(name, as_numpy(value)))
    return out


def save_checkpoint(tensors, path, kind=None):
    """Write ``{name: Entry or array}`` to ``path`` in the format its name says, atomically.

    ``kind`` (``'torch'`` or ``'mindspore'``) is the naming, recorded in a
    .safetensors file's metadata (a .pth is torch's, a .ckpt MindSpore's).
    An empty checkpoint is refused; zero-element tensors are kept.
    """
    fmt = file_format(path)
    if str(path).endswith(INDEX_SUFFIX):
        raise CheckpointError(f"{path}: msport writes one .safetensors file, not a sharded index")
    entries = as_entries(tensors)
    if not entries:
        raise CheckpointError(f"refusing to write {path}: there are no tensors to save (an empty checkpoint)")
    if fmt == "ckpt":
        atomic_write(path, lambda tmp: write_ckpt(tmp, entries))
    elif fmt == "safetensors":
        kind = kind or ("mindspore" if looks_mindspore([e.name for e in entries]) else "torch")
        atomic_write(path, lambda tmp: write_safetensors(tmp, entries, "ms" if kind == "mindspore" else "pt"))
    else:
        atomic_write(path, lambda tmp: _torch_save(entries, tmp))


def _torch_save(entries, tmp):
    import torch

    tensors = OrderedDict()
    for entry in entries:
        raw = entry.raw()
        tensor = torch.from_numpy(raw.view(np.int16) if entry.dtype == "bfloat16" else raw)
        tensors[entry.name] = tensor.view(torch.bfloat16) if entry.dtype == "bfloat16" else tensor
    torch.save(tensors, tmp)


def require_file(path):
    if os.path.isdir(path):
        raise CheckpointError(f"{path} is a folder; give a checkpoint file")
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file")


# --- what the trainers and the port read and write ---------------------------------------------------

def save_ms_checkpoint(arrays, path):
    """Write MindSpore-named ``{name: array}`` as a .ckpt (or .safetensors) with msport's integrity record."""
    save_checkpoint(arrays, path, "mindspore")


def save_torch_state(state, path):
    """Write a torch-named ``{name: array or tensor}`` as a .pth (or .safetensors)."""
    save_checkpoint(state, path, "torch")


def load_ms_params(path):
    """A MindSpore checkpoint as ``{name: np.ndarray}`` (model and optimizer state alike)."""
    return open_checkpoint(path).arrays()


def load_torch_state(path):
    """A torch checkpoint as ``{name: np.ndarray}``; a file that needs pickled code is refused."""
    return open_checkpoint(path).arrays()


def load_ms_checkpoint(path):
    """``{name: mindspore.Parameter}`` of a checkpoint (string values as ``str``), its integrity checked,
    each tensor in its stored dtype (bfloat16 too)."""
    from msport._mindspore import ms

    checkpoint = open_checkpoint(path)
    params = OrderedDict()
    for name, entry in checkpoint.entries.items():
        if entry.dtype == "bfloat16":
            tensor = ms.Tensor(entry.numpy()).astype(ms.bfloat16)  # float32 holds bfloat16 exactly
        else:
            tensor = ms.Tensor(entry.raw())
        params[name] = ms.Parameter(tensor, name=name)
    params.update(checkpoint.strings)
    return params


__all__ = ["Checkpoint", "CheckpointError", "Entry", "ArrayEntry", "INTEGRITY_KEY", "MS_OPTIMIZER_STATE",
           "TORCH_SUFFIXES", "file_format", "looks_mindspore", "open_checkpoint", "load_any", "as_entries",
           "save_checkpoint", "save_ms_checkpoint", "save_torch_state", "load_ms_params", "load_torch_state",
           "load_ms_checkpoint", "require_file", "raw_dtype"]
