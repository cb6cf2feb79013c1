"""JSON from an untrusted file, refused in one line when it is not what it claims.

json.loads raises RecursionError on deeply nested text ("[[[[...") and
ValueError (or its subclasses JSONDecodeError, UnicodeDecodeError) on
malformed text or an integer too long to convert. Every reader of a file
goes through loads() below, which turns each of them into a TraceError naming
the file and the part of it that was being read. Nested values are also
capped in depth, so that the code that walks a loaded value later (exports,
json.dumps) cannot run out of stack on it either.

json.loads also takes NaN, Infinity and -Infinity, which are no JSON (nothing
skipnative writes holds them), and reads a number too large for a float, such
as 1e999, as infinity. A count or time of that kind would overflow where it is
made an integer, or compare as no number does, so each is refused, naming where
in the document it stands.

A \\u escape of a lone surrogate (\\ud800 with no low half after it) is valid
JSON syntax, but json.loads keeps it as a code point that no UTF-8 writer
accepts: a .skip save, a CSV, a report or stdout would fail on it long after the
load. loads() reads each as the replacement characters that the Kineto reader
gives the same escape in an event name (its 3-byte form, invalid UTF-8,
decoded with replacement), so a name reads alike wherever it is stored and
every writer takes it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from skipnative.errors import TraceError

# far deeper than any document skipnative writes, far below the interpreter's stack
MAX_DEPTH = 100


def loads(text: str | bytes | bytearray | memoryview, path: str, what: str) -> Any:
    """The value of a JSON document read from path, or TraceError(path, f"{what}: ...")."""
    if isinstance(text, memoryview):
        text = bytes(text)
    try:
        value = json.loads(text)
    except RecursionError:
        raise TraceError(path, f"{what}: JSON nested too deeply") from None
    except UnicodeDecodeError:
        raise TraceError(path, f"{what}: not valid UTF-8") from None
    except json.JSONDecodeError as e:
        raise TraceError(path, f"{what}: invalid JSON ({e.msg} at byte {e.pos})") from None
    except ValueError as e:  # e.g. an integer literal longer than int() accepts
        raise TraceError(path, f"{what}: invalid JSON ({_first_line(e)})") from None
    too_deep, non_finite = _walk(value)
    if too_deep:
        raise TraceError(path, f"{what}: JSON nested more than {MAX_DEPTH} levels deep")
    if non_finite:
        where, v = _first_non_finite(value)
        lit = "NaN" if v != v else ("-Infinity" if v < 0 else "Infinity")
        raise TraceError(path, f"{what}: {where} is {lit}, which is not a JSON number")
    if isinstance(text, str):
        escaped = _SURROGATE_ESCAPE.search(text) is not None
    else:
        escaped = _SURROGATE_ESCAPE_BYTES.search(text) is not None
    if escaped:  # rare: other documents are not walked
        value = _without_surrogates(value)
    return value


# may also match an escaped backslash before "ud800": then the walk finds nothing
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_BYTES = re.compile(_SURROGATE_ESCAPE.pattern.encode())


def _fixed(s: str) -> str:
    return s.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _without_surrogates(value: Any) -> Any:
    """`value` with every string (dict keys too) holding no lone surrogate; lists and
    dicts are changed in place (no recursion: the depth was checked, not bounded)."""
    if isinstance(value, str):
        return _fixed(value)
    stack = [value] if isinstance(value, (dict, list)) else []
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            for i, c in enumerate(v):
                if isinstance(c, str):
                    v[i] = _fixed(c)
                elif isinstance(c, (dict, list)):
                    stack.append(c)
            continue
        items = list(v.items())
        v.clear()
        for k, c in items:
            if isinstance(c, str):
                c = _fixed(c)
            elif isinstance(c, (dict, list)):
                stack.append(c)
            v[_fixed(k)] = c
    return value


def _first_line(e: Exception) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0]


def _non_finite(v: Any) -> bool:
    # inf - inf and nan - nan are nan, which is unequal to 0; x - x is 0 for any other float
    return v.__class__ is float and v - v != 0


def _walk(value: Any) -> tuple[bool, bool]:
    """(whether value nests lists or objects more than MAX_DEPTH levels, whether
    it holds a NaN or infinite float), without recursion; one pass, as cheap as
    the depth check alone."""
    if _non_finite(value):
        return False, True
    non_finite = False
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            children: Any = v.values()
        elif isinstance(v, list):
            children = v
        else:
            continue
        if depth > MAX_DEPTH:
            return True, non_finite
        for c in children:
            if isinstance(c, (dict, list)):
                stack.append((c, depth + 1))
            elif c.__class__ is float and c - c != 0:
                non_finite = True
    return False, non_finite


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")


def _first_non_finite(value: Any) -> tuple[str, float]:
    """Where the first NaN or infinite float of value stands (a path such as
    meta.dropped.gpu_rows or points[2].il_us), and the float. value holds one,
    nested at most MAX_DEPTH levels (checked first)."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        v, where = stack.pop()
        if _non_finite(v):
            return where or "the document", v
        if isinstance(v, dict):
            items: Any = [(_key(where, k), c) for k, c in v.items()]
        elif isinstance(v, list):
            items = [(f"{where}[{i}]", c) for i, c in enumerate(v)]
        else:
            continue
        stack.extend((c, w) for w, c in reversed(items))
    raise AssertionError("no NaN or infinite float")  # _walk found one


def _key(where: str, k: str) -> str:
    name = k if _NAME.fullmatch(k) else repr(k[:40])
    return f"{where}.{name}" if where else name
