"""`skip run` and the processes it captures: command lines that are not UTF-8."""

from __future__ import annotations

import os
import subprocess
import sys

from test_run import LAUNCHER, SKIP, _env

import skipnative
from skipnative.io import runfolder

# each not valid UTF-8: a lone continuation byte, a cut sequence, an overlong
# form, an encoded surrogate, a code point past U+10FFFF; then valid text around
_NOT_UTF8 = [b"caf\xe9.txt", b"\x80x\xe2\x82", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]
_NOT_UTF8 += ["snow \u2603 \U0001f600".encode(), b"ok\xff\xfe"]


_LAUNCH_5 = "import sys; from skipnative.testing.launcher import main; sys.exit(main(['5']))"


def test_a_command_line_that_is_not_utf8_is_listed_faithfully(tmp_path):
    # os.fsdecode's form (surrogateescape): the bytes read back as they were
    out = tmp_path / "run"
    env = _env()
    env.update(RANK="3", CUDA_VISIBLE_DEVICES=os.fsdecode(b"0,\xff"))
    cmd = [*SKIP, "run", "--out", str(out), "--", sys.executable, "-c", _LAUNCH_5]
    r = subprocess.run(
        [os.fsencode(c) for c in cmd] + _NOT_UTF8,
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    (p,) = runfolder.read_run(out)["processes"]
    assert p["status"] == "complete" and p["error"] is None
    assert p["file"] == "rank3.skip" and p["rank"] == "3"
    assert [os.fsencode(a) for a in p["argv"][-len(_NOT_UTF8) :]] == _NOT_UTF8
    assert p["argv"][-len(_NOT_UTF8) :] == [os.fsdecode(a) for a in _NOT_UTF8]
    assert os.fsencode(p["cuda_visible_devices"]) == b"0,\xff"
    assert not (out / runfolder.CONTROL).exists()
    run_meta = skipnative.load(out / "rank3.skip").meta["run"]
    assert run_meta["argv"] == p["argv"]


def test_a_rank_that_is_not_utf8_names_the_file_by_pid(tmp_path):
    out = tmp_path / "run"
    env = _env()
    env["RANK"] = os.fsdecode(b"3\xff")
    env["PYTHONIOENCODING"] = "utf-8:strict"  # as in a UTF-8 locale: no surrogateescape
    cmd = [*SKIP, "run", "--out", str(out), "--", *LAUNCHER, "5"]
    r = subprocess.run(cmd, capture_output=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    (p,) = runfolder.read_run(out)["processes"]
    assert p["status"] == "complete" and os.fsencode(p["rank"]) == b"3\xff"
    assert p["file"] == f"pid{p['pid']}.skip"
    assert b"(rank 3\\xff)" in r.stdout
    assert not (out / runfolder.CONTROL).exists()
