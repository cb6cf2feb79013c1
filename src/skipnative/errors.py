"""Errors that carry a one-line, user-facing message."""


class TraceError(Exception):
    """A trace file could not be read: the message names the file and the problem."""

    def __init__(self, path: str, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class OutputExistsError(TraceError):
    """An output file exists and was not to be replaced. The message names the
    Python API's way to replace it (overwrite=True); `skip` says --force instead."""

    def __init__(self, path: str):
        super().__init__(path, "already exists (pass overwrite=True to replace it)")
