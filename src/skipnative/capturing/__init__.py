"""The native session's Python face: loading the compiled module and libcupti,
the capture session, and conversion of its record tables into a Trace.

Named `capturing`, not `capture`: `skipnative.capture` is the function."""
