"""Bad input: one clear error naming the file and the problem, never a crash."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import skipnative
from kineto_gen import kernel, launch, write
from load_refusal import load_refused


def raw(tmp_path, text: bytes | str, name="t.json"):
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(p)


def test_missing_file(tmp_path):
    load_refused(str(tmp_path / "nope.json"), "no such file")


def test_directory(tmp_path):
    load_refused(str(tmp_path), "directory")


def test_empty_file(tmp_path):
    load_refused(raw(tmp_path, b""), "empty file")


def test_truncated_gzip(tmp_path):
    good = gzip.compress(json.dumps({"traceEvents": [launch(0, 1, 1)] * 200}).encode())
    load_refused(raw(tmp_path, good[: len(good) // 2], "t.json.gz"), "truncated gzip")


def test_corrupt_gzip(tmp_path):
    good = bytearray(gzip.compress(json.dumps({"traceEvents": []}).encode() * 50))
    good[20:40] = b"\xff" * 20
    load_refused(raw(tmp_path, bytes(good), "t.json.gz"), "gzip")


def test_invalid_json_names_the_byte(tmp_path):
    load_refused(
        raw(tmp_path, '{"traceEvents": [ {"ph": "X",, } ]}'), "invalid JSON at byte 29", "found ','"
    )


def test_truncated_json(tmp_path):
    text = json.dumps({"traceEvents": [launch(0, 1, i) for i in range(50)]})
    load_refused(raw(tmp_path, text[:-100]), "truncated")


@pytest.mark.parametrize(
    "doc,what",
    [("42", "a number"), ('"trace"', "a string"), ("null", "null"), ("true", "a boolean")],
)
def test_wrong_top_level_type(tmp_path, doc, what):
    load_refused(raw(tmp_path, doc), f"top level is {what}")


def test_no_trace_events(tmp_path):
    load_refused(raw(tmp_path, '{"schemaVersion": 1, "deviceProperties": []}'), "no traceEvents")


def test_trace_events_not_a_list(tmp_path):
    load_refused(raw(tmp_path, '{"traceEvents": {"a": 1}}'), "traceEvents is an object")


def test_event_not_an_object_names_its_index(tmp_path):
    load_refused(
        raw(tmp_path, json.dumps({"traceEvents": [launch(0, 1, 1), 17]})),
        "traceEvents[1]",
        "not an object",
    )


@pytest.mark.parametrize(
    "field,value,problem",
    [
        ("ts", "12", "'ts' is not a number"),
        ("dur", None, "'dur' is not a number"),
        ("name", 5, "'name' is not a string"),
    ],
)
def test_malformed_required_field_names_the_event(tmp_path, field, value, problem):
    bad = kernel(10, 5, 2)
    bad[field] = value
    msg = load_refused(
        write(tmp_path / "t.json", [launch(0, 1, 1), kernel(3, 1, 1), bad]),
        "traceEvents[2]",
        problem,
    )
    assert "kernel" in msg


def test_missing_and_negative_duration(tmp_path):
    ev = kernel(10, 5, 2)
    del ev["dur"]
    load_refused(write(tmp_path / "a.json", [ev]), "traceEvents[0]", "missing 'dur'")
    load_refused(write(tmp_path / "b.json", [kernel(10, -5, 2)]), "negative 'dur'")


def test_malformed_fields_of_ignored_events_do_not_matter(tmp_path):
    t = skipnative.load(
        write(
            tmp_path / "t.json",
            [
                {"ph": "i", "ts": "not a number", "name": 3},
                {"ph": "X", "cat": "python_function", "ts": None},
                launch(0, 1, 1),
            ],
        )
    )
    assert len(t.launches) == 1


def test_not_a_trace_at_all(tmp_path):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    load_refused(raw(tmp_path, png, "image.json"), "invalid JSON at byte 0")


def test_hostile_numbers(tmp_path):
    load_refused(write(tmp_path / "a.json", [kernel(1e300, 5, 1)]), "'ts' is out of range")
    ev = kernel(10, 5, 1)
    ev["args"]["correlation"] = 2**70
    load_refused(write(tmp_path / "b.json", [ev]), "out of range")


def test_a_wide_integer_part_with_a_fraction_is_not_wrapped(tmp_path):
    # 2**64 written with a fraction: its 20 integer digits must not be cut to
    # 64 bits (which reads as ts 0) when the fraction's digits are added
    text = '{"traceEvents": [{"ph": "X", "cat": "kernel", "name": "k", "ts": %s, "dur": 1}]}'
    load_refused(raw(tmp_path, text % "18446744073709551616.0", "a.json"), "'ts' is out of range")
    # 22 significant digits before the point, then a fraction and an exponent:
    # 1234567890123456789012.5e-10 us = 123456789012345.67890125 ns, rounded half up
    t = skipnative.load(raw(tmp_path, text % "1234567890123456789012.5e-10", "b.json"))
    assert int(t.gpu["t_start"][0]) == 123456789012346


def test_deep_nesting_is_bounded(tmp_path):
    deep = "[" * 100000 + "]" * 100000
    text = '{"traceEvents": [{"ph": "X", "cat": "x", "args": ' + deep + "}]}"
    load_refused(raw(tmp_path, text), "nesting deeper than")


def test_huge_string_is_read(tmp_path):
    name = "k" * (5 << 20)
    t = skipnative.load(write(tmp_path / "t.json", [launch(0, 1, 1), kernel(2, 1, 1, name)]))
    assert t.strings[t.gpu["name_id"][0]] == name


def test_escapes_and_unicode_names(tmp_path):
    names = ['void k<"q">()', "tab\there", "é√∑", "emoji 🚀", "back\\slash"]
    ev = [launch(i * 10, 1, i) for i in range(len(names))]
    ev += [kernel(i * 10 + 5, 1, i, n) for i, n in enumerate(names)]
    for ensure_ascii in (True, False):
        p = tmp_path / f"t{ensure_ascii}.json"
        p.write_text(json.dumps({"traceEvents": ev}, ensure_ascii=ensure_ascii), encoding="utf-8")
        t = skipnative.load(str(p))
        assert [t.strings[i] for i in t.gpu["name_id"]] == names


def test_array_form_is_accepted(tmp_path):
    t = skipnative.load(raw(tmp_path, json.dumps([launch(0, 1, 1), kernel(5, 1, 1)])))
    assert len(t.gpu) == 1 and len(t.launches) == 1


def test_trailing_garbage(tmp_path):
    load_refused(raw(tmp_path, '{"traceEvents": []} extra'), "trailing data")


@pytest.mark.parametrize(
    "args",
    [["analyze"], ["analyze", "--json"], ["compare", "GOOD"], ["export", "--perfetto", "OUT"]],
)
def test_cli_errors_are_one_line(tmp_path, args):
    bad = raw(tmp_path, '{"traceEvents": [1,]}')
    good = write(tmp_path / "good.json", [launch(0, 1, 1), kernel(2, 1, 1)])
    argv = [a.replace("GOOD", good).replace("OUT", str(tmp_path / "o.json")) for a in args]
    argv = argv[:1] + [bad] + argv[1:]
    r = subprocess.run([sys.executable, "-m", "skipnative", *argv], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stdout == ""
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and bad in lines[0] and lines[0].startswith("skip: error:")


def test_invalid_utf8_names_are_replaced_not_fatal(tmp_path):
    ev = json.dumps({"traceEvents": [launch(0, 1, 1), kernel(2, 1, 1, "NAME")]}).encode()
    p = tmp_path / "t.json"
    p.write_bytes(ev.replace(b"NAME", b"k\x99\xff"))
    t = skipnative.load(str(p))
    assert t.strings[t.gpu["name_id"][0]] == "k\ufffd\ufffd"


def test_error_messages_stay_text_for_binary_names(tmp_path):
    bad = kernel(10, -1, 2, "NAME")
    p = tmp_path / "t.json"
    p.write_bytes(json.dumps({"traceEvents": [bad]}).encode().replace(b"NAME", b"\xff\xfe"))
    load_refused(str(p), "negative 'dur'")


def test_a_file_named_skip_without_the_header_says_so(tmp_path):
    # random bytes, and a JSON document, each named as a capture
    load_refused(raw(tmp_path, bytes(range(7, 200)), "a.skip"), "not a .skip file")
    load_refused(raw(tmp_path, '{"traceEvents": []}', "b.skip"), "not a .skip file")


def test_a_file_named_gz_without_gzip_data_says_so(tmp_path):
    load_refused(raw(tmp_path, bytes(range(7, 200)), "t.json.gz"), "not gzip data")
    load_refused(raw(tmp_path, '{"traceEvents": []}', "u.json.gz"), "not gzip data")
    # gzip data under any name is read as gzip
    doc = gzip.compress(json.dumps({"traceEvents": [launch(0, 1, 1), kernel(2, 1, 1)]}).encode())
    assert len(skipnative.load(raw(tmp_path, doc, "v.json")).launches) == 1


def test_analyze_of_a_trace_with_nothing_in_it_says_so(tmp_path):
    # no launch and no GPU activity: every metric would print as 0
    empty = raw(tmp_path, '{"traceEvents": [{"ph": "X", "cat": "cpu_op", "name": "aten::mm", '
                '"ts": 1, "dur": 2, "pid": 1, "tid": 1}]}', "empty.json")  # fmt: skip
    r = subprocess.run(
        [sys.executable, "-m", "skipnative", "analyze", empty], capture_output=True, text=True
    )
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip() == f"skip: error: {empty}: no launch call and no GPU activity in " \
        "the trace: nothing to analyse"  # fmt: skip


def test_a_folder_with_an_empty_trace_analyses_the_others(tmp_path):
    folder = tmp_path / "ranks"
    folder.mkdir()
    empty = raw(folder, '{"traceEvents": []}', "rank0.json")
    write(folder / "rank1.json", [launch(0, 1, 1), kernel(2, 1, 1)])
    r = subprocess.run(
        [sys.executable, "-m", "skipnative", "analyze", str(folder), "--json"],
        capture_output=True,
        text=True,
    )
    out = json.loads(r.stdout)
    assert r.returncode == 1 and len(out["ranks"]) == 1
    assert out["errors"] == [f"{empty}: no launch call and no GPU activity in the trace: nothing "
                             "to analyse"]  # fmt: skip


@pytest.mark.parametrize("command", ["analyze", "kernels", "compare"])
@pytest.mark.parametrize("window", ["nan:", ":inf", "1e400:", "-inf:5"])
def test_a_window_that_is_no_finite_number_is_one_line(tmp_path, command, window):
    good = write(tmp_path / "t.json", [launch(0, 1, 1), kernel(2, 1, 1)])
    argv = [command, good, *([good] if command == "compare" else []), f"--window={window}"]
    r = subprocess.run([sys.executable, "-m", "skipnative", *argv], capture_output=True, text=True)
    # a bad argument, refused by the parser as any other (exit status 2)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip() == (
        f"skip: error: argument --window: each end a finite number of µs below 1e15, got "
        f"{window!r} (see 'skip {command} --help')"
    )


@pytest.mark.parametrize("command", ["analyze", "kernels", "compare"])
@pytest.mark.parametrize(
    ("window", "what"),
    [
        ("abc", "expected START:END"),
        ("", "expected START:END"),
        ("5", "expected START:END"),
        ("1:x", "expected START:END"),
        ("100:50", "END must be after START"),
        ("7:7", "END must be after START"),
    ],
)
def test_a_malformed_or_empty_window_is_a_bad_argument(tmp_path, command, window, what):
    # exit status 2 and one line naming --window, as every other bad argument;
    # nothing read or computed before the refusal
    good = write(tmp_path / "t.json", [launch(0, 1, 1), kernel(2, 1, 1)])
    argv = [command, good, *([good] if command == "compare" else []), f"--window={window}"]
    r = subprocess.run([sys.executable, "-m", "skipnative", *argv], capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("skip: error: argument --window: "), lines
    assert what in lines[0] and repr(window) in lines[0]


def test_kernels_takes_the_window_of_analyze(tmp_path):
    # the same window (µs from the trace's start) selects the same kernels
    evs = [launch(100 * i, 5, i + 1) for i in range(10)] + [
        kernel(100 * i + 10, 3, i + 1) for i in range(10)
    ]
    t = write(tmp_path / "t.json", evs)

    def run(*a):
        r = subprocess.run([sys.executable, "-m", "skipnative", *a], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    kernels = run("kernels", t, "--window", "200:650", "--json")["kernels"]
    analyzed = run("analyze", t, "--window", "200:650", "--json")["regions"][0]["metrics"]
    assert kernels == analyzed["n_kernels"] == 5  # launches at 200, 300, ..., 600 µs


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["run", "--hook-join", "nonsense", "--", "true"], "invalid choice: 'nonsense'"),
        (["analyze", "T", "--top", "abc"], "invalid int value: 'abc'"),
        (["analyze", "T", "--window", "-5:10"], "--OPTION=VALUE"),
        (["nosuch"], "invalid choice: 'nosuch'"),
    ],
)
def test_a_command_line_the_parser_refuses_is_one_line(tmp_path, argv, fragment):
    good = write(tmp_path / "t.json", [launch(0, 1, 1), kernel(2, 1, 1)])
    argv = [good if a == "T" else a for a in argv]
    r = subprocess.run([sys.executable, "-m", "skipnative", *argv], capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("skip: error: ") and fragment in lines[0]


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["analyze", "T", "--top", "-1"], "--top must be >= 0"),
        (["kernels", "T", "--top", "-1"], "--top must be >= 0"),
        (["fusion", "T", "--threshold", "2"], "--threshold must be in (0, 1]"),
        (["fusion", "T", "--lengths", "x"], "--lengths: expected integers like 2,3, got 'x'"),
        (["whatif", "T", "--fuse-top", "0"], "--fuse-top must be >= 1"),
        (["compare", "T", "T", "--per-iteration", "--window", "0:5"], "choose one"),
        (["sweep", "--batch-sizes", "0", "--out", "RUN"], "at least one size, each >= 1"),
        # demo checked them only on a GPU: exit 0 without one
        (["demo", "--batch-sizes", "0", "--out", "RUN"], "at least one size, each >= 1"),
        (["demo", "--batch-sizes", "x", "--out", "RUN"], "expected integers like 1,2,4"),
        # an empty item is a typo, refused as --whatif-cpu's is, never dropped
        (["sweep", "--batch-sizes", "1,,2", "--out", "RUN"], "in '1,,2': an empty size"),
        (["sweep", "--batch-sizes", "1,2,", "--out", "RUN"], "in '1,2,': an empty size"),
        (["demo", "--batch-sizes", ",4", "--out", "RUN"], "in ',4': an empty size"),
        (["fusion", "T", "--lengths", "2,,3"], "--lengths: in '2,,3': an empty length"),
        (["run"], "no command given"),
        (["run", "--on-demand", "--delay", "1", "--", "true"], "drop --delay/--duration"),
        (["trigger", "--wait", "--duration", "0", "RUN"], "--wait needs a --duration"),
    ],
)
def test_a_command_line_refused_after_parsing_is_refused_as_the_parser_does(tmp_path, argv, said):
    """An option's value or a combination of options checked by the command is
    as much a usage error as one the parser checks: exit status 2 and the
    command's --help named, not 1 like a file or a GPU that fails."""
    good = write(tmp_path / "t.json", [launch(0, 1, 1), kernel(2, 1, 1)])
    argv = [good if a == "T" else str(tmp_path) if a == "RUN" else a for a in argv]
    r = subprocess.run([sys.executable, "-m", "skipnative", *argv], capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == "", r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("skip: error: ") and said in lines[0]
    assert lines[0].endswith(f"(see 'skip {argv[0]} --help')")


@pytest.mark.parametrize(
    "argv", [["analyze"], ["kernels"], ["fusion"], ["whatif"], ["whatif", "--graphs"]]
)
def test_commands_that_compute_refuse_a_trace_with_nothing_in_it(tmp_path, argv):
    empty = raw(tmp_path, '{"traceEvents": []}', "empty.json")
    argv = argv[:1] + [empty] + argv[1:]
    r = subprocess.run([sys.executable, "-m", "skipnative", *argv], capture_output=True, text=True)
    assert r.returncode == 1 and r.stdout == "", r.stderr  # whatif --graphs: internal error
    assert r.stderr.strip() == f"skip: error: {empty}: no launch call and no GPU activity in " \
        "the trace: nothing to analyse"  # fmt: skip


def test_whatif_refuses_chains_that_fuse_nothing(tmp_path):
    t = write(tmp_path / "t.json", [launch(0, 1, 1), kernel(2, 1, 1, "gemm")])
    chains = tmp_path / "chains.json"
    chains.write_text(json.dumps([["not", "here"]]))

    def whatif(*a):
        return subprocess.run(
            [sys.executable, "-m", "skipnative", "whatif", t, *a], capture_output=True, text=True
        )

    r = whatif("--fuse", str(chains))
    assert r.returncode == 1 and "no chain's kernels all occur in" in r.stderr
    r = whatif("--fuse-top", "-1")
    assert r.returncode == 2
    assert r.stderr.strip() == "skip: error: --fuse-top must be >= 1 (see 'skip whatif --help')"


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: p.write_text("[" * 100_000 + "]" * 100_000), "JSON nested too deeply"),
        (lambda p: p.write_text('[["gemm", "gemm"], NaN]'), "[1] is NaN"),
        (lambda p: os.mkfifo(p), "not a regular file"),  # open() waited for a writer
        (None, "not a regular file"),  # /dev/zero: read until memory ran out
    ],
)
def test_whatif_reads_chains_as_any_file(tmp_path, make, problem):
    t = write(tmp_path / "t.json", [launch(0, 1, 1), kernel(2, 1, 1, "gemm")])
    chains = tmp_path / "chains.json"
    if make is None:
        chains = Path("/dev/zero")
    else:
        make(chains)
    argv = [sys.executable, "-m", "skipnative", "whatif", t, "--fuse", str(chains)]

    def cap_memory():  # should /dev/zero be read again, a MemoryError, not this machine's
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, preexec_fn=cap_memory)
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith(f"skip: error: {chains}: cannot read chains: "), r.stderr
    assert problem in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.parametrize("command", ["run", "profile", "sweep"])
