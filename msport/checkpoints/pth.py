"""torch ``.pth`` files read without torch, through an unpickler that can build nothing but tensors.

``torch.save`` writes a zip: ``<stem>/data.pkl`` is a pickle of the state_dict
whose tensors are ``torch._utils._rebuild_tensor_v2(storage, offset, size,
stride, ...)`` calls, each storage a persistent id ``("storage", torch.FloatStorage,
key, location, numel)`` naming the uncompressed member ``<stem>/data/<key>``.
:class:`_Unpickler` resolves only the globals such a file needs (the rebuild
functions, storage classes, ``OrderedDict``) and refuses every other one, as
``torch.load(weights_only=True)`` does: pickled code is never run. Each tensor
becomes a :class:`PthEntry` that knows its bytes' offset in the zip and reads
nothing until asked, so ``compare-ckpt`` needs no torch and ``convert`` streams.

Files this reader does not take (torch's pre-1.6 legacy format, a compressed
zip, a big-endian file) go through ``torch.load(weights_only=True)`` instead.
"""

import collections
import pickle
import struct
import zipfile

import numpy as np

from msport.errors import first_line
from msport.checkpoints.tensors import ArrayEntry, CheckpointError, Entry, FileEntry, dtype_from, human_bytes, \
    raw_dtype

#: Keys under which training scripts nest the state_dict (pytorch-cifar saves ``{'net': ..., 'acc': ...}``).
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net")


class _Storage:
    def __init__(self, dtype, key, numel):
        self.dtype, self.key, self.numel = dtype, key, numel


class _StorageType:
    def __init__(self, name):
        self.name = name


class _Tensor:
    """What ``_rebuild_tensor_v2`` returns here: a view of a storage, resolved into an Entry later."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


def _rebuild_tensor(storage, offset, size, stride, *_):
    return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, *_):
    return data


class NotPlainPickle(Exception):
    """The file needs torch's own loader (a legacy or unusual layout), not a refusal."""


#: The only globals a state_dict's pickle may name (besides torch's storage classes).
_ALLOWED = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class _Unpickler(pickle.Unpickler):

    def __init__(self, handle, path):
        super().__init__(handle)
        self.path = path

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name.endswith("Storage"):
            return _StorageType(name)
        if module == "torch._utils" and name.startswith("_rebuild_"):
            raise NotPlainPickle(name)  # sparse, quantized, ...: torch's own loader decides
        raise CheckpointError(f"{self.path}: not a loadable torch checkpoint: it holds pickled Python objects "
                              f"besides tensors ({module}.{name}), which msport never runs (weights_only); "
                              f"re-save its state_dict")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise NotPlainPickle(repr(pid)[:80])
        dtype = dtype_from(pid[1].name, "torch", self.path)
        return _Storage(dtype, str(pid[2]), int(pid[4]))


class PthEntry(Entry):
    """A tensor of a .pth: a view (offset, size, stride) of a storage at ``data_offset`` in the file."""

    def __init__(self, name, view, path, data_offset, storage_bytes):
        dtype = view.storage.dtype
        super().__init__(name, dtype, view.size, str(path))
        self.view, self.path, self.data_offset, self.storage_bytes = view, path, data_offset, storage_bytes
        itemsize = raw_dtype(dtype).itemsize
        if view.storage.numel * itemsize > storage_bytes:
            raise CheckpointError(f"{path} is damaged: the storage of {name} is shorter than it says")
        last = view.offset + sum((n - 1) * s for n, s in zip(view.size, view.stride)) if self.size else -1
        if view.offset < 0 or any(s < 0 for s in view.stride) or last >= view.storage.numel:
            raise CheckpointError(f"{path} is damaged: tensor {name} reaches past the end of its storage")
        self.contiguous = self.size == 0 or view.stride == _c_strides(view.size)

    def _flat(self):
        if self.contiguous:
            return self._as_file_entry()._flat()
        itemsize = raw_dtype(self.dtype).itemsize
        storage = FileEntry(self.name, self.dtype, (self.view.storage.numel,), self.path,
                            [(self.data_offset, self.view.storage.numel * itemsize)])._flat()
        strided = np.lib.stride_tricks.as_strided(storage[self.view.offset:], self.view.size,
                                                  [s * itemsize for s in self.view.stride])
        return np.ascontiguousarray(strided).reshape(-1)

    def chunks(self, size=8 << 20):
        if self.contiguous:
            return self._as_file_entry().chunks(size)
        return super().chunks(size)

    def located(self):
        return self._as_file_entry().located() if self.contiguous else None

    def _as_file_entry(self):
        start = self.data_offset + self.view.offset * raw_dtype(self.dtype).itemsize
        return FileEntry(self.name, self.dtype, self.shape, self.path, [(start, self.nbytes)])

    def _why_large(self):
        if self.contiguous:
            return ""
        return (f" (a view of {self.view.storage.numel} stored elements, {human_bytes(self.storage_bytes)}, "
                f"with strides {list(self.view.stride)}: an expand()ed tensor; save it with .clone())")


