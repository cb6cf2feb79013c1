"""The package's layers (README, "Layout"), read from the source.

Each module's imports are parsed with ast, those inside functions included:

- arrows point down only: cli -> the package root -> report, profiling ->
  analysis -> io -> capturing -> trace, errors, text (testing beside the root);
- analysis/ imports neither torch, matplotlib nor the compiled module, and
  importing it leaves them out of sys.modules;
- report/ takes its numbers from skipnative.analysis.report_data alone: it
  renders, it computes no metric;
- trace.py and errors.py import nothing of skipnative, except the two
  convenience methods Trace.metrics() and Trace.save(), inside them;
- no import cycles;
- no module over 500 lines, no function over 85.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import types
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "src" / "skipnative"

# position of each top-level part of the package, lowest first
RANK = {
    "trace": 0,
    "errors": 0,
    "text": 0,  # plain-text helpers of the tables (cli and report)
    "_native": 0,  # the compiled module: loaded by capturing and the Kineto reader
    "capturing": 1,
    "io": 2,  # may convert native records with capturing's decoder
    "analysis": 3,
    "profiling": 4,
    "report": 4,
    "testing": 5,
    "": 5,  # the package root, skipnative/__init__.py: the public facade
    "cli": 6,
    "__main__": 7,
}
# lazy imports that go up, allowed where they are: (importer, imported, function)
LAZY_UP = {
    ("skipnative.trace", "skipnative.analysis.metrics", "metrics"),
    ("skipnative.trace", "skipnative.io.skipfile", "save"),
    ("skipnative.trace", "skipnative.analysis.kernel_rows", "kernels_df"),
    ("skipnative.trace", "skipnative.analysis.kernel_rows", "to_arrow"),
}
HEAVY = ("torch", "matplotlib", "skipnative._native")
REPORT_API = "skipnative.analysis.report_data"


def _module_name(path: Path) -> str:
    parts = ("skipnative", *path.relative_to(PKG).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}
KNOWN = set(MODULES) | {"skipnative._native"}


def _resolve(name: str) -> str:
    """The longest known skipnative module a dotted import name refers to."""
    while name not in KNOWN and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _imports(module: str) -> list[tuple[str, int, str | None]]:
    """(imported module, line, enclosing function or None) of every import."""
    tree = ast.parse(MODULES[module].read_text(), str(MODULES[module]))
    out: list[tuple[str, int, str | None]] = []

    def visit(node: ast.AST, func: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            f = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else func
            if isinstance(child, ast.Import):
                out.extend((a.name, child.lineno, func) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                assert child.level == 0, f"{module}:{child.lineno}: a relative import"
                base = child.module or ""
                for a in child.names:
                    sub = f"{base}.{a.name}"
                    out.append((sub if _resolve(sub) == sub else base, child.lineno, func))
            visit(child, f)

    visit(tree, None)
    return out


def _part(module: str) -> str:
    """'analysis' for skipnative.analysis.metrics, '' for the package root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _internal(module: str) -> list[tuple[str, int, str | None]]:
    return [
        (_resolve(name), line, func)
        for name, line, func in _imports(module)
        if name == "skipnative" or name.startswith("skipnative.")
    ]


def test_every_module_is_placed_in_a_layer():
    assert {_part(m) for m in MODULES} <= set(RANK), "a new top-level module needs a RANK"


def test_imports_point_down_only():
    bad = []
    for module in MODULES:
        src = _part(module)
        for target, line, func in _internal(module):
            dst = _part(target)
            if dst == src or (module, target, func) in LAZY_UP:
                continue
            if RANK[dst] >= RANK[src]:
                bad.append(f"{module}:{line} imports {target}")
    assert not bad, "imports that do not point down:\n" + "\n".join(bad)


@pytest.mark.parametrize("part", ["trace", "errors"])
def test_the_model_imports_nothing_above_it(part):
    module = f"skipnative.{part}"
    found = {(t, f) for t, _line, f in _internal(module)}
    assert found <= {(t, f) for m, t, f in LAZY_UP if m == module}


def _heavy(name: str) -> bool:
    return any(name == h or name.startswith(h + ".") for h in HEAVY)


def test_analysis_needs_neither_torch_matplotlib_nor_the_compiled_module():
    """Nor capturing/, the compiled module's Python face."""
    bad = [
        f"{module}:{line} imports {name}"
        for module in MODULES
        if _part(module) == "analysis"
        for name, line, _func in _imports(module)
        if _heavy(name) or _part(_resolve(name)) == "capturing"
    ]
    assert not bad, "\n".join(bad)


def test_importing_analysis_loads_neither_torch_matplotlib_nor_the_compiled_module():
    mods = [m for m in MODULES if _part(m) == "analysis"]
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in mods)
        + f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_report_renders_analysis_results_and_computes_none():
    bad = [
        f"{module}:{line} imports {target}"
        for module in MODULES
        if _part(module) == "report"
        for target, line, _func in _internal(module)
        if _part(target) == "analysis" and target != REPORT_API
    ]
    assert not bad, f"report/ may import from analysis/ only {REPORT_API}:\n" + "\n".join(bad)


def test_no_import_cycles():
    graph = {
        m: {t for t, _line, f in _internal(m) if (m, t, f) not in LAZY_UP and t != m}
        for m in MODULES
    }
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path[path.index(t) :], t]))
            if t not in state:
                visit(t)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_public_names_are_not_shadowed_by_modules():
    """`skipnative.profile` is the function even once every submodule is imported
    (a module skipnative/profile.py used to replace it)."""
    code = (
        "import skipnative\n"
        + "".join(f"import {m}\n" for m in MODULES if m != "skipnative.__main__")
        + "import types\n"
        "print([n for n in skipnative.__all__ if isinstance(getattr(skipnative, n), "
        "types.ModuleType)])\n"
        "print(skipnative.profile.__module__, skipnative.capture.__module__)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    shadowed, where = r.stdout.splitlines()
    assert shadowed == "[]"
    assert where == "skipnative.profiling.passes skipnative.capturing.session"
    import skipnative

    assert not isinstance(skipnative.profile, types.ModuleType)
    assert {"profile", "Profile", "capture", "Capture", "load", "Trace"} <= set(skipnative.__all__)


def test_modules_and_functions_stay_short():
    """No module over 500 lines, no function over 85 (STYLE: about 80)."""
    long = []
    for module, path in MODULES.items():
        src = path.read_text()
        if len(src.splitlines()) > 500:
            long.append(f"{module}: {len(src.splitlines())} lines")
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 85:
                    long.append(f"{module}:{node.lineno} {node.name}: {n} lines")
    assert not long, "\n".join(long)


def test_skip_analyze_starts_reading_before_numpy_is_imported():
    """`skip analyze TRACE` starts the reader on a thread before it imports numpy
    (which then imports while the reader parses): what it needs up to there must
    not import numpy."""
    code = (
        "import sys\n"
        "import skipnative, skipnative.cli.main, skipnative.cli.analyze\n"
        "import skipnative.io.kineto_stream, skipnative.io.sniff, skipnative._native\n"
        "skipnative.cli.main.build_parser(['analyze', 'x'])\n"
        "print('numpy' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