def test_hook_join_without_hook_launch_records_is_refused(tmp_path, command):
    argv = [command, "--hook-join", "order", "--out", str(tmp_path / "o")]
    argv += ["--", "true"] if command == "run" else []
    r = subprocess.run([sys.executable, "-m", "skipnative", *argv], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"skip: error: --hook-join order needs --launch-records hook (see 'skip {command} --help')"
    )


@pytest.mark.parametrize("device", [-1, -2, 2**31, 2**32, 2**32 + 1])
def test_a_device_index_outside_what_a_device_can_be_is_refused(tmp_path, device):
    # a GPU row keeps its device in 32 bits: 2**32 + 1 once read as device 1,
    # and a negative index as the event's pid
    k = kernel(10, 5, 1)
    k["args"]["device"] = device
    path = write(tmp_path / "t.json", [launch(1, 2, 1), k])
    load_refused(path, "traceEvents[1]", f"'args.device' {device} is not a device index")


def test_a_device_taken_from_pid_must_be_one_too(tmp_path):
    k = kernel(10, 5, 1)
    del k["args"]["device"]
    k["pid"] = 2**32 + 3
    path = write(tmp_path / "t.json", [launch(1, 2, 1), k])
    load_refused(path, "traceEvents[1]", f"'pid' {2**32 + 3} is not a device index")
    k["pid"] = 3  # without args.device, the pid names the device (older traces)
    t = skipnative.load(write(tmp_path / "ok.json", [launch(1, 2, 1), k]))
    assert t.gpu["device"].tolist() == [3]


