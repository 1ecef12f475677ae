"""Abuse and limits: a connection flood past max_clients, a slow-loris
swarm, clients that never read, a 100 MB stream of garbage.  During each,
the node keeps answering another client, and its memory stays bounded.

Memory is read from /proc/PID/status (VmRSS, VmHWM).  Each test runs
against two builds of herd-node: the release build (bin/, or
HERD_RELEASE_BIN), whose numbers are the meaningful ones and get the tight
bounds, and the build under test (HERD_BIN, the ASan/UBSan build in make
test), which catches memory errors on these paths; ASan's shadow memory
and its quarantine of freed blocks (capped here at 16 MB with
ASAN_OPTIONS) inflate RSS, so its bounds are looser.  Set HERD_ABUSE_VERBOSE=1
to print the numbers."""

import os
import random
import resource
import select
import socket
import time

import pytest

from herdlib import BIN, REPO, Client, Drain, Herd, port_open, wait_for

KIWI = "IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"
MB = 1 << 20

RELEASE = os.path.join(os.environ.get("HERD_RELEASE_BIN") or
                       os.path.join(REPO, "bin"), "herd-node")
UNDER_TEST = os.path.join(BIN, "herd-node")


def _is_asan(path):
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def _builds():
    out = []
    if os.path.exists(RELEASE) and not _is_asan(RELEASE):
        out.append(pytest.param(RELEASE, id="release"))
    if os.path.realpath(UNDER_TEST) != os.path.realpath(RELEASE):
        out.append(pytest.param(UNDER_TEST, id="herd_bin"))
    return out or [pytest.param(UNDER_TEST, id="herd_bin")]


@pytest.fixture(params=_builds())
def node(request, procs, tmp_path):
    """start(herd={...}) -> a one-node herd of the chosen build."""
    path = request.param

    def start(**herd):
        h = Herd(procs, tmp_path, topology={"Hill": []}, herd=herd)
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = ":".join(filter(None, [
            env.get("ASAN_OPTIONS", ""), "quarantine_size_mb=16"]))
        p = procs.start([path, "-c", h.ini, "Hill"], cwd=h.dir, env=env)
        h.procs["Hill"] = p
        wait_for(lambda: port_open(h.ports["Hill"]) or p.poll() is not None,
                 what="the node to listen")
        assert p.poll() is None, p.stderr.read()
        h.asan = _is_asan(path)
        h.pid = p.pid
        return h
    return start


