"""Soak: mixed requests of random sizes while the worker is SIGKILLed at random moments, on a
client spawned with ``restart=True`` (issue 11 "Continuous evidence", layout.md §12 "Client
recovery").

Every request is answered once with the right answer (echo bytes, markdown renders and
aggregates against references, history undo/redo against a Python model, log lengths) or
raises the documented :class:`WorkerRestarted` (history and log requests only). Between kill
segments a quiet segment checks that the worker's open fds stay equal and its RSS grows less
than ``RSS_GROWTH_BOUND_KB`` over its requests (8 MiB over 2,000 mixed requests), and that the client's own fds and region
mappings stay flat from one quiet segment to the next (no dead worker's parts pile up).

The suite runs it for ``CHUNKRING_SOAK_SECONDS`` (default 10); set it to e.g. 300 for a long
run (``-s`` shows the figures printed at the end), and ``CHUNKRING_SOAK_HARSH=1`` to kill the
new worker again while the client is still restarting (deaths within a restart).
"""

from __future__ import annotations

import marshal
import os
import random
import signal
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

from chunkring import Client, WorkerRestarted
from chunkring import _layout as L
from chunkring._aggregate_py import aggregate_py
from conftest import SMALL_RING_BYTES

SOAK_SECONDS = float(os.environ.get("CHUNKRING_SOAK_SECONDS") or 10)
#: ``CHUNKRING_SOAK_HARSH=1``: kill again while the client is still restarting (nested deaths).
HARSH = os.environ.get("CHUNKRING_SOAK_HARSH") == "1"
#: Requests of a quiet segment before its first reading, and between its two readings
#: (more in a long run).
WARM_UP_OPS = 300
MEASURED_OPS = 2000 if SOAK_SECONDS <= 20 else 20_000
#: How much the worker's RSS may grow over MEASURED_OPS requests: generous for allocator
#: noise, small next to a leak of what the requests carry (echoes up to 200 KB each).
RSS_GROWTH_BOUND_KB = 8 * 1024
HISTORY_CAPACITY = 30


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _client_regions() -> int:
    """Distinct chunkring regions mapped into this process."""
    maps = Path("/proc/self/maps").read_text().splitlines()
    return len({line.split()[-2] if line.endswith("(deleted)") else line.split()[-1]
                for line in maps if "/chunkring-" in line})


class RefHistory:
    """The history semantics of layout.md §9.3 (push drops the redo branch, capacity evicts
    the oldest; undo/redo at an end return None)."""

    def __init__(self, capacity: int, entries=(), cursor=None):
        self.capacity = capacity
        self.entries = list(entries)
        self.cursor = cursor

    def copy(self) -> "RefHistory":
        return RefHistory(self.capacity, self.entries, self.cursor)

    def push(self, snap) -> None:
        keep = self.entries[: self.cursor + 1] if self.cursor is not None else []
        self.entries = (keep + [snap])[-self.capacity:]
        self.cursor = len(self.entries) - 1

    def undo(self):
        if not self.cursor:
            return None
        self.cursor -= 1
        return self.entries[self.cursor]

    def redo(self):
        if self.cursor is None or self.cursor == len(self.entries) - 1:
            return None
        self.cursor += 1
        return self.entries[self.cursor]

    def current(self):
        return None if self.cursor is None else self.entries[self.cursor]


class Killer(threading.Thread):
    """SIGKILLs the client's worker at random moments while ``active``; after each kill it
    waits until the client has restarted before the next one (``HARSH``: 0-30 ms after a
    kill, often during the restart or the requests sent again)."""

    def __init__(self, client: Client, rng: random.Random):
        super().__init__(daemon=True)
        self.client = client
        self.rng = rng
        self.active = threading.Event()
        self.stop = threading.Event()
        self.kills = 0
        self.killed = 0  # the pid killed last

    def run(self) -> None:
        while not self.stop.is_set():
            if not self.active.wait(0.05):
                continue
            time.sleep(self.rng.uniform(0.0, 0.03) if HARSH else self.rng.uniform(0.1, 0.6))
            if not self.active.is_set() or self.stop.is_set():
                continue
            before, pid = self.client.restarts, self.client.pid
            if pid == self.killed:
                continue  # killed already; the client has not noticed yet
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            self.killed = pid
            self.kills += 1
            while (self.client.restarts == before and not self.stop.is_set()
                   and not (HARSH and self.rng.random() < 0.5)):
                time.sleep(0.005)