@pytest.mark.parametrize("doc", ["not json at all", "nul", "nullx", "tru", "fals", "-x", "1.2.3"])
def test_text_that_only_begins_like_a_json_value_is_invalid_json(tmp_path, doc):
    load_refused(raw(tmp_path, doc), "invalid JSON")


def test_a_top_level_member_that_is_not_utf8_is_one_line(tmp_path):
    # it ended in an internal UnicodeDecodeError, even for a key nothing reads
    load_refused(raw(tmp_path, b'{"foo": "\xff", "traceEvents": []}'), "not valid UTF-8")


@pytest.mark.parametrize(
    ("header", "problem"),
    [(b"[" * 100_000 + b"]" * 100_000, "nested"), (b'{"pid": NaN}', "pid is NaN")],
)
def test_a_run_dump_header_that_is_no_json_is_one_line(tmp_path, header, problem):
    # what `skip run` converts; json.loads let a RecursionError through, and NaN
    import struct

    from skipnative import TraceError
    from skipnative.io.rundump import MAGIC, TRAILER, VERSION, read_dump

    p = tmp_path / "1.1.dump"
    p.write_bytes(struct.pack("<8sII", MAGIC, VERSION, len(header)) + header + TRAILER)
    with pytest.raises(TraceError) as e:
        read_dump(str(p))
    msg = str(e.value)
    assert msg.startswith(f"{p}: corrupted skip run dump: header: "), msg
    assert problem in msg and "\n" not in msg


