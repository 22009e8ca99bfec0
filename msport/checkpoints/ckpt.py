"""MindSpore ``.ckpt`` files, read and written without MindSpore.

The format is MindSpore's ``checkpoint.proto`` (proto2)::

    message Checkpoint  { repeated Value value = 1; }
    message Value       { required string tag = 1; oneof value { TensorProto tensor = 2; MapTensorProto maptensor = 3; } }
    message TensorProto { repeated int64 dims = 1; required string tensor_type = 2; required bytes tensor_content = 3; }

MindSpore writes a tensor over 512 MB as several records with the same tag, and
its loader joins consecutive records of one tag; a 0-d tensor has no dims, and
``crc_check=True`` appends ``b"crc_num"`` and a 10-byte big-endian CRC-32 of the
records. Decoding the few fields by hand keeps ``compare-ckpt`` and ``convert``
free of MindSpore's start-up, and lets both stream: the reader notes where each
tensor's bytes are and reads none of them; the writer copies each tensor in
pieces while its integrity CRC is taken.
"""

import mmap
import os
import zlib
from collections import OrderedDict

import numpy as np

from msport.checkpoints import integrity
from msport.checkpoints.stream import Copier
from msport.checkpoints.tensors import ArrayEntry, CheckpointError, FileEntry, dtype_from, spelling

#: MindSpore's own slice size (``serialization.SLICE_SIZE``, in KB): one record stays under protobuf's 2 GB.
SLICE_BYTES = 512 * 1024 * 1024
_CRC_TRAILER = b"crc_num"


def _varint(buf, pos, end, path):
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise CheckpointError(f"{path}: not a loadable MindSpore checkpoint (a record is cut or malformed)")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf, pos, end, path):
    """``(field number, wire type, value or (start, stop))`` of one message's fields."""
    while pos < end:
        key, pos = _varint(buf, pos, end, path)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos, end, path)
            yield number, wire, value
        elif wire == 2:
            length, pos = _varint(buf, pos, end, path)
            if pos + length > end:
                raise CheckpointError(f"{path} is cut short: a record ends past the end of the file")
            yield number, wire, (pos, pos + length)
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise CheckpointError(f"{path}: not a loadable MindSpore checkpoint (protobuf wire type {wire})")


def _tensor(buf, start, stop, path, tag):
    dims, dtype, content = [], None, None
    for number, wire, value in _fields(buf, start, stop, path):
        if number == 1 and wire == 0:
            dims.append(value - (1 << 64) if value >= 1 << 63 else value)
        elif number == 1 and wire == 2:  # packed dims
            pos = value[0]
            while pos < value[1]:
                dim, pos = _varint(buf, pos, value[1], path)
                dims.append(dim)
        elif number == 2 and wire == 2:
            dtype = bytes(buf[value[0]:value[1]]).decode()
        elif number == 3 and wire == 2:
            content = value
    if dtype is None or content is None or any(d < 0 for d in dims):
        raise CheckpointError(f"{path}: not a loadable MindSpore checkpoint (record {tag!r} is malformed)")
    return dims, dtype, content