class Soak:
    """The request mix, its references and its tallies."""

    def __init__(self, client: Client, rng: random.Random, tmp: Path):
        self.c = client
        self.rng = rng
        self.noise = rng.randbytes(256 * 1024)
        self.seq = 0
        self.requests = 0
        self.answered = Counter()
        self.raised = Counter()
        self.docs = [f"# Doc {i}\n\n" + "Some *text* with `code` and [a link](http://x/{i}).\n\n"
                     * (1 + i * 7) + "| a | b |\n|---|---|\n| 1 | 2 |\n" for i in range(12)]
        self.html = [client.markdown.render(d) for d in self.docs]  # the reference renders
        self.root = tmp / "files"
        self.root.mkdir()
        self.files = []
        for i in range(6):
            name = f"f{i}.{'py' if i % 2 else 'md'}"
            (self.root / name).write_text(f"line {i}\n```\nfenced\n```\n" * (i * 20 + 1))
            self.files.append(name)
        self.h = client.history("soak", capacity=HISTORY_CAPACITY)
        self.model = RefHistory(HISTORY_CAPACITY)
        self.save_paths = [tmp / "soak-a.hist", tmp / "soak-b.hist"]
        self.saves = 0
        # A save that meets a death may or may not have replaced its file: never the last
        # confirmed one's, which the history is reopened from.
        self.saved_path = self.save_paths[0]
        self.h.save(self.saved_path)
        self.saved = self.model.copy()
        #: The GUI's live state, stepped by ``undo(into=)``/``redo(into=)``: always the
        #: model's current snapshot (None while the history is empty).
        self.live = None
        self.log = client.log("soak-log")
        self.log_len = 0
        self.log_restarts = client.restarts

    # ------------------------------------------------------------------ one request
    def step(self) -> None:
        r = self.rng.random()
        if r < 0.35:
            self.echo()
        elif r < 0.45:
            self.batch()
        elif r < 0.55:
            self.render()
        elif r < 0.60:
            self.aggregate()
        elif r < 0.88:
            self.history()
        else:
            self.append()

    def body(self) -> bytes:
        self.seq += 1
        r = self.rng.random()
        size = (self.rng.randrange(64) if r < 0.4 else self.rng.randrange(64, 4096) if r < 0.7
                else self.rng.randrange(4096, 40_000) if r < 0.9
                else self.rng.randrange(40_000, 200_000))  # over the 64 KiB ring: fragments
        start = self.rng.randrange(len(self.noise) - size + 1)
        return b"%d:" % self.seq + self.noise[start:start + size]

    def echo(self) -> None:
        b = self.body()
        self.requests += 1
        assert self.c.echo(b) == b
        self.answered["echo"] += 1

    def batch(self) -> None:
        bodies = [self.body() for _ in range(self.rng.randrange(1, 16))]
        self.requests += len(bodies)
        handles = [self.c.submit(L.OP_ECHO, b) for b in bodies]
        assert [h.result() for h in handles] == bodies
        self.answered["echo (submitted)"] += len(bodies)

    def render(self) -> None:
        i = self.rng.randrange(len(self.docs))
        self.requests += 1
        assert self.c.markdown.render(self.docs[i]) == self.html[i]
        self.answered["render"] += 1

    def aggregate(self) -> None:
        files = self.rng.sample(self.files, self.rng.randrange(1, len(self.files) + 1))
        self.requests += 1
        assert str(self.c.markdown.aggregate(files, root=self.root)) == aggregate_py(self.root, files)
        self.answered["aggregate"] += 1

    def history(self) -> None:
        r = self.rng.random()
        kind = ("push" if r < 0.5 else "undo" if r < 0.62 else "redo" if r < 0.72 else
                "undo into" if r < 0.84 else "redo into" if r < 0.95 else "save")
        if kind.endswith("into") and self.live is None:
            kind = kind.split()[0]
        self.requests += 1
        try:
            if kind == "push":
                self.seq += 1
                snap = {"n": self.seq, "files": [f"f{j}" for j in range(self.rng.randrange(8))],
                        "text": "t" * self.rng.randrange(2000)}
                self.h.push(snap)
                self.model.push(marshal.loads(marshal.dumps(snap)))
                self.live = snap  # (the live state is the dict last pushed)
            elif kind == "undo":
                got = self.h.undo()
                assert got == self.model.undo()
                self.live = got if got is not None else self.live
            elif kind == "redo":
                got = self.h.redo()
                assert got == self.model.redo()
                self.live = got if got is not None else self.live
            elif kind in ("undo into", "redo into"):
                # Steps held ahead and told later (layout.md §9.3 "Steps ahead"): the live
                # state must follow the model at every step, a kill or not.
                want = self.model.undo() if kind == "undo into" else self.model.redo()
                moved = getattr(self.h, kind.split()[0])(into=self.live)
                assert (moved is None) == (want is None), (kind, moved, want)
                assert self.live == self.model.current()
            else:
                self.saves += 1
                path = self.save_paths[self.save_paths[0] == self.saved_path]
                self.h.save(path)
                self.saved, self.saved_path = self.model.copy(), path
        except WorkerRestarted as e:
            assert e.history == "soak" or "was not sent again" in str(e), e
            self.raised[f"history {kind}"] += 1
            self.model = self.saved.copy()  # reopened from its last save
            self.resync()
            return
        self.answered[f"history {kind}"] += 1

    def append(self) -> None:
        if self.c.restarts != self.log_restarts:  # logs are not reopened (layout.md §12)
            self.log_restarts, self.log_len = self.c.restarts, 0
        self.requests += 1
        try:
            n = self.log.append(b"record %d" % self.seq)
        except WorkerRestarted:
            self.raised["log append"] += 1
            self.log_restarts, self.log_len = self.c.restarts, 0
            return
        self.log_len += 1
        assert n == self.log_len
        self.answered["log append"] += 1

    def resync(self) -> None:
        """After a restart the live state is set back to the reopened history's current
        snapshot, as a GUI would."""
        current = self.model.current()
        self.live = None if current is None else marshal.loads(marshal.dumps(current))

    def check_history(self) -> None:
        """The worker's history equals the model (a restart raises once, then it does)."""
        for _ in range(3):
            try:
                assert self.h.current() == self.model.current()
                assert len(self.h) == len(self.model.entries)
                return
            except WorkerRestarted:
                self.raised["history check"] += 1
                self.model = self.saved.copy()
                self.resync()
        raise AssertionError("the history kept raising WorkerRestarted")


