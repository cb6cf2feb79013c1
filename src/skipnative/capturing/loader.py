"""Where libcupti may be found, and whether capture can work here."""

from __future__ import annotations

import os
import sys
from functools import lru_cache


def wheel_cupti_dirs() -> list[str]:
    """Folders of the nvidia-cuda-cupti wheel (13.x, then 12.x) on sys.path."""
    dirs = []
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        for sub in (("nvidia", "cu13", "lib"), ("nvidia", "cuda_cupti", "lib")):
            d = os.path.join(entry, *sub)
            if os.path.isdir(d) and d not in dirs:
                dirs.append(d)
    return dirs


@lru_cache(maxsize=1)
def native():
    """The compiled module, or None with the reason."""
    try:
        from skipnative import _native
    except ImportError as e:  # pragma: no cover - a broken install
        return None, f"the compiled module skipnative._native failed to import: {e}"
    return _native, ""


def available() -> tuple[bool, str]:
    """Whether a capture can start in this process, and why not.

    Loads libcupti (without starting anything), checks the CUDA driver and a
    device, and whether CUPTI's single subscriber slot is free.
    """
    mod, why = native()
    if mod is None:
        return False, why
    info = mod.load_cupti(wheel_cupti_dirs())
    if not info["loaded"]:
        return False, info["why"]
    where = f"libcupti {info['path']} ({info['origin']}, CUPTI API version {info['version']})"
    if not info["test_double"]:
        ok, driver_why, count = mod.probe_driver()
        if not ok:
            return False, f"{where} loaded, but {driver_why}"
        where += f", {count} CUDA device(s)"
    else:
        where += ", a CUPTI test double (simulated GPU)"
    free, sub_why = mod.probe_subscriber()
    if not free and sub_why.startswith("forked while"):
        return False, (
            f"{where}, but CUPTI's subscriber here is the skipnative capture this process's "
            "parent was running when it forked; capture in a child forked after that "
            "capture stopped, or in a process started fresh"
        )
    if not free:
        return False, (
            f"{where}, but CUPTI is held by another subscriber ({sub_why}); torch.profiler "
            "keeps CUPTI once used, so capture with skipnative first or in its own process"
        )
    return True, f"capture available: {where}"
