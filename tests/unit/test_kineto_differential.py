"""The native Kineto reader against Python's json on generated documents.

Every valid document gives the values a reading of SPEC.md §3's input rules
derives from ``json.loads`` (numbers exact, via Decimal), or a clear error
naming the first event whose used number does not fit 64-bit nanoseconds;
every document that strict ``json.loads`` refuses, the reader refuses too.
Documents are ASCII: the reader does not validate UTF-8 (names are decoded
with replacement), which is the one place it is more lenient than json.
"""

from __future__ import annotations

import decimal
import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skipnative import _native
from skipnative.io.kineto import record_dtypes

INT64 = (-(2**63), 2**63 - 1)
CTX = decimal.Context(prec=2000, Emax=10**6, Emin=-(10**6))
KEPT = {
    "kernel": "gpu",
    "gpu_memcpy": "gpu",
    "gpu_memset": "gpu",
    "cuda_runtime": "launch",
    "cuda_driver": "launch",
    "cpu_op": "op",
}


ABSENT = object()


class Raw(str):
    """A number written exactly as its text."""


def dump(v) -> str:
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {dump(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(dump(x) for x in v) + "]"
    return json.dumps(v)


digits = st.text("0123456789", min_size=1, max_size=25)
int_text = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(
        [
            "0",
            "-0",
            str(2**63 - 1),
            str(-(2**63)),
            str(2**63),
            "340282366920938463463374607431768212",
        ]
    ),
)
number_text = st.one_of(
    int_text,
    st.builds(lambda i, f: f"{i}.{f}", int_text, digits),
    st.builds(
        lambda m, e: f"{m}e{e}",
        st.sampled_from(["1", "1.5", "-2.25", "0", "9.999"]),
        st.integers(-30, 30),
    ),
)
numbers = number_text.map(Raw)
scalars = st.one_of(
    st.none(), st.booleans(), numbers, st.text(st.characters(codec="ascii"), max_size=8)
)
junk = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.text("abcxyz", max_size=4), inner, max_size=3),
    ),
    max_leaves=8,
)
used_value = st.one_of(numbers, numbers, numbers, st.sampled_from(["0x0", "128"]), st.none())


@st.composite
def events(draw):
    e = {"ph": draw(st.sampled_from(["X", "X", "X", "i", "f"]))}
    e["cat"] = draw(st.sampled_from([*KEPT, "user_annotation", "ac2g", "python_function"]))
    e["name"] = draw(
        st.one_of(st.text(st.characters(codec="ascii"), max_size=12), st.just("ProfilerStep#3"))
    )
    for k in ("ts", "dur"):
        if draw(st.integers(0, 9)):
            e[k] = draw(used_value)
    for k in ("pid", "tid"):
        if draw(st.booleans()):
            e[k] = Raw(draw(int_text))
    args = {}
    for k in ("correlation", "device", "stream", "bytes", "cbid", "External id"):
        if draw(st.booleans()):
            args[k] = draw(used_value)
    if draw(st.booleans()):
        args["Input Dims"] = draw(junk)
    if args or draw(st.booleans()):
        e["args"] = args
    if draw(st.booleans()):
        e["extra"] = draw(junk)
    keys = list(e)
    draw(st.randoms(use_true_random=False)).shuffle(keys)
    return {k: e[k] for k in keys}


def strict_loads(text: str):
    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_float=decimal.Decimal, parse_constant=refuse)


def to_int(v, scale: int):
    """(value, problem): the reader's fit rules written from the JSON value."""
    if isinstance(v, bool) or not isinstance(v, (int, decimal.Decimal)):
        return None, "is not a number"
    d = CTX.multiply(decimal.Decimal(v), decimal.Decimal(10) ** scale)
    if scale == 0 and d != d.to_integral_value(context=CTX):
        return None, "is not an integer"
    n = int(d.to_integral_value(rounding=decimal.ROUND_HALF_UP, context=CTX))
    if not INT64[0] <= n <= INT64[1]:
        return None, "is out of range"
    return n, None


