"""The loader's order: a libcupti already in the process, then the user's
SKIPNATIVE_CUPTI_LIBRARY, then an nvidia-cuda-cupti wheel on sys.path, then the
system. Each case in a fresh process (a process keeps the first libcupti)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from skipnative.testing import library_path

LOAD = (
    "import json, sys\n"
    "from skipnative import _native\n"
    "print(json.dumps(dict(_native.load_cupti(sys.argv[1:]))))\n"
)


def _load(wheel_dirs, env_value):
    env = {k: v for k, v in os.environ.items() if k != "SKIPNATIVE_CUPTI_LIBRARY"}
    if env_value is not None:
        env["SKIPNATIVE_CUPTI_LIBRARY"] = env_value
    r = subprocess.run(
        [sys.executable, "-c", LOAD, *map(str, wheel_dirs)], env=env, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _wheel(tmp_path):
    lib = tmp_path / "site" / "nvidia" / "cu13" / "lib"
    lib.mkdir(parents=True)
    shutil.copy(library_path(), lib / "libcupti.so.13")
    return lib


def test_the_users_library_wins_over_a_wheel(tmp_path):
    wheel = _wheel(tmp_path)
    info = _load([wheel], library_path())
    assert info["loaded"] and info["origin"] == "env" and info["path"] == library_path()
    # without the variable the wheel's copy is found
    info = _load([wheel], None)
    assert info["loaded"] and info["origin"] == "wheel"
    assert info["path"] == str(wheel / "libcupti.so.13")


def test_a_users_library_that_does_not_load_is_the_answer(tmp_path):
    wheel = _wheel(tmp_path)
    info = _load([wheel], str(tmp_path / "missing.so"))
    assert not info["loaded"]
    assert "SKIPNATIVE_CUPTI_LIBRARY" in info["why"] and "missing.so" in info["why"]