def mem(pid):
    """(VmRSS, VmHWM) in bytes."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) * 1024
    return out["VmRSS"], out["VmHWM"]


def record(h, what, before, after):
    """Say the numbers (HERD_ABUSE_VERBOSE=1), and return the growth of
    the high-water mark over the RSS before the abuse."""
    growth = after[1] - before[0]
    line = ("abuse %s (%s): VmRSS before %.1f MB, after %.1f MB; "
            "VmHWM %.1f MB; peak over baseline %.1f MB\n" % (
                what, "asan" if h.asan else "release", before[0] / MB,
                after[0] / MB, after[1] / MB, growth / MB))
    if os.environ.get("HERD_ABUSE_VERBOSE"):
        os.write(2, line.encode())
    with open(os.path.join(h.dir, "memory.txt"), "a") as f:
        f.write(line)
    return growth


def bound(h, release_mb):
    return (release_mb * 3 + 64) * MB if h.asan else release_mb * MB


def answers(c):
    assert c.request(KIWI).startswith(b"AT Hill ")


def raise_fd_limit(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))


def test_connection_flood(node):
    """Waves of hundreds of connections past max_clients: the ones beyond
    max_clients + 64 get one line and a close; the client that was there
    first is served all along; the slots come back."""
    raise_fd_limit(4096)
    h = node(max_clients="50")
    port = h.ports["Hill"]
    bystander = h.client("Hill")
    answers(bystander)
    before = mem(h.pid)
    refused_total = 0
    for wave in range(3):
        socks = []
        for _ in range(600):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            socks.append(s)
        answers(bystander)
        # Read every connection until each is closed or quiet; those
        # refused got exactly one line.
        got = {s: b"" for s in socks}
        closed = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            live = [s for s in socks if s not in closed]
            r, _, _ = select.select(live, [], [], 0.5)
            if not r:
                # Quiet for half a second: whoever is left is being served.
                if len(live) <= 50 + 64:
                    break
                continue
            for s in r:
                try:
                    chunk = s.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    chunk = b""
                if chunk:
                    got[s] += chunk
                else:
                    closed.add(s)
        refused = [s for s in closed if got[s]]
        assert all(got[s] == b"? too many clients\n" for s in refused)
        held = [s for s in socks if s not in closed]
        assert len(held) <= 50 + 64, len(held)
        assert len(refused) >= 600 - (50 + 64) - 1, len(refused)
        refused_total += len(refused)
        # A held one is a real client.
        if held:
            s = held[0]
            s.setblocking(True)
            s.settimeout(10)
            s.sendall((KIWI + "\n").encode())
            assert s.recv(4096).startswith(b"AT Hill ")
        for s in socks:
            s.close()
        answers(bystander)
    # Once the flood is gone, new clients get in again.
    wait_for(lambda: _served_fresh(port), timeout=15, interval=0.2,
             what="a fresh client to be served")
    after = mem(h.pid)
    growth = record(h, "connection flood, 1800 connects, %d refused"
                    % refused_total, before, after)
    assert growth < bound(h, 32), growth


def _served_fresh(port):
    try:
        c = Client(port, timeout=5)
        try:
            return c.request(KIWI).startswith(b"AT Hill ")
        finally:
            c.close()
    except (OSError, EOFError):
        return False


def test_slow_loris_swarm(node):
    """Hundreds of connections dribble bytes.  A line must be finished
    within idle_timeout_s of its first byte: those that stall, and those
    that keep dribbling a byte at a time, are dropped alike; those that
    finish in time are answered; a bystander is served throughout."""
    raise_fd_limit(4096)
    h = node(idle_timeout_s="2", max_line="256")
    port = h.ports["Hill"]
    bystander = h.client("Hill")
    answers(bystander)
    before = mem(h.pid)
    n = 300
    drip, stall, prompt = [], [], []
    lines = {}
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        line = ("IAMAT l%d +1-2 %d\n" % (i, i)).encode()
        s.sendall(line[:3])
        [drip, stall, prompt][i % 3].append(s)
        lines[s] = line
    sent = {s: 3 for s in drip}
    # Drip a byte per connection every 0.4 s: each line takes over 5 s,
    # past the 2 s deadline (swept once a second).  The prompt ones finish
    # half a second in.
    deadline = time.monotonic() + 7
    finished_prompt = False
    while time.monotonic() < deadline:
        for s in drip:
            if sent[s] < len(lines[s]):
                try:
                    s.sendall(lines[s][sent[s]:sent[s] + 1])
                except OSError:
                    sent[s] = len(lines[s])     # already dropped
                    continue
                sent[s] += 1
        if not finished_prompt and time.monotonic() > deadline - 6.5:
            for s in prompt:
                s.sendall(lines[s][3:])
            finished_prompt = True
        answers(bystander)
        time.sleep(0.4)
    for s in prompt:
        s.settimeout(10)
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(4096)
            assert chunk, "a client that finished in time was dropped"
            buf += chunk
        assert buf.startswith(b"AT Hill ") and buf.endswith(
            lines[s][len(b"IAMAT "):]), buf
    for s in stall + drip:
        s.settimeout(10)
        try:
            assert s.recv(4096) == b""
        except ConnectionResetError:
            pass
    answers(bystander)
    after = mem(h.pid)
    for s in drip + stall + prompt:
        s.close()
    growth = record(h, "slow loris, %d connections" % n, before, after)
    assert growth < bound(h, 32), growth


def test_clients_that_never_read(node):
    """Forty connections pipeline IAMATs and never read a reply: each is
    no longer read once its unread output passes half of max_output_kb,
    so memory stays bounded while others are served."""
    h = node(max_output_kb="256")
    port = h.ports["Hill"]
    bystander = h.client("Hill")
    answers(bystander)
    before = mem(h.pid)
    hogs = []
    chunk = ("IAMAT hog +34.068930-118.445127 1621464827.959498503\n"
             * 2000).encode()
    for _ in range(40):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        hogs.append(s)
    # Write to every hog until no one takes more for a while.
    quiet_since = time.monotonic()
    total = 0
    deadline = time.monotonic() + 60
    while time.monotonic() - quiet_since < 2 and time.monotonic() < deadline:
        moved = 0
        for s in hogs:
            try:
                moved += s.send(chunk)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                pass
        total += moved
        if moved:
            quiet_since = time.monotonic()
        else:
            time.sleep(0.05)
        answers(bystander)
    assert time.monotonic() < deadline, "the node read the hogs forever"
    answers(bystander)
    after = mem(h.pid)
    for s in hogs:
        s.close()
    answers(bystander)
    growth = record(h, "40 non-readers, %.1f MB written" % (total / MB),
                    before, after)
    assert growth < bound(h, 64), growth


def test_100_mb_of_garbage(node):
    """100 MB of binary garbage in lines of up to 60 KB (max_line 64 KiB),
    with a reader draining the replies: each line is answered with `? `
    and the node's memory does not follow the stream."""
    h = node(max_line="65536")
    bystander = h.client("Hill")
    answers(bystander)
    before = mem(h.pid)
    g = h.client("Hill")
    reader = Drain(g)
    rng = random.Random(7)
    # 1 MiB of random bytes without newlines, cut into lines by newlines
    # placed at most 60000 bytes apart.
    block = bytearray(rng.randbytes(MB).replace(b"\n", b"\x00"))
    for i in range(59999, len(block), 60000):
        block[i] = 0x0A
    block[-1] = 0x0A
    block = bytes(block)
    peak = [0]
    for i in range(100):
        g.send(block)
        if i % 10 == 0:
            answers(bystander)
            peak[0] = max(peak[0], mem(h.pid)[0])
    answers(bystander)
    g.sock.shutdown(socket.SHUT_WR)
    assert reader.join(timeout=120), "the node never finished the garbage"
    # Every line was answered with "? " and (most of) a copy of itself.
    assert reader.received > 90 * MB, reader.received
    after = mem(h.pid)
    growth = record(h, "100 MB of garbage, %.1f MB of replies read, "
                    "RSS peak seen %.1f MB" % (reader.received / MB,
                                               peak[0] / MB), before, after)
    assert growth < bound(h, 100), growth
    answers(bystander)