def expected_row(i: int, e: dict):
    """('ignored', None), (table, row) or ('error', (index, field))."""
    if e.get("ph") != "X" or not isinstance(e.get("cat"), str):
        return "ignored", None
    name = e.get("name", "")
    # every user_annotation range (a record_function region when named), and
    # ProfilerStep#N also where older traces write it as a cpu_op
    step = e["cat"] == "user_annotation" or (
        e["cat"] == "cpu_op" and name.startswith("ProfilerStep#")
    )
    table = "step" if step else KEPT.get(e["cat"])
    if table is None:
        return "ignored", None
    args = e.get("args", {})
    used = [("ts", e.get("ts", ABSENT), 3, True), ("dur", e.get("dur", ABSENT), 3, True)]
    used += [(k, e.get(k, ABSENT), 0, False) for k in ("pid", "tid")]
    if table in ("gpu", "launch"):
        used.append(("args.correlation", args.get("correlation", ABSENT), 0, False))
    if table == "gpu":
        used += [(f"args.{k}", args.get(k, ABSENT), 0, False) for k in ("device", "stream")]
    got = {}
    for field, v, scale, required in used:
        key = field.split(".")[-1]
        if v is ABSENT:
            if required:
                return "error", (i, f"missing '{field}'")
            continue
        n, problem = to_int(v, scale)
        if problem:
            return "error", (i, f"'{field}' {problem}")
        got[key] = n
    if got["dur"] < 0:
        return "error", (i, "negative 'dur'")
    if got["ts"] + got["dur"] > INT64[1]:
        return "error", (i, "'ts' + 'dur'")
    if table == "gpu":  # the device, args.device or else the pid, is a 32-bit index
        field = "args.device" if "device" in got else "pid"
        if not 0 <= got.get(field.split(".")[-1], 0) <= 2**31 - 1:
            return "error", (i, f"'{field}' {got[field.split('.')[-1]]} is not a device index")
    row = {"ts": got["ts"], "dur": got["dur"], "name": name}
    if table in ("gpu", "launch"):
        row["correlation"] = got.get("correlation", -1)
    if table == "gpu":
        stream = got.get("stream", -1)
        row["device"] = got["device"] if "device" in got else got.get("pid", 0)
        row["stream"] = stream if stream >= 0 else got.get("tid", 0)
    return table, row


def read(text: bytes, cuts: list[int]):
    r = _native.KinetoReader()
    prev = 0
    for c in sorted(set(cuts)):
        r.feed(text[prev:c])
        prev = c
    r.feed(text[prev:])
    r.finish()
    return r


def rows_of(r):
    strings = [b.decode("ascii") for b in r.strings()]
    out = {"gpu": [], "launch": [], "op": []}
    for table, raw, dtype in (
        ("gpu", r.gpu(), record_dtypes()["gpu"]),
        ("launch", r.launches(), record_dtypes()["launch"]),
        ("op", r.ops(), record_dtypes()["op"]),
    ):
        for x in raw.view(dtype):
            row = {"ts": int(x["ts"]), "dur": int(x["dur"]), "name": strings[x["name_id"]]}
            if table != "op":
                row["correlation"] = int(x["correlation"])
            if table == "gpu":
                row["device"], row["stream"] = int(x["device"]), int(x["stream"])
            out[table].append(row)
    out["step"] = len(r.steps().view(record_dtypes()["step"]))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events(), max_size=6), st.lists(st.integers(0, 4000), max_size=4))
def test_valid_documents_agree_with_json(evs, cuts):
    text = dump({"schemaVersion": 1, "traceEvents": evs}).encode()
    doc = strict_loads(text.decode())
    want = {"gpu": [], "launch": [], "op": [], "step": 0}
    error = None
    for i, e in enumerate(doc["traceEvents"]):
        kind, row = expected_row(i, e)
        if kind == "error":
            error = row
            break
        if kind == "step":
            want["step"] += 1
        elif kind != "ignored":
            want[kind].append(row)
    if error:
        with pytest.raises(_native.TraceReadError) as exc:
            read(text, cuts)
        msg = str(exc.value)
        assert msg.startswith(f"traceEvents[{error[0]}]:") and error[1] in msg, (msg, error)
        assert "\n" not in msg
    else:
        assert rows_of(read(text, cuts)) == want


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events(), min_size=1, max_size=4), st.randoms(use_true_random=False))
def test_documents_json_refuses_are_refused(evs, rnd: random.Random):
    text = bytearray(dump({"traceEvents": evs}).encode())
    for _ in range(rnd.randint(1, 3)):
        i = rnd.randrange(len(text))
        if rnd.random() < 0.5:
            del text[i : i + rnd.randint(1, 3)]
        else:
            text[i:i] = bytes(
                rnd.choice(b'{}[],:"\\0123456789.eE+-tfnul \t') for _ in range(rnd.randint(1, 3))
            )
    try:
        strict_loads(text.decode())
    except decimal.InvalidOperation:
        return  # JSON, with a number past Decimal's exponents (1e99999999999999999999)
    except ValueError:
        pass
    else:
        return  # still JSON: the other test's ground
    with pytest.raises(_native.TraceReadError):
        read(bytes(text), [rnd.randrange(len(text) + 1)])
