"""`stream.allocator`: freed large blocks stay resident until released, then go back to the kernel.

Runs in a child process, because the settings are process-wide and would change how the test process allocates.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from stream.allocator import _LIBC

MIB = 2**20

CHILD = """
import json, os
import numpy as np
from stream.allocator import keep_freed_memory, release_freed_memory

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

keep_freed_memory()
base = rss()
block = np.ones(96 * 2**20 // 8)  # 96 MiB, above glibc's default mmap threshold, touched
del block
kept = rss()
release_freed_memory(force=True)
print(json.dumps({"base": base, "kept": kept, "released": rss()}))
"""


@pytest.mark.skipif(_LIBC is None, reason="glibc only")
def test_freed_blocks_stay_resident_until_released() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout)
    assert r["kept"] - r["base"] > 80 * MIB, r  # by default glibc would have unmapped it at once
    assert r["released"] - r["base"] < 16 * MIB, r
