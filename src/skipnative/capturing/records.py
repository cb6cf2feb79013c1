"""What the native record tables hold, beyond their dtypes.

The dtypes of the tables a capture returns are defined once, on the C++ row
structs (csrc/core/records.h, registered in csrc/bindings/register_session.cpp):
``skipnative._native.record_dtypes()`` returns them, and ``Capture.raw()``'s
arrays carry them.
"""

from __future__ import annotations

from skipnative.trace import API_KINDS  # ApiKind of csrc/core/records.h

__all__ = ["API_KINDS"]