def test_soak_mixed_requests_through_random_worker_kills(worker_bin, tmp_path):
    seed = int(os.environ.get("CHUNKRING_SOAK_SEED") or time.time_ns() % 10**9)
    print(f"\nsoak seed {seed} (CHUNKRING_SOAK_SEED)")
    rng = random.Random(seed)
    name = f"soak-{uuid.uuid4().hex[:8]}"
    c = Client.spawn(name, ring_bytes=SMALL_RING_BYTES, worker=worker_bin, restart=True,
                     max_restarts=1000 if HARSH else 10, restart_window=0.05 if HARSH else 1.0)
    killer = Killer(c, rng)
    killer.start()
    quiet: list[dict] = []
    try:
        soak = Soak(c, rng, tmp_path)
        end = time.monotonic() + SOAK_SECONDS
        while True:
            # A kill segment: requests while the worker is killed at random moments.
            killer.active.set()
            segment_end = min(end, time.monotonic() + max(2.0, SOAK_SECONDS / 8))
            while time.monotonic() < segment_end:
                soak.step()
            killer.active.clear()
            while killer.is_alive() and c.restarts < killer.kills:
                soak.echo()  # meets the last kill, if it has not yet
            # A quiet segment: no kill; the worker's fds and RSS stay flat.
            soak.check_history()
            for _ in range(WARM_UP_OPS):
                soak.step()
            pid, restarts = c.pid, c.restarts
            start = dict(rss_kb=_rss_kb(pid), fds=_fds(pid), requests=soak.requests)
            for _ in range(MEASURED_OPS):
                soak.step()
            soak.check_history()
            assert (c.pid, c.restarts) == (pid, restarts)  # nothing died in a quiet segment
            quiet.append(dict(
                pid=pid, rss_start_kb=start["rss_kb"], rss_end_kb=_rss_kb(pid),
                fds_start=start["fds"], fds_end=_fds(pid), requests=soak.requests - start["requests"],
                client_fds=_fds(os.getpid()), client_regions=_client_regions()))
            if time.monotonic() >= end and len(quiet) >= 2:
                break
        killer.stop.set()
        killer.join(5)
        assert c.restarts == killer.kills >= 1
        assert sum(soak.answered.values()) + sum(soak.raised.values()) == soak.requests + \
            soak.raised["history check"]
        assert set(soak.raised) <= {"history push", "history undo", "history redo",
                                    "history undo into", "history redo into",
                                    "history save", "history check", "log append"}
        for q in quiet:
            assert q["fds_end"] == q["fds_start"], q
            assert q["rss_end_kb"] - q["rss_start_kb"] < RSS_GROWTH_BOUND_KB, q
        # The client itself: the same fds and at most two regions mapped (the worker's and the
        # last dead one's, kept until the next restart) in every quiet segment. A death during
        # a restart (HARSH) keeps the parts of the worker before until the next restart too.
        fds = {q["client_fds"] for q in quiet}
        assert max(fds) - min(fds) <= (4 if HARSH else 0), quiet
        assert all(q["client_regions"] <= (3 if HARSH else 2) for q in quiet), quiet
        print(f"\nsoak {SOAK_SECONDS:g} s: {soak.requests} requests, {killer.kills} kills, "
              f"{c.restarts} restarts; answered {dict(soak.answered)}; raised {dict(soak.raised)}")
        for q in quiet:
            print(f"  quiet segment pid {q['pid']}: {q['requests']} requests, RSS "
                  f"{q['rss_start_kb']} -> {q['rss_end_kb']} KiB, fds {q['fds_start']} -> "
                  f"{q['fds_end']}; client fds {q['client_fds']}, regions {q['client_regions']}")
    finally:
        killer.stop.set()
        c.close()
    assert not [f for f in os.listdir("/dev/shm") if f.startswith(f"chunkring-{name}")]
