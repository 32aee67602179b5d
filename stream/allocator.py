"""Keep the heap pages that model calls free, instead of returning them to the kernel after every call.

XLA:CPU mallocs each call's buffers (tens of MiB for a batch of 8 s windows) and frees them when the call ends.
glibc serves blocks above its mmap threshold (at most 32 MiB by default) with fresh mmaps, so every call
page-faults its buffers in again: kernel time was 7 of the 49 CPU s of `stream diarize --refine` on the 12 AMI
clips. `keep_freed_memory` raises the threshold so those blocks stay in the heap, and keeps every thread on the
main heap (a thread's own arena grows by at most 64 MiB heaps, so it mmaps larger blocks whatever the threshold:
3.7 s of kernel time with two files in flight, 1.2 s on one heap); `release_freed_memory`, called
after model calls, hands free pages back at most every few seconds, so RSS stays bounded on hour-long inputs
(bench/RESULTS.md, "File-mode speed"). Both do nothing where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import threading
import time

M_TRIM_THRESHOLD = -1  # glibc mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
KEEP_BYTES = 256 << 20  # blocks up to this size come from the heap and stay there once freed
RELEASE_EVERY_S = 10.0  # s of wall time between malloc_trim calls (each costs ~0.1 s of page faults later)

_lock = threading.Lock()
_last_release = 0.0


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt, libc.malloc_trim  # noqa: B018 - both exist only in glibc
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _glibc()


def keep_freed_memory() -> None:
    """Serve large blocks from the heap and keep them there when freed (call once, before the models run)."""
    global _last_release
    if _LIBC is not None:
        _LIBC.mallopt(M_MMAP_THRESHOLD, KEEP_BYTES)
        _LIBC.mallopt(M_TRIM_THRESHOLD, KEEP_BYTES)
        _LIBC.mallopt(M_ARENA_MAX, 1)  # one heap: other threads' arenas would mmap large blocks afresh anyway
        _last_release = time.monotonic()


def release_freed_memory(force: bool = False) -> None:
    """Return free heap pages to the kernel if ``RELEASE_EVERY_S`` passed since the last time (or ``force``)."""
    global _last_release
    if _LIBC is None:
        return
    with _lock:
        now = time.monotonic()
        if not force and now - _last_release < RELEASE_EVERY_S:
            return
        _last_release = now
    _LIBC.malloc_trim(0)
