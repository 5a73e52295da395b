"""The ``chunkring`` command line against real processes: pipe mode (``chunkring call``,
layout.md §17) answers byte for byte what the ring answers, errors exit with their wire
code, and every command's ``--help`` reads and exits 0, through the binary and through
``python -m chunkring``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from chunkring import RequestError
from chunkring import _layout as L

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "python" / "chunkring" / "sample"


def list_body(*items: bytes) -> bytes:
    """The list encoding of layout.md §9.1."""
    import struct

    return struct.pack(f"<I{len(items)}I", len(items), *map(len, items)) + b"".join(items)


def run_cli(worker_bin: str, *args: str, stdin: bytes = b"", cwd: Path | None = None):
    """``chunkring ARGS`` with ``stdin``; Python commands find this interpreter first."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return subprocess.run([worker_bin, *args], input=stdin, capture_output=True,
                          cwd=cwd, env=env, timeout=120)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


#: (op name, op code, params or None, body): one request per op family; names of histories
#: and logs are fresh, so the ring's long-lived worker and a one-shot call start alike.
def requests() -> list[tuple[str, int, dict | None, bytes]]:
    doc = b"# Title\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```py\nx = 1\n```\n[link](http://x)\n"
    aggregate = {"root": str(SAMPLE), "toc": True,
                 "files": [{"path": "README.md", "read": True}, {"path": "inline.py"},
                           {"path": "docs/tasks.md", "read": True, "mode": "outline"}]}
    snaps = [json.dumps({"discussion": [{"role": "user", "text": "hi"}] * i, "tab": i}).encode()
             for i in range(3)]
    history, piped = unique("cli-h"), unique("cli-p")
    return [
        ("echo", L.OP_ECHO, None, b"\x00\x01 any bytes \xff"),
        ("md.render", L.OP_MD_RENDER, {"smart_punctuation": True}, list_body(doc, b"*two*")),
        ("md.outline", L.OP_MD_OUTLINE, None, list_body(doc)),
        ("md.aggregate", L.OP_MD_AGGREGATE, aggregate, list_body(b"def f():\n    ```\n")),
        ("snap.process", L.OP_SNAP_PROCESS, {"encoding": "json"}, list_body(*snaps)),
        ("snap.push", L.OP_SNAP_PUSH, {"name": history, "encoding": "json", "label": "x"}, snaps[1]),
        ("snap.push_many", L.OP_SNAP_PUSH_MANY, {"name": unique("cli-m"), "encoding": "json"},
         list_body(*snaps)),
        ("log.append", L.OP_LOG_APPEND, {"name": unique("cli-log")}, list_body(b"a", b"bc")),
        ("pipeline", L.OP_PIPELINE,
         {"stages": [{"op": L.OP_MD_AGGREGATE, "params": aggregate}, {"op": L.OP_MD_RENDER}]},
         list_body(b"print(1)\n")),
        ("pipeline", L.OP_PIPELINE,
         {"stages": [{"op": L.OP_SNAP_PUSH_MANY, "params": {"name": piped, "encoding": "json"}},
                     {"op": L.OP_SNAP_STATS, "params": {"name": piped}}]},
         list_body(*snaps)),
    ]


@pytest.mark.parametrize("by", ["name", "code"])
def test_call_answers_every_op_as_the_ring_does(client, worker_bin, by):
    for name, op, params, body in requests():
        ring = client.call(op, body, params, timeout=30)
        args = ["call", name if by == "name" else f"{op:#06x}"]
        if params is not None:
            args += ["--params", json.dumps(params)]
        out = run_cli(worker_bin, *args, stdin=body)
        assert out.returncode == 0, (name, out.stderr)
        assert out.stdout == ring, name
        assert out.stderr == b"", name


def test_snapshot_state_lives_for_one_call_and_a_pipeline_chains_it(client, worker_bin):
    name = unique("cli-cursor")
    snap = b'{"a": [1, 2, {"b": null}]}'
    stages = [{"op": L.OP_SNAP_PUSH, "params": {"name": name, "encoding": "json"}},
              {"op": L.OP_SNAP_CURRENT, "params": {"name": name}}]
    ring = client.call(L.OP_PIPELINE, snap, {"stages": stages})
    out = run_cli(worker_bin, "call", "pipeline", "--params", json.dumps({"stages": stages}), stdin=snap)
    assert (out.returncode, out.stdout) == (0, ring)
    # A second call is a fresh worker: the history pushed above is gone.
    out = run_cli(worker_bin, "call", "snap.current", "--params", json.dumps({"name": name}))
    assert out.returncode == L.ERR_NOT_FOUND, out.stderr


