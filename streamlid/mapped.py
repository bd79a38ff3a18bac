"""Pages of memory-mapped weight files, handed back to the OS once nothing needs them.

Loading a model to quantize it (`--dtype int8`) reads every float32 weight once. Read from a
memory-mapped safetensors file, each page read stays in the process's resident memory until
the whole file is unmapped, so quantizing the 3.9 GB mms-lid-256 peaked at 5.3 GB for a 1.5 GB
int8 model. `release` drops a weight's pages as soon as its int8 copy exists (madvise
MADV_DONTNEED: for a read-only file mapping the pages are simply re-read from the file if ever
touched again), so the peak stays near the int8 model. Linux only; elsewhere it does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import mmap
import sys

MADV_DONTNEED = 4


def file_backed_ranges() -> list[tuple[int, int]]:
    """(start, end) addresses of the process's file mappings; empty where unknown."""
    ranges: list[tuple[int, int]] = []
    with contextlib.suppress(OSError), open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].startswith("/"):
                start, end = (int(part, 16) for part in fields[0].split("-"))
                ranges.append((start, end))
    return ranges


class MappedPages:
    """Releases the whole pages of a byte range, when the range lies in a file mapping that
    existed when this was made (memory from malloc is never touched)."""

    def __init__(self) -> None:
        self._ranges = file_backed_ranges() if sys.platform.startswith("linux") else []
        name = ctypes.util.find_library("c") if self._ranges else None
        self._madvise = ctypes.CDLL(name, use_errno=True).madvise if name else None
        if self._madvise is not None:
            self._madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)

    def release(self, address: int, nbytes: int) -> bool:
        """True when the pages inside [address, address + nbytes) were handed back."""
        if self._madvise is None or nbytes <= 0:
            return False
        end = address + nbytes
        if not any(start <= address and end <= stop for start, stop in self._ranges):
            return False
        page = mmap.PAGESIZE
        first = -(-address // page) * page  # whole pages only: neighbours may share the edges
        last = end // page * page
        if last <= first:
            return False
        return self._madvise(first, last - first, MADV_DONTNEED) == 0