def read_ckpt(path):
    """``(entries, strings, record)`` of a .ckpt: ``{name: FileEntry}`` in file order, the string values
    MindSpore stores beside tensors, and msport's integrity record (an int64 array) or None."""
    path = str(path)
    size = os.path.getsize(path)
    if size == 0:
        raise CheckpointError(f"{path}: the checkpoint holds no tensors (an empty file)")
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        end = size
        if size > 17 and buf[size - 17:size - 10] == _CRC_TRAILER:
            end = size - 17
            if zlib.crc32(buf[:end]) != int.from_bytes(buf[end + 7:size], "big"):
                raise CheckpointError(f"{path} is damaged: MindSpore's crc_num does not match its records")
        records = OrderedDict()  # tag -> [dims, dtype, pieces]
        previous = None
        for number, wire, (start, stop) in _fields(buf, 0, end, path):
            if number != 1 or wire != 2:
                raise CheckpointError(f"{path}: not a loadable MindSpore checkpoint (unexpected field {number})")
            tag, tensor = None, None
            for inner, inner_wire, value in _fields(buf, start, stop, path):
                if inner == 1 and inner_wire == 2:
                    tag = bytes(buf[value[0]:value[1]]).decode("utf-8", "replace")
                elif inner == 2 and inner_wire == 2:
                    tensor = value
                elif inner == 3:
                    raise CheckpointError(f"{path}: record {tag!r} is a MindSpore MapParameter, which msport does "
                                          f"not convert")
            if tag is None or tensor is None:
                raise CheckpointError(f"{path}: not a loadable MindSpore checkpoint (a record without a tensor)")
            dims, dtype, (c0, c1) = _tensor(buf, tensor[0], tensor[1], path, tag)
            if tag == previous:
                records[tag][2].append((c0, c1 - c0))
            elif tag in records:
                raise CheckpointError(f"{path}: tensor {tag!r} appears twice")
            else:
                records[tag] = [dims, dtype, [(c0, c1 - c0)]]
            previous = tag
        strings = OrderedDict()
        entries = OrderedDict()
        for tag, (dims, dtype, pieces) in records.items():
            if dtype == "str":
                data = b"".join(bytes(buf[o:o + n]) for o, n in pieces)
                strings[tag] = str(np.frombuffer(data, f"<U{len(data) // 4}")[0]) if data else ""
                continue
            name = dtype_from(dtype, "ckpt", f"{path}: {tag}")
            entries[tag] = FileEntry(tag, name, _shape(dims, pieces, name), path, pieces)
    if not entries and not strings:
        raise CheckpointError(f"{path}: the checkpoint holds no tensors")
    record = entries.pop(integrity.INTEGRITY_KEY, None)
    return entries, strings, (record.raw() if record is not None else None)


def _shape(dims, pieces, dtype):
    """MindSpore writes a 0-d tensor with no dims; msport writes a (0,) tensor as dims [0] and no bytes."""
    if dims == [0] and sum(n for _, n in pieces) > 0:  # MindSpore's loader reads dims [0] as 0-d too
        return ()
    return tuple(dims)


def _key(number, wire):
    return _encode_varint(number << 3 | wire)


def _encode_varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _record_header(name, dtype, shape, content_length):
    """The bytes of one record up to its tensor content (which follows, ``content_length`` bytes)."""
    tag = name.encode()
    type_bytes = spelling(dtype, "ckpt").encode()
    dims = b"".join(_key(1, 0) + _encode_varint(d) for d in shape)
    tensor_head = dims + _key(2, 2) + _encode_varint(len(type_bytes)) + type_bytes \
        + _key(3, 2) + _encode_varint(content_length)
    tensor_length = len(tensor_head) + content_length
    value_head = _key(1, 2) + _encode_varint(len(tag)) + tag + _key(2, 2) + _encode_varint(tensor_length)
    return _key(1, 2) + _encode_varint(len(value_head) + tensor_length) + value_head + tensor_head


def write_ckpt(tmp, entries):
    """Write ``entries`` (a list of :class:`Entry`) to the file ``tmp``, msport's integrity record first."""
    digest = integrity.Digest()
    with open(tmp, "wb", buffering=0) as out, Copier(out) as copier:
        mark = ArrayEntry(integrity.INTEGRITY_KEY, integrity.placeholder())
        copier.write(_record_header(mark.name, mark.dtype, mark.shape, mark.nbytes))
        mark_at = out.tell()
        copier.write(mark.array.tobytes())
        for entry in entries:
            checksum = digest.start(entry)
            total = entry.nbytes
            for start in range(0, max(total, 1), SLICE_BYTES):
                length = min(SLICE_BYTES, total - start)
                copier.write(_record_header(entry.name, entry.dtype, entry.shape, length))
                checksum = copier.copy(entry, checksum, start, length)
            digest.add(entry, checksum)
        out.seek(mark_at)
        copier.write(digest.record().tobytes())
