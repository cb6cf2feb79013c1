"""Errors that carry a one-line, user-facing message."""


class TraceError(Exception):
    """A trace file could not be read: the message names the file and the problem."""

    def __init__(self, path: str, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
