"""Every Python block of README.md runs as written, in order, in one fresh process:
the blocks that capture do so on the CUPTI and CUDA test doubles, as the README
says (simulate_cuda()), with the default clock."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks() -> list[str]:
    return BLOCK.findall(README.read_text())


def test_readme_has_python_examples():
    assert len(blocks()) >= 2


def test_every_python_block_runs_as_written(tmp_path):
    script = tmp_path / "readme.py"
    parts = []
    for i, code in enumerate(blocks()):
        parts.append(f"# --- README block {i + 1}\n{code}")
    script.write_text("\n".join(parts))
    # -W error: a warning (negative launch-to-start times, say) fails the example
    r = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, f"README's Python blocks failed:\n{r.stdout}\n{r.stderr}"
