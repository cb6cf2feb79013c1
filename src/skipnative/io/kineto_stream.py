"""The Kineto reader's input side: the file's chunks, inflated on a helper
thread, fed to the native reader (csrc/kineto/trace_reader.cpp).

Nothing here imports numpy, so a command can start reading a trace first and
import the analysis while the reader parses (``prefetch``): both the parse and
the inflate release the GIL. gzip is inflated by ISA-L where the optional
``isal`` package is installed (about 2.5x zlib's speed), else by zlib.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import zlib
from typing import Any

from skipnative.errors import TraceError
from skipnative.io.sniff import refuse_special

_inflate: Any = zlib
try:  # optional: ISA-L's inflate, the same stream API as zlib's
    from isal import isal_zlib

    _inflate = isal_zlib
except ImportError:  # pragma: no cover - depends on the environment
    pass

CHUNK = 4 << 20  # the reader parses in place: larger chunks only cost memory
_INFLATE_ERRORS: tuple[type[BaseException], ...] = (zlib.error, _inflate.error)


def _open_chunks(path: str):
    """Yields decompressed chunks of at most CHUNK bytes (gzip detected by its magic).
    A gzip file is any number of members, one after another (bgzip and pigz write
    many, some empty); every one is read, whatever chunk it starts or ends in."""
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(0)
        if head != b"\x1f\x8b":
            while raw := f.read(CHUNK):
                yield raw
            return
        d = _inflate.decompressobj(wbits=31)
        while True:
            if d.eof:  # a member ended: what follows it starts the next, if anything does
                raw = d.unused_data or f.read(CHUNK)
                if not raw:
                    break
                if len(raw) < 2:
                    raw += f.read(CHUNK)
                # checked here: ISA-L waits for a whole header where zlib refuses at once
                if raw[:2] != b"\x1f\x8b":
                    raise TraceError(path, "corrupt gzip data (bytes after a member are no member)")
                d = _inflate.decompressobj(wbits=31)
            else:
                raw = d.unconsumed_tail or f.read(CHUNK)
                if not raw:
                    break
            out = d.decompress(raw, CHUNK)
            if out:
                yield out
        if not d.eof:
            raise TraceError(path, "truncated gzip stream (the file ends mid-stream)")


def _feed_pipelined(reader, chunks) -> None:
    """Decompresses on a helper thread while the reader parses: both release the
    GIL, so a gzipped trace costs about max(inflate, parse) instead of the sum."""
    q: queue.Queue = queue.Queue(maxsize=2)
    done = object()
    stop = threading.Event()  # the consumer is gone: an endless input (/dev/zero) ends here

    def produce():
        try:
            for c in chunks:
                if stop.is_set():
                    break
                q.put(c)
            q.put(done)
        except BaseException as e:  # handed to the consumer
            q.put(e)
        finally:
            with contextlib.suppress(Exception):
                chunks.close()  # the file it reads, closed on this thread

    t = threading.Thread(target=produce, name="skipnative-inflate", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                break
            if isinstance(item, BaseException):
                raise item
            reader.feed(item)
    finally:
        # stop the producer, and unblock it, if the reader failed first
        stop.set()
        while t.is_alive():
            with contextlib.suppress(queue.Empty):
                q.get(timeout=0.05)
        t.join()


def read(path: str) -> Any:
    """The native reader, fed the whole file and finished (ops nested); a file
    that cannot be read or parsed raises TraceError naming it."""
    from skipnative import _native

    refuse_special(path)  # open() would wait on a FIFO's writer
    reader = _native.KinetoReader()
    try:
        _feed_pipelined(reader, _open_chunks(path))
        reader.finish()
    except _native.TraceReadError as e:
        raise TraceError(path, _run_json_problem(path, reader, str(e)) or str(e)) from None
    except _INFLATE_ERRORS as e:
        raise TraceError(path, f"corrupt gzip data ({e})") from None
    except (OSError, EOFError) as e:
        raise TraceError(path, f"cannot read: {e}") from None
    return reader


def _run_json_problem(path: str, reader, problem: str) -> str | None:
    """What a folder's own listing, given where a trace goes, is: a `skip run`
    folder's run.json (its files are the traces: the folder is what to give) or
    a `skip sweep` folder's sweep.json (its report and what-if read it), said
    so; None for any other document the reader refused (`problem`: its words)."""
    import json
    import os
    import shlex

    from skipnative.io.folder import RUN_FORMAT

    if not problem.startswith("no traceEvents"):
        return None
    top = reader.top_level
    try:
        is_run = json.loads(top.get("format", "null")) == RUN_FORMAT
        is_sweep = os.path.basename(path) == "sweep.json" and "points" in top
    except ValueError:
        return None
    folder = shlex.quote(os.path.dirname(path) or ".")
    if is_run:
        what = "a `skip run` folder's run.json, not a trace"
        return f"{what}: analyse the folder (skip analyze {folder})"
    if is_sweep:
        what = "a `skip sweep` folder's sweep.json, not a trace"
        return f"{what}: report on the folder (skip report {folder}) or analyse one of its traces"
    return None


class Prefetch:
    """``read(path)`` on a thread of its own, started now; ``result()`` waits
    for it and returns the reader or raises what read raised."""

    def __init__(self, path: str):
        self.path = path
        self._out: list = []
        self._thread = threading.Thread(target=self._run, name="skipnative-read", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._out.append(("ok", read(self.path)))
        except BaseException as e:  # handed to result()
            self._out.append(("error", e))

    def result(self) -> Any:
        self._thread.join()
        kind, value = self._out[0]
        if kind == "error":
            raise value
        return value
