"""JSON from an untrusted file, refused in one line when it is not what it claims.

json.loads raises RecursionError on deeply nested text ("[[[[...") and
ValueError (or its subclasses JSONDecodeError, UnicodeDecodeError) on
malformed text or an integer too long to convert. Every reader of a file
goes through loads() below, which turns each of them into a TraceError naming
the file and the part of it that was being read. Nested values are also
capped in depth, so that the code that walks a loaded value later (exports,
json.dumps) cannot run out of stack on it either.
"""

from __future__ import annotations

import json
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
    if _too_deep(value):
        raise TraceError(path, f"{what}: JSON nested more than {MAX_DEPTH} levels deep")
    return value


def _first_line(e: Exception) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0]


def _too_deep(value: Any) -> bool:
    """Whether value nests lists or objects more than MAX_DEPTH levels (no recursion)."""
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
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False
