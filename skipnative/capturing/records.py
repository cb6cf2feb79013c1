"""numpy dtypes of the native record tables (csrc/core/records.h, field for field)."""

from __future__ import annotations

import numpy as np

from skipnative.trace import API_KINDS  # ApiKind of csrc/core/records.h

LAUNCH_DTYPE = np.dtype(
    [
        ("t_begin", "<u8"),
        ("t_end", "<u8"),
        ("correlation", "<u4"),
        ("tid", "<u4"),
        ("cbid", "<u2"),
        ("domain", "u1"),
        ("kind", "u1"),
        ("_pad", "<u4"),
    ]
)

KERNEL_DTYPE = np.dtype(
    [
        ("t_start", "<u8"),
        ("t_end", "<u8"),
        ("t_queued", "<u8"),
        ("t_submitted", "<u8"),
        ("graph_node_id", "<u8"),
        ("correlation", "<u4"),
        ("name_id", "<u4"),
        ("device", "<u4"),
        ("stream", "<u4"),
        ("graph_id", "<u4"),
        ("grid", "<i4", (3,)),
        ("block", "<i4", (3,)),
        ("_pad", "<u4"),
    ]
)

COPY_DTYPE = np.dtype(
    [
        ("t_start", "<u8"),
        ("t_end", "<u8"),
        ("bytes", "<u8"),
        ("correlation", "<u4"),
        ("device", "<u4"),
        ("stream", "<u4"),
        ("is_set", "u1"),
        ("copy_kind", "u1"),
        ("_pad", "<u2"),
    ]
)

MARKER_DTYPE = np.dtype([("t", "<u8"), ("name_id", "<u4"), ("tid", "<u4")])

__all__ = ["API_KINDS", "COPY_DTYPE", "KERNEL_DTYPE", "LAUNCH_DTYPE", "MARKER_DTYPE"]
