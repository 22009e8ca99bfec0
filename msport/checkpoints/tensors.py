"""Tensors as checkpoint files hold them: a name, a dtype, a shape and where the bytes are.

An :class:`Entry` reads nothing until asked, so a reader can list a checkpoint of
any size, and a writer can stream it tensor by tensor (:meth:`Entry.chunks`):
converting a file then holds one piece of one tensor at a time, never a copy of
the checkpoint.

dtypes are named once, here, in numpy's words plus ``"bfloat16"``, with each
format's own spelling beside it. numpy 1.x has no bfloat16, so a bfloat16
tensor's raw array holds its bits as uint16: reshaping, copying and writing
them keeps the bits, and :meth:`Entry.numpy` widens them to float32 (exact)
for arithmetic.
"""

import copy

import numpy as np

from msport.numeric import bf16_to_float32
from msport.errors import UserError


class CheckpointError(UserError):
    """A checkpoint file that cannot be read as one, or cannot be written."""


# canonical name: (numpy dtype of the raw bits, safetensors, MindSpore .ckpt, torch storage class)
_DTYPES = {
    "float64": ("<f8", "F64", "Float64", "DoubleStorage"),
    "float32": ("<f4", "F32", "Float32", "FloatStorage"),
    "float16": ("<f2", "F16", "Float16", "HalfStorage"),
    "bfloat16": ("<u2", "BF16", "BFloat16", "BFloat16Storage"),
    "int64": ("<i8", "I64", "Int64", "LongStorage"),
    "int32": ("<i4", "I32", "Int32", "IntStorage"),
    "int16": ("<i2", "I16", "Int16", "ShortStorage"),
    "int8": ("|i1", "I8", "Int8", "CharStorage"),
    "uint64": ("<u8", "U64", "UInt64", "UInt64Storage"),
    "uint32": ("<u4", "U32", "UInt32", "UInt32Storage"),
    "uint16": ("<u2", "U16", "UInt16", "UInt16Storage"),
    "uint8": ("|u1", "U8", "UInt8", "ByteStorage"),
    "bool": ("|b1", "BOOL", "Bool", "BoolStorage"),
}
_BY_FORMAT = [{row[i]: name for name, row in _DTYPES.items()} for i in range(4)]


def raw_dtype(dtype):
    """The numpy dtype whose items hold ``dtype``'s bits."""
    return np.dtype(_DTYPES[dtype][0])


def dtype_from(spelling, fmt, where):
    """The canonical dtype of a format's spelling (``fmt``: ``"safetensors"``, ``"ckpt"`` or ``"torch"``)."""
    name = _BY_FORMAT[("safetensors", "ckpt", "torch").index(fmt) + 1].get(spelling)
    if name is None:
        raise CheckpointError(f"{where}: tensor dtype {spelling!r} is not one msport reads "
                              f"({', '.join(sorted(_DTYPES))})")
    return name


def spelling(dtype, fmt):
    """``dtype`` as format ``fmt`` spells it (see :func:`dtype_from`)."""
    return _DTYPES[dtype][("safetensors", "ckpt", "torch").index(fmt) + 1]


def dtype_of_array(array):
    """The canonical dtype of a numpy array (a bfloat16 array from MindSpore's numpy dtype included)."""
    name = str(array.dtype)
    if name not in _DTYPES or name == "bfloat16" and array.dtype.itemsize != 2:
        raise CheckpointError(f"arrays of dtype {array.dtype} cannot be saved in a checkpoint")
    return name


