"""Copying tensors' bytes into a checkpoint being written, with the CRC the integrity record needs.

Where a tensor's bytes lie in a source file as they are (every tensor of a
.safetensors or .ckpt, and every contiguous one of a .pth), the kernel copies
them file to file (``os.copy_file_range``, what ``cp`` does), and the checksum is
taken from a read-only memory map of the source, whose pages are let go again
after each piece: nothing is copied through Python, and the process holds no
more than one piece of one tensor. Anything else (a tensor in memory, a strided
view of a .pth) is written from its array.

The checksums run on a second thread, in order, while the kernel copies (both let
go of the GIL): on two cores they cost little beyond the copy itself. So
:meth:`Copier.copy` returns a future of the checksum.
"""

import mmap
import os
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

#: Bytes of a source mapped, checksummed and copied at a time.
PIECE = 32 << 20
_PAGE = mmap.PAGESIZE


class Copier:
    """Appends entries' bytes to ``out``, an unbuffered binary file, at its current position."""

    def __init__(self, out):
        self.out = out
        self.sources = {}
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="msport-checksum")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.pool.shutdown(wait=True)
        for handle, mapping in self.sources.values():
            mapping.close()
            handle.close()
        self.sources.clear()

    def write(self, data):
        view = memoryview(data).cast("B")
        while view:
            view = view[self.out.write(view):]

    def copy(self, entry, checksum, start=0, length=None):
        """Append bytes ``[start, start + length)`` of ``entry``'s C-order data; returns a future of
        ``checksum`` (an :class:`~msport.checkpoints.integrity.Checksum`, or a future this copier returned)
        updated with them."""
        length = entry.nbytes - start if length is None else length
        if not length:
            return self._then(checksum, lambda value: value)
        located = entry.located()
        if located is None:
            data = memoryview(np.ascontiguousarray(entry.raw())).cast("B")[start:start + length]
            self.write(data)
            return self._then(checksum, lambda value: value.update(data))
        path, pieces = located
        handle, mapping = self._source(path)
        at = 0
        for offset, size in pieces:
            lo, hi = max(start, at), min(start + length, at + size)
            for part in range(lo, hi, PIECE):
                begin, n = offset + part - at, min(PIECE, hi - part)
                checksum = self._then(checksum, lambda value, b=begin, k=n: _sum_and_release(mapping, b, k, value))
                self._copy_range(handle, mapping, begin, n)
            at += size
        return checksum

    def _then(self, checksum, step):
        """``step(checksum)`` on the checksum thread; jobs run in the order given, so a future before is done."""
        return self.pool.submit(lambda: step(checksum.result() if isinstance(checksum, Future) else checksum))

    def _source(self, path):
        if path not in self.sources:
            handle = open(path, "rb")
            self.sources[path] = (handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))
        return self.sources[path]

    def _copy_range(self, handle, mapping, begin, n):
        done = 0
        try:
            while done < n:
                copied = os.copy_file_range(handle.fileno(), self.out.fileno(), n - done, begin + done)
                if not copied:
                    break
                done += copied
        except OSError:  # another file system, an old kernel...: through the memory map instead
            pass
        if done < n:
            self.write(memoryview(mapping)[begin + done:begin + n])


def _sum_and_release(mapping, begin, n, checksum):
    checksum.update(memoryview(mapping)[begin:begin + n])
    aligned = begin - begin % _PAGE
    mapping.madvise(mmap.MADV_DONTNEED, aligned, begin + n - aligned)
    return checksum
