"""The compiled libraries' thread-local storage stays small.

The extension and the injection library use initial-exec TLS on the launch path
(no __tls_get_addr call per record), which makes the loader take all of their
TLS from the small static block glibc keeps for libraries loaded after start
(about 1.6 KiB, shared with every other such library, torch's included). A
library whose TLS does not fit fails to load: "cannot allocate memory in static
TLS block". So per-thread data of any size goes on the heap, with a pointer in
TLS; this test holds each library's TLS segment to a budget.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

PT_TLS = 7
BUDGET = 256  # bytes of TLS a library may have


def tls_size(path: Path) -> int:
    """The memory size of an ELF file's PT_TLS segment (0 without one)."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF", path
    wide, little = data[4] == 2, data[5] == 1
    e = "<" if little else ">"
    if wide:
        (phoff,) = struct.unpack_from(e + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(e + "HH", data, 0x36)
    else:
        (phoff,) = struct.unpack_from(e + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(e + "HH", data, 0x2A)
    for i in range(phnum):
        off = phoff + i * phentsize
        (p_type,) = struct.unpack_from(e + "I", data, off)
        if p_type == PT_TLS:
            return (
                struct.unpack_from(e + "Q", data, off + 0x28)[0]
                if wide
                else struct.unpack_from(e + "I", data, off + 0x14)[0]
            )
    return 0


LIBRARIES = ["_native", "libskipnative_inject.so", "libskipnative_hooks.so"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ELF libraries")
@pytest.mark.parametrize("name", LIBRARIES)
def test_each_library_keeps_its_tls_within_the_budget(name):
    from skipnative import _native

    native = Path(_native.__file__).resolve()
    matches = [native] if name == "_native" else [native.parent / name]
    assert matches[0].exists(), f"{name} is not installed beside skipnative._native"
    size = tls_size(matches[0])
    assert size <= BUDGET, f"{matches[0].name}: {size} bytes of TLS (budget {BUDGET})"
