"""Files whole: written so that no reader ever sees a partial one, read in one go."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Iterator

from skipnative.errors import OutputExistsError, TraceError


def refuse_output(path: str, *, overwrite: bool) -> None:
    """An output `path` that is no regular file (a FIFO, a device, a folder; a link
    to one) is refused whatever `overwrite` says: renaming over it would replace,
    not write, it. An existing file is refused unless `overwrite`, which must be
    True or False: a str such as "no" is truthy, and would replace the file."""
    if not _is_bool(overwrite):
        raise TypeError(f"overwrite: expected True or False, not {overwrite!r}")
    if not path:  # its folder would be the current one's parent, and no file is named
        raise ValueError("the output path is empty: name the file to write")
    target = os.path.realpath(path) if os.path.islink(path) else path
    if os.path.exists(target) and not os.path.isfile(target):
        raise TraceError(path, "exists and is not a regular file; only a file is replaced")
    if os.path.exists(path) and not overwrite:
        raise OutputExistsError(path)


def _is_bool(value: object) -> bool:
    """A bool, or numpy's (numpy is not imported for it)."""
    np = sys.modules.get("numpy")
    return isinstance(value, bool) or (np is not None and isinstance(value, np.bool_))


@contextlib.contextmanager
def atomic_output(path: str, *, overwrite: bool) -> Iterator:
    """Yields a temporary binary file in `path`'s folder; on success it is flushed to
    disk and renamed to `path` (refusing to replace an existing file unless
    `overwrite`); on failure it is removed. A link is written through (its
    target replaced); what is no regular file (a FIFO, a device, a folder) is
    refused: renaming over it would replace, not write, it."""
    refuse_output(path, overwrite=overwrite)
    target = os.path.realpath(path) if os.path.islink(path) else path
    folder = os.path.dirname(os.path.abspath(target))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".skipnative-", suffix=".tmp", dir=folder)
    except OSError as e:  # named by the output asked for, not by the temporary file
        why = "no such folder" if not os.path.exists(folder) else (e.strerror or str(e))
        raise TraceError(path, f"cannot write: {why} ({folder})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if not overwrite and os.path.exists(target):  # appeared while we wrote
            raise OutputExistsError(path)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual mode
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_whole(path: str) -> bytes:
    """The bytes of `path`; one that cannot be read is a TraceError naming it."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise TraceError(path, f"cannot read: {e.strerror or e}") from None


def read_regular(path: str, limit: int | None) -> bytes | None:
    """The bytes of the regular file `path` (None where there is none), at most
    `limit` of them (None: any number). Anything else is a TraceError naming it: a FIFO (which would
    block the open until a writer came), a device such as /dev/zero (which never
    ends), a folder, a longer file, one that cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise TraceError(path, e.strerror or str(e)) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise TraceError(path, "is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise TraceError(path, "not a regular file")
        if limit is None:
            with os.fdopen(fd, "rb", closefd=False) as f:
                return f.read()
        too_long = f"longer than {limit:,} bytes"
        if st.st_size > limit:
            raise TraceError(path, too_long)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)  # a file still growing is cut off here
        if len(data) > limit:
            raise TraceError(path, too_long)
        return data
    except OSError as e:
        raise TraceError(path, e.strerror or str(e)) from None
    finally:
        os.close(fd)
