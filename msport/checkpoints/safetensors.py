"""``.safetensors`` files and sharded ``model.safetensors.index.json`` checkpoints, read and written directly.

A safetensors file is an 8-byte little-endian header length, a JSON header
``{name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]},
"__metadata__": {str: str}}`` and the tensors' bytes. That is simple enough to
read without the ``safetensors`` package, which would want a framework for
bfloat16; here a bfloat16 tensor stays raw bits (:mod:`msport.checkpoints.tensors`).
A sharded checkpoint's index maps each tensor to its shard file.

Which side's names a file holds is in its metadata: Hugging Face writes
``"format": "pt"``, MindSpore ``"format": "ms"``; msport writes one of those.
msport's integrity record goes into the metadata too (as a fixed-width string,
filled in once the last tensor is written), so the tensors are exactly the
model's and ``from_pretrained`` finds nothing unexpected.
"""

import json
import os
import struct
from collections import OrderedDict

import numpy as np

from msport.checkpoints import integrity
from msport.checkpoints.stream import Copier
from msport.checkpoints.tensors import CheckpointError, FileEntry, dtype_from, spelling

INDEX_SUFFIX = ".safetensors.index.json"
_HEADER_LIMIT = 100 << 20  # the safetensors package's own limit on the JSON header


def read_safetensors(path):
    """``(entries, metadata)`` of a .safetensors file or a sharded index: ``{name: FileEntry}`` in the order
    of their bytes (of the index's weight map, for shards) and the ``__metadata__`` strings."""
    path = str(path)
    if path.endswith(INDEX_SUFFIX):
        return _read_index(path)
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
        (length,) = struct.unpack("<Q", head)
        if length > min(_HEADER_LIMIT, size - 8):
            raise CheckpointError(f"{path}: not a safetensors file (a header of {length} bytes in a "
                                  f"{size}-byte file)")
        try:
            header = json.loads(handle.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{path}: not a safetensors file (its header is not JSON: {exc})") from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not a safetensors file (its header is not a JSON object)")
    metadata = header.pop("__metadata__", None) or {}
    base = 8 + length
    rows = []
    for name, info in header.items():
        try:
            begin, end = (int(x) for x in info["data_offsets"])
            dtype = dtype_from(info["dtype"], "safetensors", f"{path}: {name}")
            shape = tuple(int(d) for d in info["shape"])
        except (TypeError, KeyError, ValueError) as exc:
            raise CheckpointError(f"{path}: not a safetensors file (tensor {name!r}: {exc})") from exc
        if not 0 <= begin <= end or base + end > size:
            raise CheckpointError(f"{path} is cut short or damaged: tensor {name} lies at bytes {begin}-{end} of "
                                  f"a data section of {size - base}")
        rows.append((begin, name, FileEntry(name, dtype, shape, path, [(base + begin, end - begin)])))
    entries = OrderedDict((name, entry) for _, name, entry in sorted(rows, key=lambda row: row[0]))
    return entries, dict(metadata)


def _read_index(path):
    try:
        with open(path, encoding="utf-8") as handle:
            index = json.load(handle)
        weight_map = index["weight_map"]
        if not isinstance(weight_map, dict):
            raise TypeError("weight_map is not an object")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: not a safetensors index (a JSON object with a 'weight_map'): "
                              f"{exc}") from exc
    folder = os.path.dirname(os.path.abspath(path))
    shards, metadata = OrderedDict(), {}
    for shard in OrderedDict.fromkeys(weight_map.values()):
        shard_path = os.path.join(folder, str(shard))
        if not os.path.isfile(shard_path):
            raise CheckpointError(f"{path} names shard {shard}, which is not in {folder}")
        shards[shard], meta = read_safetensors(shard_path)
        metadata.update(meta)
    entries = OrderedDict()
    for name, shard in weight_map.items():
        if name not in shards[shard]:
            raise CheckpointError(f"{path} puts {name} in {shard}, which does not hold it")
        entries[name] = shards[shard][name]
    stray = [n for entries_ in shards.values() for n in entries_ if n not in weight_map]
    if stray:
        raise CheckpointError(f"{path}: shard tensors the index does not list, e.g. {stray[0]}")
    return entries, metadata


def integrity_record(metadata):
    """msport's int64 integrity record from a file's metadata, or None."""
    text = metadata.get(integrity.INTEGRITY_KEY)
    if text is None:
        return None
    try:
        return np.array([int(x) for x in text.split(":")], dtype=np.int64)
    except ValueError as exc:
        raise CheckpointError("the msport integrity record in the metadata is damaged") from exc


def _record_text(record):
    """Fixed width (each int64 as 20 characters and a sign), so the header can be rewritten in place."""
    return ":".join(f"{int(x):+021d}" for x in record)


def write_safetensors(tmp, entries, fmt):
    """Write ``entries`` to the file ``tmp``; ``fmt`` is the metadata's ``format`` (``"pt"`` or ``"ms"``)."""
    header, at = OrderedDict(), 0
    for entry in entries:
        header[entry.name] = {"dtype": spelling(entry.dtype, "safetensors"), "shape": list(entry.shape),
                              "data_offsets": [at, at + entry.nbytes]}
        at += entry.nbytes
    placeholder = _record_text(integrity.placeholder())
    header["__metadata__"] = {"format": fmt, integrity.INTEGRITY_KEY: placeholder}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-aligned, as the safetensors package writes it
    mark_at = 8 + text.index(placeholder.encode())
    digest = integrity.Digest()
    with open(tmp, "wb", buffering=0) as out, Copier(out) as copier:
        copier.write(struct.pack("<Q", len(text)) + text)
        for entry in entries:
            digest.add(entry, copier.copy(entry, digest.start(entry)))
        out.seek(mark_at)
        copier.write(_record_text(digest.record()).encode())
