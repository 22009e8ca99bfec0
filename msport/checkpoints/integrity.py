"""msport's integrity record: the tensor count and a digest, so a file cut short or damaged is caught.

A ``.ckpt`` is a protobuf list of records: cut exactly at a record boundary it
still loads, with fewer tensors, and MindSpore's own ``crc_check`` does not
notice (see PORTING_NOTES). So every checkpoint msport writes carries a record
of its own, which truncation removes or contradicts:

* version 2 (written now): int64 ``[count, d0, d1, d2, d3, 2]``. Each tensor's
  CRC-32 is taken over its name, dtype, shape and bytes while it streams to the
  file; ``d0..d3`` are a SHA-256 of the sorted ``(name, crc)`` lines, so the
  record does not depend on the order of the tensors, and a writer can fill it
  in after the last byte. CRC-32 because it runs at about twice SHA-256's speed
  here, and a checksum is what a damaged file calls for.
* version 1 (msport's earlier files, still read): int64 ``[count, d0..d3]``, a
  SHA-256 of every tensor's name, dtype, shape and bytes in name order.
"""

import hashlib
import zlib

import numpy as np

from msport.checkpoints.tensors import CheckpointError

#: The record's name: the first tensor of a .ckpt, metadata of a .safetensors.
INTEGRITY_KEY = "msport.integrity"
VERSION = 2
RECORD_LENGTH = 6


class Digest:
    """Collects each tensor's CRC while it is written or read; :meth:`record` gives the int64 record."""

    def __init__(self):
        self.crcs = {}

    def start(self, entry):
        return zlib.crc32(f"{entry.name}\0{entry.dtype}\0{entry.shape}\0".encode())

    def add(self, entry, crc):
        self.crcs[entry.name] = crc

    def digest_entry(self, entry):
        """Read ``entry`` whole and add it (what a reader does to check a file)."""
        crc = self.start(entry)
        for chunk in entry.chunks():
            crc = zlib.crc32(chunk, crc)
        self.add(entry, crc)

    def record(self):
        lines = "".join(f"{name}\0{crc}\n" for name, crc in sorted(self.crcs.items()))
        words = np.frombuffer(hashlib.sha256(lines.encode()).digest(), dtype=np.int64)
        return np.array([len(self.crcs), *words, VERSION], dtype=np.int64)


def placeholder():
    """A record of the final length, to be overwritten once every tensor is written."""
    return np.zeros(RECORD_LENGTH, np.int64)


def _version1(entries):
    digest = hashlib.sha256()
    for entry in sorted(entries, key=lambda e: e.name):
        digest.update(f"{entry.name}\0{entry.dtype}\0{entry.shape}\0".encode())
        digest.update(entry.raw().tobytes())
    return np.array([len(entries), *np.frombuffer(digest.digest(), dtype=np.int64)], dtype=np.int64)


def verify(path, recorded, entries):
    """Raise :class:`CheckpointError` unless ``entries`` (a list) match the ``recorded`` int64 record."""
    recorded = np.asarray(recorded, dtype=np.int64).reshape(-1)
    if recorded.size == RECORD_LENGTH and recorded[-1] == VERSION:
        digest = Digest()
        for entry in entries:
            digest.digest_entry(entry)
        found = digest.record()
    elif recorded.size == RECORD_LENGTH - 1:
        found = _version1(entries)
    else:
        raise CheckpointError(f"{path} is damaged: its msport integrity record is not one msport writes")
    if recorded[0] != found[0]:
        raise CheckpointError(f"{path} is incomplete: msport wrote {recorded[0]} tensors, the file holds "
                              f"{found[0]} (a cut or damaged file; use an intact copy)")
    if not np.array_equal(recorded, found):
        raise CheckpointError(f"{path} is damaged: its tensors do not match the digest msport wrote "
                              f"(use an intact copy)")
