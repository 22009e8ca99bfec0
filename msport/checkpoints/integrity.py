"""msport's integrity record: the tensor count and a digest, so a file cut short or damaged is caught.

A ``.ckpt`` is a protobuf list of records: cut exactly at a record boundary it
still loads, with fewer tensors, and MindSpore's own ``crc_check`` does not
notice (see PORTING_NOTES). So every checkpoint msport writes carries a record
of its own, which truncation removes or contradicts:

* version 2 (written now): int64 ``[count, d0, d1, d2, d3, 2]``. Each tensor's
  :class:`Checksum` is taken while its bytes stream to the file; ``d0..d3`` are a
  SHA-256 of the sorted lines ``name, dtype, shape, s1, s2``, so the record does
  not depend on the order of the tensors, and a writer can fill it in after the
  last byte.
* version 1 (msport's earlier files, still read): int64 ``[count, d0..d3]``, a
  SHA-256 of every tensor's name, dtype, shape and bytes in name order.
"""

import hashlib

import numpy as np

from msport.checkpoints.tensors import CheckpointError

#: The record's name: the first tensor of a .ckpt, metadata of a .safetensors.
INTEGRITY_KEY = "msport.integrity"
VERSION = 2
RECORD_LENGTH = 6


class Checksum:
    """Two sums over a tensor's bytes, read as little-endian uint64 words (zero-padded at the end), in blocks
    of 64 KB: ``s1`` the sum of every block's sum, ``s2`` the sum of each block's sum times its position
    (1, 2, ...), both mod 2^64.

    A changed bit, a zeroed or shifted stretch, a cut, or blocks out of order change them; numpy adds at
    memory speed, about five times zlib's CRC-32 here (measured on a 500 MB file), which is what keeps a
    conversion near ``cp``'s time. It guards against damage, not against someone forging a file.
    """

    BLOCK = 1 << 16

    def __init__(self):
        self.s1 = self.s2 = self.blocks = 0
        self.pending = bytearray()

    def update(self, data):
        view = memoryview(data).cast("B")
        if self.pending:
            take = min(len(view), self.BLOCK - len(self.pending))
            self.pending += view[:take]
            view = view[take:]
            if len(self.pending) == self.BLOCK:
                self._add(memoryview(self.pending))
                self.pending = bytearray()
        whole = len(view) - len(view) % self.BLOCK
        if whole:
            self._add(view[:whole])
        if len(view) > whole:
            self.pending += view[whole:]
        return self

    def _add(self, view):
        words = np.frombuffer(view, "<u8").reshape(-1, self.BLOCK // 8) if len(view) >= self.BLOCK \
            else np.frombuffer(view, "<u8").reshape(1, -1)
        sums = words.sum(axis=1, dtype=np.uint64)
        position = np.arange(self.blocks + 1, self.blocks + len(sums) + 1, dtype=np.uint64)
        self.s1 = (self.s1 + int(sums.sum(dtype=np.uint64))) % (1 << 64)
        self.s2 = (self.s2 + int((sums * position).sum(dtype=np.uint64))) % (1 << 64)
        self.blocks += len(sums)

    def value(self):
        """``(s1, s2)``; the last, partial block is added here."""
        if self.pending:
            self._add(memoryview(bytes(self.pending) + b"\0" * (-len(self.pending) % 8)))
            self.pending = bytearray()
        return self.s1, self.s2


class Digest:
    """Collects each tensor's :class:`Checksum` while it is written or read; :meth:`record` gives the record."""

    def __init__(self):
        self.sums = {}

    def start(self, entry):
        return Checksum()

    def add(self, entry, checksum):
        """``checksum``: a :class:`Checksum`, or a future of one (resolved by :meth:`record`)."""
        self.sums[entry.name] = (entry, checksum)

    def digest_entry(self, entry):
        """Read ``entry`` whole and add it (what a reader does to check a file)."""
        checksum = Checksum()
        for chunk in entry.chunks():
            checksum.update(chunk)
        self.add(entry, checksum)

    def record(self):
        lines = []
        for name, (entry, checksum) in sorted(self.sums.items()):
            s1, s2 = (checksum.result() if hasattr(checksum, "result") else checksum).value()
            lines.append(f"{name}\0{entry.dtype}\0{entry.shape}\0{s1}\0{s2}\n")
        words = np.frombuffer(hashlib.sha256("".join(lines).encode()).digest(), dtype=np.int64)
        return np.array([len(lines), *words, VERSION], dtype=np.int64)


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