def available_memory():
    """Bytes this machine can still allocate (``MemAvailable``), or None where it is not known."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def human_bytes(n):
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000


class Entry:
    """One tensor of a checkpoint. Subclasses say where its C-order bytes are (:meth:`_flat`)."""

    def __init__(self, name, dtype, shape, where=""):
        self.name, self.dtype, self.shape, self.where = name, dtype, tuple(int(d) for d in shape), where

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self):
        return self.size * raw_dtype(self.dtype).itemsize

    def _flat(self):
        raise NotImplementedError

    def raw(self):
        """The tensor's bits as a C-contiguous numpy array of :func:`raw_dtype`, shaped ``shape``."""
        self._require_memory()
        return self._flat().reshape(self.shape)

    def numpy(self):
        """The tensor's values for arithmetic: :meth:`raw`, with bfloat16 widened to float32."""
        raw = self.raw()
        return bf16_to_float32(raw) if self.dtype == "bfloat16" else raw

    def chunks(self, size=8 << 20):
        """The raw bytes in C order, as buffers of at most about ``size`` bytes (valid until the next)."""
        yield memoryview(np.ascontiguousarray(self.raw())).cast("B")

    def located(self):
        """``(path, [(offset, length)])`` where the C-order bytes lie in a file as they are, else None."""
        return None

    def with_shape(self, shape):
        """The same bytes under another shape of as many elements (a layout change that is a reshape)."""
        shape = tuple(int(d) for d in shape)
        if int(np.prod(shape, dtype=np.int64)) != self.size:
            raise CheckpointError(f"{self.name}: cannot view {self.shape} as {shape}")
        return _Reshaped(self, shape)

    def renamed(self, name):
        """The same tensor under another name (a converted key)."""
        other = copy.copy(self)
        other.name = name
        return other

    def _require_memory(self):
        free = available_memory()
        if free is not None and self.nbytes > free:
            raise CheckpointError(f"{self.where}: tensor {self.name} {self.shape} {self.dtype} needs "
                                  f"{human_bytes(self.nbytes)} in memory, more than the {human_bytes(free)} "
                                  f"available{self._why_large()}; re-save it as it is meant to be")

    def _why_large(self):
        return ""

    def __repr__(self):
        return f"<{type(self).__name__} {self.name} {self.dtype}{list(self.shape)}>"


class _Reshaped(Entry):
    def __init__(self, inner, shape):
        super().__init__(inner.name, inner.dtype, shape, inner.where)
        self.inner = inner

    def _flat(self):
        return self.inner._flat()

    def chunks(self, size=8 << 20):
        return self.inner.chunks(size)

    def located(self):
        return self.inner.located()

    def _why_large(self):
        return self.inner._why_large()


class ArrayEntry(Entry):
    """A tensor already in memory (``dtype`` names a bfloat16 array given as its uint16 bits)."""

    def __init__(self, name, array, dtype=None):
        array = np.asarray(array)
        dtype = dtype or dtype_of_array(array)
        if array.dtype.itemsize != raw_dtype(dtype).itemsize:
            raise CheckpointError(f"{name}: a {array.dtype} array cannot hold {dtype} values")
        super().__init__(name, dtype, array.shape, "memory")
        self.array = array

    def _flat(self):
        return np.ascontiguousarray(self.array).view(raw_dtype(self.dtype)).reshape(-1)


class FileEntry(Entry):
    """A tensor whose bytes lie in a file, contiguous, in one or more pieces ``[(offset, length)]``."""

    def __init__(self, name, dtype, shape, path, pieces):
        super().__init__(name, dtype, shape, str(path))
        self.path, self.pieces = path, pieces
        if sum(length for _, length in pieces) != self.nbytes:
            raise CheckpointError(f"{path} is damaged: tensor {name} {self.shape} {dtype} needs {self.nbytes} "
                                  f"bytes, the file holds {sum(n for _, n in pieces)} for it")

    def _flat(self):
        out = np.empty(self.size, raw_dtype(self.dtype))
        view, at = memoryview(out).cast("B"), 0
        with open(self.path, "rb", buffering=0) as handle:
            for offset, length in self.pieces:
                _read_into(handle, offset, view[at:at + length], self.path)
                at += length
        return out

    def located(self):
        return self.path, self.pieces

    def chunks(self, size=8 << 20):
        buffer = memoryview(bytearray(min(size, max(self.nbytes, 1))))
        with open(self.path, "rb", buffering=0) as handle:
            for offset, length in self.pieces:
                done = 0
                while done < length:
                    n = min(len(buffer), length - done)
                    _read_into(handle, offset + done, buffer[:n], self.path)
                    yield buffer[:n]
                    done += n


def _read_into(handle, offset, view, path):
    handle.seek(offset)
    got = 0
    while got < len(view):
        n = handle.readinto(view[got:])
        if not n:
            raise CheckpointError(f"{path} is cut short: a tensor's bytes end past the end of the file")
        got += n