def test_a_top_level_member_over_the_readers_cap_is_refused_where_read(tmp_path):
    # the reader keeps no member over 1 MiB: an export's regions were dropped so,
    # the file read as a plain Kineto trace without a word
    big = [{"id": 0, "name": "x" * (1 << 20)}]
    events = [launch(0, 1, 1), kernel(2, 1, 1)]
    doc = {"deviceProperties": big, "traceEvents": events}
    load_refused(raw(tmp_path, json.dumps(doc)), "'deviceProperties'", "over the 1 MiB")
    doc = {"skipnative": {"source": "skipnative", "regions": [[0, 1, "x" * (1 << 20), "marker"]]}}
    load_refused(raw(tmp_path, json.dumps({**doc, "traceEvents": events})), "'skipnative'")
    # one that nothing reads is no loss (chrome traces' systemTraceEvents can be big)
    doc = {"systemTraceEvents": big, "traceEvents": events}
    assert len(skipnative.load(raw(tmp_path, json.dumps(doc))).gpu) == 1


def test_lone_surrogates_in_a_kineto_trace_read_alike_and_never_crash(tmp_path):
    # in top-level members they were kept, and `export --skip` crashed on them
    # (UnicodeEncodeError) while an event name's were replaced
    events = [launch(0, 1, 1), kernel(2, 1, 1, name="k\ud800")]
    top = {"traceName": "\ud800x", "deviceProperties": [{"id": 0, "name": "\udc00GPU"}]}
    path = write(tmp_path / "t.json", events, **top)
    bad = "\ufffd" * 3
    t = skipnative.load(path)
    assert t.name(t.gpu["name_id"][0]) == "k" + bad
    assert t.meta["traceName"] == bad + "x" and t.meta["devices"][0]["name"] == bad + "GPU"
    out = tmp_path / "o.skip"
    for argv in (["analyze", path], ["kernels", path], ["export", "--skip", out, path]):
        r = subprocess.run(
            [sys.executable, "-m", "skipnative", *map(str, argv)], capture_output=True, text=True
        )
        assert r.returncode == 0, (argv, r.stderr)
    assert skipnative.load(out).meta["traceName"] == bad + "x"