def test_info_names_the_same_ops_as_the_ring(client, worker_bin):
    ring = json.loads(client.call(L.OP_INFO))
    out = run_cli(worker_bin, "call", "info")
    piped = json.loads(out.stdout)
    assert piped["ops"] == ring["ops"]
    assert (piped["layout_version"], piped["worker_version"]) == (ring["layout_version"], ring["worker_version"])
    assert piped["chunk_bytes"] == 0  # no ring in pipe mode
    listed = run_cli(worker_bin, "call", "--ops").stdout.decode().split("\n")
    assert [line.split() for line in listed if line] == [[f"{o['code']:#06x}", o["name"]] for o in ring["ops"]]


@pytest.mark.parametrize("op, params, body, code", [
    (0x7777, None, b"", L.ERR_UNKNOWN_OP),
    (L.OP_MD_RENDER, "{not json", list_body(b"x"), L.ERR_BAD_PARAMS),
    (L.OP_MD_RENDER, None, b"\x05\x00", L.ERR_BAD_PAYLOAD),
    (L.OP_MD_RENDER, None, list_body(b"ok", b"bad \xff"), L.ERR_INVALID_UTF8),
    (L.OP_SNAP_UNDO, {"name": "never-pushed"}, b"", L.ERR_NOT_FOUND),
    (L.OP_MD_AGGREGATE, {"root": str(SAMPLE), "files": [{"path": "../../pyproject.toml", "read": True}]},
     b"", L.ERR_PATH_REFUSED),
    (L.OP_MD_AGGREGATE, {"root": str(SAMPLE), "files": [{"path": "missing.md", "read": True}]},
     b"", L.ERR_IO),
])
def test_errors_exit_with_the_wire_code_and_the_rings_message(client, worker_bin, op, params, body, code):
    text = params if isinstance(params, str) else json.dumps(params) if params else None
    args = ["call", str(op)] + (["--params", text] if text else [])
    out = run_cli(worker_bin, *args, stdin=body)
    assert out.returncode == code, out.stderr
    assert out.stdout == b""
    err = out.stderr.decode()
    assert err.count("\n") == 1 and err.startswith("chunkring: call: "), err
    if isinstance(params, str):  # the client only sends JSON it encoded itself
        return
    with pytest.raises(RequestError) as exc:
        client.call(op, body, params)
    assert exc.value.code == code
    assert exc.value.message in err


def test_an_unknown_op_name_is_unknown_op_listing_the_names(worker_bin):
    out = run_cli(worker_bin, "call", "md.rendr")
    assert out.returncode == L.ERR_UNKNOWN_OP
    assert b'unknown op "md.rendr"' in out.stderr and b"md.render" in out.stderr


def test_files_are_concatenated_or_listed(tmp_path, client, worker_bin):
    a, b = tmp_path / "a.md", tmp_path / "b.md"
    a.write_bytes(b"# A\n")
    b.write_bytes(b"*b*\n")
    cat = run_cli(worker_bin, "call", "echo", str(a), str(b))
    assert cat.stdout == b"# A\n*b*\n"
    listed = run_cli(worker_bin, "call", "md.render", "--list", str(a), "-", str(b), stdin=b"from stdin")
    assert listed.stdout == client.call(L.OP_MD_RENDER, list_body(b"# A\n", b"from stdin", b"*b*\n"))
    unlisted = run_cli(worker_bin, "call", "md.render", "--list", "--unlist", str(a), str(b))
    assert unlisted.stdout == b"<h1>A</h1>\n<p><em>b</em></p>\n"
    missing = run_cli(worker_bin, "call", "echo", str(tmp_path / "nope"))
    assert missing.returncode == 1 and b"cannot read" in missing.stderr
    not_a_list = run_cli(worker_bin, "call", "echo", "--unlist", stdin=b"xyz")
    assert not_a_list.returncode == 1 and b"not a list" in not_a_list.stderr