def _c_strides(size):
    strides, step = [], 1
    for n in reversed(size):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def _data_offsets(handle, archive):
    """``{member name: offset of its data}`` from each member's local header (torch stores, never deflates)."""
    offsets = {}
    for info in archive.infolist():
        if info.compress_type != zipfile.ZIP_STORED:
            raise NotPlainPickle("compressed")
        handle.seek(info.header_offset)
        header = handle.read(30)
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            raise CheckpointError(f"{handle.name}: not a loadable torch checkpoint (a damaged zip)")
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        offsets[info.filename] = (info.header_offset + 30 + name_length + extra_length, info.file_size)
    return offsets


def read_pth(path):
    """``{name: Entry}`` of a torch checkpoint's state_dict (unwrapped from ``{'net': ...}`` and the like)."""
    path = str(path)
    try:
        obj = _read_zip(path)
    except NotPlainPickle:
        obj = _torch_load(path)
    if isinstance(obj, dict):
        for key in WRAPPER_KEYS:
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, Entry) for v in obj.values()):
        found = type(obj).__name__ if not isinstance(obj, dict) else \
            f"a dict holding {type(next(v for v in obj.values() if not isinstance(v, Entry))).__name__}"
        raise CheckpointError(f"{path}: expected a state_dict (name -> tensor), found {found}")
    odd = [k for k in obj if not isinstance(k, str)]
    if odd:
        raise CheckpointError(f"{path}: a state_dict's keys are parameter names, found {type(odd[0]).__name__} "
                              f"key {odd[0]!r}")
    if not obj:
        raise CheckpointError(f"{path}: the state_dict holds no tensors")
    return collections.OrderedDict(obj)


def _read_zip(path):
    if not zipfile.is_zipfile(path):
        raise NotPlainPickle("legacy")
    try:
        with open(path, "rb") as handle, zipfile.ZipFile(handle) as archive:
            names = archive.namelist()
            pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(pickles) != 1:
                raise CheckpointError(f"{path}: not a loadable torch checkpoint (a zip without one data.pkl)")
            root = pickles[0][:-len("data.pkl")]
            if root + "byteorder" in names and archive.read(root + "byteorder").strip() != b"little":
                raise NotPlainPickle("big-endian")
            offsets = _data_offsets(handle, archive)
            with archive.open(pickles[0]) as data:
                obj = _Unpickler(data, path).load()
    except (CheckpointError, NotPlainPickle):
        raise
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, TypeError, AttributeError,
            KeyError, IndexError, struct.error) as exc:
        raise CheckpointError(f"{path}: not a loadable torch checkpoint ({type(exc).__name__}: {exc})"[:300]) \
            from exc
    return _resolve(obj, path, root, offsets)


def _resolve(obj, path, root, offsets):
    """Every ``_Tensor`` (in dicts at any depth) made a :class:`PthEntry` named by its key."""
    def make(name, view):
        member = f"{root}data/{view.storage.key}"
        if member not in offsets:
            raise CheckpointError(f"{path} is damaged: storage {view.storage.key} is missing from the zip")
        offset, length = offsets[member]
        return PthEntry(name, view, path, offset, length)

    return _named(obj, _Tensor, make)


def _named(obj, kind, make):
    if isinstance(obj, dict):
        return type(obj)((k, make(k, v) if isinstance(v, kind) else _named(v, kind, make)) for k, v in obj.items())
    return obj


def _torch_load(path):
    import warnings

    import torch

    try:
        with warnings.catch_warnings():  # e.g. "pickle protocol 4": noise beside the one-line verdict
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{path}: not a loadable torch checkpoint: it holds pickled Python objects besides "
                              f"tensors, which msport never runs (weights_only); re-save its state_dict") from exc
    except Exception as exc:  # torch raises several types for bad files
        raise CheckpointError(f"{path}: not a loadable torch checkpoint ({type(exc).__name__}: "
                              f"{first_line(exc)})") from exc
    return _from_torch(obj)


def _from_torch(obj):
    import torch

    def make(name, tensor):
        tensor = tensor.detach().cpu().contiguous()
        if tensor.dtype == torch.bfloat16:
            return ArrayEntry(name, tensor.view(torch.int16).numpy().view(np.uint16), "bfloat16")
        return ArrayEntry(name, tensor.numpy())

    return _named(obj, torch.Tensor, make)
