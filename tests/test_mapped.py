"""mapped.py: pages of a memory-mapped weight file go back to the OS, and nothing else does."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from streamlid.mapped import MappedPages

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc/self")


def resident_file_mb() -> float:
    """The process's resident pages that belong to file mappings."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssFile:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no RssFile in /proc/self/status")


@linux_only
def test_pages_of_a_mapped_file_are_handed_back_and_reread_when_touched(tmp_path):
    path = tmp_path / "weights.bin"
    values = np.arange(16 * 1024 * 1024, dtype=np.float32)  # 64 MB
    values.tofile(path)
    mapped = np.memmap(path, dtype=np.float32, mode="r")
    assert float(mapped.sum(dtype=np.float64)) == float(values.sum(dtype=np.float64))
    resident_mb = resident_file_mb()
    assert MappedPages().release(mapped.ctypes.data, mapped.nbytes)
    assert resident_file_mb() < resident_mb - 60  # the file's 64 MB left the process
    np.testing.assert_array_equal(mapped[::4096], values[::4096])  # read again from the file


@linux_only
def test_memory_that_is_not_a_file_mapping_is_never_released():
    values = np.arange(4 * 1024 * 1024, dtype=np.float32)
    assert not MappedPages().release(values.ctypes.data, values.nbytes)
    assert values[123456] == 123456.0


@linux_only
def test_a_mapping_made_after_the_snapshot_is_left_alone(tmp_path):
    pages = MappedPages()
    path = tmp_path / "later.bin"
    np.ones(1024 * 1024, dtype=np.float32).tofile(path)
    mapped = np.memmap(path, dtype=np.float32, mode="r")
    assert not pages.release(mapped.ctypes.data, mapped.nbytes)