COMMANDS = ["serve", "inspect", "call", "demo", "bench"]


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_help_reads_and_exits_0(worker_bin, command):
    args = ["--help"] if command is None else [command, "--help"]
    for argv in ([worker_bin, *args], [sys.executable, "-m", "chunkring", *args]):
        env = dict(os.environ, PYTHONPATH=str(REPO / "python"))
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 0, (argv, out.stderr)
        assert out.stdout.startswith("usage:") or "usage: chunkring <command>" in out.stdout, out.stdout
        if command:
            assert f"chunkring {command}" in out.stdout
        assert "exit status" in out.stdout.lower().replace("\n", " "), out.stdout
        assert out.stderr == ""


@pytest.mark.parametrize("args", [[], ["bogus"], ["serve"], ["serve", "--name"], ["inspect"],
                                  ["call"], ["call", "echo", "--bogus"], ["demo", "--bogus"],
                                  ["bench", "bogus"]])
def test_bad_usage_exits_2_with_one_line(worker_bin, args):
    out = run_cli(worker_bin, *args)
    assert out.returncode == 2, out
    lines = out.stderr.decode().strip().split("\n")
    assert lines[-1].startswith("chunkring"), out.stderr
    assert b"Traceback" not in out.stderr


def test_version_is_cargo_tomls(worker_bin):
    import chunkring

    cargo = (REPO / "Cargo.toml").read_text()
    version = cargo.split("[package]")[1].split('version = "')[1].split('"')[0]
    out = run_cli(worker_bin, "--version")
    assert out.stdout.decode() == f"chunkring {version} (layout {L.LAYOUT_VERSION})\n"
    assert chunkring.__version__ == version


def test_inspect_of_a_missing_region_fails_with_status_1(worker_bin):
    out = run_cli(worker_bin, "inspect", unique("no-such-region"))
    assert out.returncode == 1 and out.stderr.count(b"\n") == 1, out.stderr


def test_a_missing_binary_is_one_line_without_a_traceback(tmp_path):
    import shutil

    pkg = REPO / "python" / "chunkring"
    shutil.copytree(pkg, tmp_path / "chunkring", ignore=shutil.ignore_patterns("__pycache__"))
    env = {"PATH": str(tmp_path / "empty-bin"), "PYTHONPATH": str(tmp_path)}
    for args in (["--help"], ["serve", "--name", "x"]):
        out = subprocess.run([sys.executable, "-m", "chunkring", *args], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 1
        assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
        assert out.stderr.startswith("chunkring: the worker binary is not installed"), out.stderr


def test_demo_runs_from_a_checkout_build_anywhere(worker_bin, tmp_path):
    out = run_cli(worker_bin, "demo", "--echo", "200", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode()
    assert "aggregate 6 files" in text and "same bytes" in text, text
    assert "history: 50 kept of 60" in text, text
    assert (tmp_path / "out" / "context.html").read_text().count("<h3>") == 6


def test_demo_reports_progress_on_stderr_and_quiet_silences_it(worker_bin, tmp_path):
    out = run_cli(worker_bin, "demo", "--echo", "100", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    steps = [line for line in out.stderr.decode().splitlines() if line.startswith("[")]
    assert [s.split("]")[0] for s in steps] == [f"[{i}/6" for i in range(1, 7)], steps
    assert "aggregate 6 files" in steps[2] and "undo history" in steps[5], steps
    assert "[1/" not in out.stdout.decode()  # progress never mixes into the results
    quiet = run_cli(worker_bin, "demo", "--echo", "0", "--quiet", cwd=tmp_path)
    assert quiet.returncode == 0 and "[1/" not in quiet.stderr.decode(), quiet.stderr


def test_progress_redraws_one_line_on_a_terminal():
    import io

    from chunkring._progress import Progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    p = Progress(2, stream=tty)
    p.start("scan")
    p.note("100 files")  # within 0.1 s of the start: not redrawn
    p.start("aggregate")
    p.done()
    text = tty.getvalue()
    assert "\n" not in text and text.count("\r\x1b[K") == 3, repr(text)
    assert "[1/2] scan" in text and "[2/2] aggregate" in text, repr(text)
