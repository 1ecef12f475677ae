"""Clients as they really are (issue 10): half-closes, a last line with no
"\\n", any TCP segmentation, over-long lines however they arrive, and the
hostile ones: silent connections, a full node, memory pressure, floods of
client ids, far-future times.  Every test speaks raw bytes to a real node."""

import json
import os
import signal
import socket
import struct
import time
import zlib

import pytest

from herdlib import Client, Herd, wait_for
from linklib import hello, key_id, read_secret

KIWI = "IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"
OPERANDS = KIWI[len("IAMAT "):].encode()


def one_node(procs, tmp_path, places=None, herd=None):
    h = Herd(procs, tmp_path, topology={"Hill": []}, places=places, herd=herd)
    h.start_all()
    return h


def raw(h, name="Hill"):
    s = socket.create_connection(("127.0.0.1", h.ports[name]), timeout=20)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_to_eof(s):
    """Everything the node sends until it closes the connection."""
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return out
        out += chunk


def send_then_fin(s, data, together):
    """data, then end of stream: in one segment (MSG_MORE corks the data
    until shutdown() adds the FIN to it) or in two."""
    if together:
        s.send(data, socket.MSG_MORE)
    else:
        s.sendall(data)
        time.sleep(0.2)         # the data leaves alone, the FIN later
    s.shutdown(socket.SHUT_WR)


def sanitizer_clean(h, name="Hill"):
    p = h.procs[name]
    h.stop(name)
    err = p.stderr.read().decode(errors="replace")
    assert "Sanitizer" not in err and "LeakSanitizer" not in err, err


def at_line_ok(line, operands, node=b"Hill"):
    assert line.startswith(b"AT " + node + b" "), line
    assert line.endswith(b" " + operands + b"\n"), line


# --- 1. half-close ---------------------------------------------------------

def test_half_close_gets_every_reply_whatsat_included(procs, tmp_path, places):
    """IAMAT and WHATSAT, then shutdown(SHUT_WR): both replies, the whole
    WHATSAT reply after places took their time, then the close."""
    places.delay = 0.5
    h = one_node(procs, tmp_path, places={"url": places.url})
    s = raw(h)
    s.sendall((KIWI + "\nWHATSAT kiwi.cs.ucla.edu 10 2\n").encode())
    s.shutdown(socket.SHUT_WR)
    got = read_to_eof(s)
    first, _, rest = got.partition(b"\n")
    at_line_ok(first + b"\n", OPERANDS)
    assert rest.startswith(first + b"\n{"), rest[:200]
    assert rest.endswith(b"}\n\n"), rest[-50:]
    body = json.loads(rest[len(first) + 1:-2])
    assert len(body["results"]) == 2 and body["status"] == "OK"
    assert len(got) > 1000
    sanitizer_clean(h)


def test_half_close_with_more_whatsats_than_wait_at_once(procs, tmp_path, places):
    """40 WHATSATs (reading pauses at 32 waiting) and a half-close: all 40
    answered in order, then the close."""
    places.delay = 0.3
    places.results = 1
    h = one_node(procs, tmp_path, places={"url": places.url})
    c = h.client("Hill")
    at = c.request(KIWI)
    c.close()
    s = raw(h)
    n = 40
    s.sendall(b"".join(b"WHATSAT kiwi.cs.ucla.edu %d 1\n" % (1 + i % 50)
                       for i in range(n)) + b"IAMAT last +1+1 1\n")
    s.shutdown(socket.SHUT_WR)
    got = read_to_eof(s)
    replies = got.split(b"\n\n")
    assert len(replies) == n + 1, got[-300:]
    for r in replies[:n]:
        assert r.startswith(at + b"{"), r[:120]
    at_line_ok(replies[n], b"last +1+1 1")
    sanitizer_clean(h)


def test_half_close_while_paused_for_a_slow_reader(procs, tmp_path):
    """A client pipelines far more than its output cap lets through, half-
    closes, and only then reads: the node, paused on its unread replies,
    still answers every request, then closes."""
    import threading
    h = one_node(procs, tmp_path, herd={"max_output_kb": "64"})
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # before connect
    s.connect(("127.0.0.1", h.ports["Hill"]))
    s.settimeout(60)
    n = 40000                       # ~2.5 MB of replies
    data = b"IAMAT slow +1+1 1621464827\n" * (n - 1) + b"IAMAT last +1+1 1"

    def send():
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    sender.join(timeout=2)          # not reading yet: the node pauses
    got = read_to_eof(s)
    sender.join(timeout=10)
    lines = got.split(b"\n")
    assert len(lines) == n + 1 and lines[-1] == b"", len(lines)
    assert all(x.startswith(b"AT Hill ") for x in lines[:-1])
    at_line_ok(lines[-2] + b"\n", b"last +1+1 1")
    sanitizer_clean(h)


# --- 2 and 3. a last line with no "\n", any segmentation -------------------

@pytest.mark.parametrize("together", [True, False], ids=["fin_with_data", "fin_apart"])
def test_unterminated_last_line_is_a_request(procs, tmp_path, together):
    h = one_node(procs, tmp_path)
    s = raw(h)
    send_then_fin(s, b"IAMAT kiwi +34-118 1", together)
    got = read_to_eof(s)
    at_line_ok(got, b"kiwi +34-118 1")
    assert got.count(b"\n") == 1
    s = raw(h)
    send_then_fin(s, b"WHATSAT nobody 10 2", together)
    assert read_to_eof(s) == b"? WHATSAT nobody 10 2\n"
    # The record of the unterminated IAMAT is held.
    c = h.client("Hill")
    c.send("IAMAT kiwi +34-118 0\n")
    at_line_ok(c.read_line(), b"kiwi +34-118 0")
    sanitizer_clean(h)


@pytest.mark.parametrize("together", [True, False], ids=["fin_with_data", "fin_apart"])
@pytest.mark.parametrize("cut", [1, 7, 20, 33])
def test_pipelined_then_unterminated_split_anywhere(procs, tmp_path, together, cut):
    """Whole lines and a last one without "\\n", the bytes cut at any
    point and the FIN with the last piece or after it: every request is
    answered, in order."""
    h = one_node(procs, tmp_path)
    data = b"IAMAT a +1+1 1\nFOO bar\nIAMAT b +2+2 2"
    s = raw(h)
    s.sendall(data[:cut])
    time.sleep(0.1)
    send_then_fin(s, data[cut:], together)
    got = read_to_eof(s)
    lines = got.split(b"\n")
    assert len(lines) == 4 and lines[3] == b"", got
    at_line_ok(lines[0] + b"\n", b"a +1+1 1")
    assert lines[1] == b"? FOO bar"
    at_line_ok(lines[2] + b"\n", b"b +2+2 2")
    sanitizer_clean(h)


def test_reset_while_replies_wait(procs, tmp_path, places):
    """A client that resets its connection while WHATSATs wait for places:
    the node forgets them and serves on (ASan: nothing leaks or is used
    after free)."""
    places.delay = 0.5
    h = one_node(procs, tmp_path, places={"url": places.url})
    c = h.client("Hill")
    c.request(KIWI)
    for k in range(5):
        s = raw(h)
        # Distinct radii: distinct places requests (equal ones are shared).
        s.sendall(b"".join(b"WHATSAT kiwi.cs.ucla.edu %d 2\n" % (k * 10 + j + 1)
                           for j in range(10)))
        s.shutdown(socket.SHUT_WR)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()               # RST
    wait_for(lambda: len(places.requests) >= 10, what="places requests")
    at_line_ok(c.request(KIWI), OPERANDS)
    sanitizer_clean(h)


def test_end_of_stream_on_a_link_is_a_drop(procs, tmp_path):
    """A neighbour's connection that ends its stream is dropped at once, as
    before: half-close is a client matter."""
    h = Herd(procs, tmp_path, topology={"Hill": ["Jaquez"], "Jaquez": []})
    h.start("Jaquez")
    s = raw(h, "Jaquez")
    s.sendall(hello("Hill", "Jaquez", key_id(read_secret(h.dir))))
    s.shutdown(socket.SHUT_WR)
    # The handshake waits for TLS bytes; the end of the stream ends it
    # at once, with nothing sent back.
    assert read_to_eof(s) == b""
    sanitizer_clean(h, "Jaquez")


# --- 5. max_line on every line, and records longer than it ----------------

def iamat_of_len(n, ident="long"):
    head = "IAMAT %s" % ident
    tail = " +1+1 1"
    return (head + "x" * (n - len(head) - len(tail)) + tail).encode()


@pytest.mark.parametrize("size", [5000, 30000, 60000])
@pytest.mark.parametrize("pieces", [1, 2, 3])
def test_overlong_line_refused_however_it_arrives(procs, tmp_path, size, pieces):
    """A line longer than max_line, read in one go with its "\\n" or in
    pieces: "? " and its first max_line bytes, then the close; nothing is
    stored, and the request after it is not served."""
    h = one_node(procs, tmp_path, herd={"max_line": "4096"})
    line = iamat_of_len(size)
    data = line + b"\nIAMAT after +1+1 1\n"
    s = raw(h)
    step = len(data) // pieces + 1
    try:
        for i in range(0, len(data), step):
            s.sendall(data[i:i + step])
            time.sleep(0.05)
    except OSError:
        pass                    # closed already: the reply still waits
    assert read_to_eof(s) == b"? " + line[:4096] + b"\n"
    # Nothing stored: once a later record shows, it is the only one.
    at_line_ok(h.client("Hill").request("IAMAT probe +1+1 1"), b"probe +1+1 1")
    wait_for(lambda: (h.status("Hill") or {}).get("clients", 0) >= 1,
             what="the probe in the status")
    assert h.status("Hill")["clients"] == 1
    sanitizer_clean(h)


def test_overlong_line_behind_a_waiting_whatsat(procs, tmp_path, places):
    """A WHATSAT waiting for places, then an over-long line: the WHATSAT's
    reply, then the "? " line, then the close."""
    places.delay = 0.5
    h = one_node(procs, tmp_path, places={"url": places.url},
                 herd={"max_line": "256"})
    c = h.client("Hill")
    at = c.request(KIWI)
    s = raw(h)
    line = iamat_of_len(1000)
    s.sendall(b"WHATSAT kiwi.cs.ucla.edu 10 2\n" + line + b"\n")
    got = read_to_eof(s)
    assert got.startswith(at + b"{") and got.endswith(
        b"}\n\n? " + line[:256] + b"\n"), got[-400:]
    sanitizer_clean(h)


def test_line_of_exactly_max_line_is_served(procs, tmp_path):
    h = one_node(procs, tmp_path, herd={"max_line": "256"})
    c = h.client("Hill")
    line = iamat_of_len(256, "edge")
    at_line_ok(c.request(line.decode()), line[len(b"IAMAT "):])
    c.send(iamat_of_len(257, "over") + b"\n")
    assert c.read_line() == b"? " + iamat_of_len(257, "over")[:256] + b"\n"
    assert c.closed()


def journal_bytes(lines):
    out = bytearray(b"HERDJNL\x01")
    for line in lines:
        head = struct.pack("<I", len(line))
        crc = zlib.crc32(head + line) & 0xffffffff
        out += head + struct.pack("<I", crc) + line
    return bytes(out)


def test_herd_converges_with_overlong_records_in_journal(procs, tmp_path):
    """Hill's journal holds 90 records of 5, 30 and 60 KB, as the old code
    stored them from lines past max_line.  They reach Jaquez through one
    link that stays up: no "message too long", no drop, no redial."""
    h = Herd(procs, tmp_path, topology={"Hill": ["Jaquez"], "Jaquez": []},
             herd={"max_line": "4096"})
    os.makedirs(os.path.join(h.dir, "data"), exist_ok=True)
    # Enough of them that the catch-up's lines straddle reads.
    records = [b"AT Hill +0.250000000 big%d-%s +1+1 1621464827.5" %
               (i, b"x" * n) for i, n in enumerate([5000, 30000, 60000] * 30)]
    with open(os.path.join(h.dir, "data", "Hill.journal"), "wb") as f:
        f.write(journal_bytes(records))
    h.start_all()
    wait_for(lambda: (h.status("Jaquez") or {}).get("clients") == 90,
             timeout=30, what="Jaquez to hold the long records")
    # A barrier: a fresh update crosses the same link afterwards.
    at_line_ok(h.client("Hill").request("IAMAT fresh +1+1 2"), b"fresh +1+1 2")
    wait_for(lambda: (h.status("Jaquez") or {}).get("clients") == 91,
             what="the fresh record at Jaquez")
    for name in ("Hill", "Jaquez"):
        log = h.log(name)
        assert log.count("link up") == 1, log[-2000:]
        assert "link down" not in log and "too long" not in log, log[-2000:]
    for name in ("Hill", "Jaquez"):
        sanitizer_clean(h, name)


# --- 6. acknowledged means stored ------------------------------------------

RELEASE_NODE = os.path.join(os.environ.get("HERD_RELEASE_BIN") or
                            os.path.join(os.path.dirname(os.path.dirname(
                                os.path.dirname(os.path.abspath(__file__)))),
                                "bin"), "herd-node")


def held_ids(h, ids, batch=64):
    """The subset of ids the node holds, asked with WHATSATs (places fail
    fast here: the first line is the stored AT line or "? ")."""
    c = h.client("Hill")
    held = set()
    for i in range(0, len(ids), batch):
        part = ids[i:i + batch]
        c.send("".join("WHATSAT %s 1 1\n" % x for x in part))
        for x in part:
            first = c.read_line()
            if not first.startswith(b"? "):
                c.read_until(b"\n\n")
                held.add(x)
    c.close()
    return held


@pytest.mark.skipif(not os.path.exists(RELEASE_NODE), reason="no release build")
@pytest.mark.parametrize("fsync", ["everysec", "always"])
def test_under_memory_pressure_every_at_is_held(procs, tmp_path, fsync):
    """The release node under RLIMIT_AS (ASan cannot run there) takes
    IAMATs for new ids until memory runs out: each gets "AT" only when the
    node holds it, "? " otherwise, and the node serves on.  Afterwards
    (the limit lifted with prlimit) every acknowledged id is held."""
    import resource
    h = Herd(procs, tmp_path, topology={"Hill": []}, herd={"fsync": fsync})
    limit = 48 << 20

    def low_memory():
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))

    p = procs.start([RELEASE_NODE, "-c", h.ini, "Hill"], cwd=h.dir,
                    preexec_fn=low_memory)
    h.procs["Hill"] = p
    from herdlib import port_open
    wait_for(lambda: port_open(h.ports["Hill"]) or p.poll() is not None,
             what="the node to listen")
    assert p.poll() is None
    pad = "p" * 2000
    acked, refused, dropped, i = [], 0, 0, 0
    c = h.client("Hill")
    while refused + dropped < 100 and i < 30000:
        part = ["m%d-%s" % (i + k, pad) for k in range(100)]
        i += 100
        try:
            c.send("".join("IAMAT %s +1+1 1621464827.%d\n" % (x, k)
                           for k, x in enumerate(part)))
            for x in part:
                line = c.read_line()
                if line.startswith(b"AT Hill "):
                    assert line.split(b" ")[3].decode() == x
                    acked.append(x)
                else:
                    assert line.startswith(b"? IAMAT " + x.encode()), line[:80]
                    refused += 1
        except (OSError, EOFError):
            # Closed when even the "? " could not be queued: no AT either.
            dropped += 1
            c.close()
            c = h.client("Hill")
    assert p.poll() is None
    resource.prlimit(p.pid, resource.RLIMIT_AS,
                     (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    at_line_ok(h.client("Hill").request("IAMAT after +1+1 1"), b"after +1+1 1")
    missing = set(acked) - held_ids(h, acked)
    assert not missing, "%d of %d acknowledged ids not held" % (
        len(missing), len(acked))
    assert refused + dropped > 0, "memory never ran out (%d acknowledged)" % len(acked)
    logs = ""
    for name in os.listdir(os.path.join(h.dir, "logs")):   # rotated too
        with open(os.path.join(h.dir, "logs", name), errors="replace") as f:
            logs += f.read()
    assert "IAMAT not stored: out of memory" in logs


# --- 7. max_records ---------------------------------------------------------

def holds(h, name, ident):
    """The AT line name holds for ident, or None (places fail fast)."""
    c = h.client(name)
    try:
        first = c.whatsat("WHATSAT %s 1 1" % ident).split(b"\n")[0]
    finally:
        c.close()
    return None if first.startswith(b"? ") else first


def test_max_records_caps_new_ids_from_clients(procs, tmp_path):
    h = one_node(procs, tmp_path, herd={"max_records": "3"})
    c = h.client("Hill")
    for x in "abc":
        at_line_ok(c.request("IAMAT %s +1+1 1" % x), b"%s +1+1 1" % x.encode())
    assert c.request("IAMAT d +1+1 1") == b"? IAMAT d +1+1 1\n"
    # Ids already held still update, and the connection serves on.
    at_line_ok(c.request("IAMAT a +2+2 2"), b"a +2+2 2")
    assert c.request("IAMAT\td  +1+1   3") == b"? IAMAT\td  +1+1   3\n"
    assert holds(h, "Hill", "d") is None
    assert holds(h, "Hill", "a").endswith(b" a +2+2 2")
    assert "IAMAT not stored: a new client id, and max_records are held" in h.log("Hill")
    sanitizer_clean(h)


def start_with_own_ini(h, procs, tmp_path, name, herd=None):
    """Start node name of h with a herd.ini of its own (same ports, logs,
    run_dir and secret), differing in its [herd] settings."""
    from herdlib import binary, write_ini
    ini, _ = write_ini(tmp_path, h.topology, ports=h.ports, herd=herd,
                       name=name + ".ini")
    p = procs.start([binary("herd-node"), "-c", ini, name], cwd=h.dir)
    h.procs[name] = p
    return p


def test_records_from_neighbours_pass_the_cap(procs, tmp_path):
    """Jaquez (no cap) takes three ids; Hill (max_records = 2) holds all
    three from the flood, so the herd converges; then Hill refuses a new
    id from its own client but updates one it holds."""
    h = Herd(procs, tmp_path, topology={"Hill": ["Jaquez"], "Jaquez": []},
             herd={"max_records": "2"})
    h.start("Hill")
    start_with_own_ini(h, procs, tmp_path, "Jaquez")
    h.wait_links()
    j = h.client("Jaquez")
    for x in "xyz":
        at_line_ok(j.request("IAMAT %s +1+1 1" % x), b"%s +1+1 1" % x.encode(),
                   b"Jaquez")
    wait_for(lambda: all(holds(h, "Hill", x) for x in "xyz"),
             what="Hill to hold the three flooded records")
    c = h.client("Hill")
    assert c.request("IAMAT v +1+1 1") == b"? IAMAT v +1+1 1\n"
    at_line_ok(c.request("IAMAT x +3+3 3"), b"x +3+3 3")
    wait_for(lambda: (holds(h, "Jaquez", "x") or b"").endswith(b" x +3+3 3"),
             what="the update of a held id at Jaquez")
    assert holds(h, "Jaquez", "v") is None
    for name in ("Hill", "Jaquez"):
        sanitizer_clean(h, name)


# --- 8. max_clock_ahead_s ---------------------------------------------------

def test_far_future_time_refused_and_cannot_pin(procs, tmp_path):
    h = one_node(procs, tmp_path)
    c = h.client("Hill")
    far = "IAMAT kiwi +1+1 999999999999999999.999999999"
    assert c.request(far) == b"? " + far.encode() + b"\n"
    now = int(time.time())
    at_line_ok(c.request("IAMAT kiwi +2+2 %d" % now), b"kiwi +2+2 %d" % now)
    assert holds(h, "Hill", "kiwi").endswith(b" kiwi +2+2 %d" % now)
    # A day and a bit ahead: refused; a few minutes ahead: a negative
    # difference, as in SPEC.md.
    ahead = "IAMAT kiwi +3+3 %d" % (now + 86400 + 120)
    assert c.request(ahead) == b"? " + ahead.encode() + b"\n"
    line = c.request("IAMAT kiwi +4+4 %d.5" % (now + 300))
    at_line_ok(line, b"kiwi +4+4 %d.5" % (now + 300))
    assert line.split(b" ")[2].startswith(b"-"), line
    assert "its time is more than max_clock_ahead_s ahead" in h.log("Hill")
    sanitizer_clean(h)


def test_clock_ahead_limit_is_configurable(procs, tmp_path):
    h = one_node(procs, tmp_path, herd={"max_clock_ahead_s": "100"})
    c = h.client("Hill")
    now = int(time.time())
    at_line_ok(c.request("IAMAT a +1+1 %d" % (now + 50)), b"a +1+1 %d" % (now + 50))
    assert c.request("IAMAT a +1+1 %d" % (now + 200)) == \
        b"? IAMAT a +1+1 %d\n" % (now + 200)
    h.stop("Hill")
    os.makedirs(str(tmp_path / "nolimit"))
    h2 = Herd(procs, tmp_path / "nolimit", topology={"Hill": []},
              herd={"max_clock_ahead_s": "0"})
    h2.start_all()
    far = "IAMAT b +1+1 999999999999999999.999999999"
    at_line_ok(h2.client("Hill").request(far), far[len("IAMAT "):].encode())


def test_far_future_record_from_a_neighbour_is_applied(procs, tmp_path):
    """Hill's herd.ini allows any time; Jaquez's keeps the default.  A
    record Hill took reaches Jaquez: a neighbour's record was checked at
    its origin, and every node must keep the same one."""
    h = Herd(procs, tmp_path, topology={"Hill": ["Jaquez"], "Jaquez": []},
             herd={"max_clock_ahead_s": "0"})
    h.start("Hill")
    start_with_own_ini(h, procs, tmp_path, "Jaquez")
    h.wait_links()
    far = "IAMAT kiwi +1+1 999999999999999999.999999999"
    at_line_ok(h.client("Hill").request(far), far[len("IAMAT "):].encode())
    wait_for(lambda: holds(h, "Jaquez", "kiwi"), what="the far record at Jaquez")
    assert h.client("Jaquez").request(far) == b"? " + far.encode() + b"\n"
    for name in ("Hill", "Jaquez"):
        sanitizer_clean(h, name)


# --- 4. silent connections, a full node, descriptors ------------------------

def test_connection_without_a_request_is_closed(procs, tmp_path):
    h = one_node(procs, tmp_path, herd={"idle_timeout_s": "1"})
    silent = raw(h)
    half = raw(h)
    half.sendall(b"IAMAT half")             # a first line never finished
    assert read_to_eof(silent) == b""
    assert read_to_eof(half) == b""
    wait_for(lambda: "no request within idle_timeout_s of connecting" in
             h.log("Hill"), what="the log line")
    sanitizer_clean(h)


def test_silent_client_closed_but_not_one_waiting(procs, tmp_path, places):
    """Silent for idle_timeout_s with nothing under way: closed (Herd's
    choice).  A client waiting longer than that for its WHATSAT is not."""
    places.delay = 3
    h = one_node(procs, tmp_path, places={"url": places.url},
                 herd={"idle_timeout_s": "1"})
    c = h.client("Hill")
    at = c.request(KIWI)
    w = h.client("Hill")
    w.send("WHATSAT kiwi.cs.ucla.edu 10 2\n")
    assert read_to_eof(c.sock) == b""
    reply = w.read_until(b"\n\n")
    assert reply.startswith(at + b"{")
    wait_for(lambda: "silent for idle_timeout_s" in h.log("Hill"),
             what="the log line")
    sanitizer_clean(h)


def test_full_node_closes_the_client_idle_longest(procs, tmp_path):
    h = one_node(procs, tmp_path, herd={"max_clients": "2"})
    a, b = h.client("Hill"), h.client("Hill")
    at_line_ok(a.request("IAMAT a +1+1 1"), b"a +1+1 1")
    at_line_ok(b.request("IAMAT b +1+1 1"), b"b +1+1 1")
    time.sleep(1.2)                         # both idle over 1 s, a longer
    c = h.client("Hill")
    at_line_ok(c.request("IAMAT c +1+1 1"), b"c +1+1 1")
    assert read_to_eof(a.sock) == b""
    at_line_ok(b.request("IAMAT b +1+1 2"), b"b +1+1 2")
    wait_for(lambda: "the longest, for a new connection" in h.log("Hill"),
             what="the log line")
    sanitizer_clean(h)


def busy_clients(h, n):
    """n connections each in the middle of a line: not idle, so never
    closed to make room (until idle_timeout_s).  Each in a regular slot:
    the start's probe (client 1) must be gone first, or the last could
    land in a spare slot, the kind that gives way to newcomers."""
    name = "Jaquez" if "Jaquez" in h.procs else "Hill"
    wait_for(lambda: "client 1 closed" in h.log(name),
             what="the start probe's close")
    out = []
    for _ in range(n):
        s = raw(h, name)
        s.sendall(b"IAMAT busy")
        out.append(s)
    wait_for(lambda: h.log(name).count("connected from") == n + 1,
             what="the busy clients")
    assert "spare slot" not in h.log(name)
    return out


def test_spare_slots_are_for_neighbours_only(procs, tmp_path):
    h = one_node(procs, tmp_path, herd={"max_clients": "2"})
    busy = busy_clients(h, 2)
    c = h.client("Hill")
    assert c.request(KIWI) == b"? too many clients\n"
    assert c.closed()
    # The busy ones are served once they finish their lines.
    busy[0].sendall(b" +1+1 1\n")
    at_line_ok(busy[0].recv(4096), b"busy +1+1 1")
    sanitizer_clean(h)


def test_full_node_still_links(procs, tmp_path):
    """Jaquez is full (two clients mid-line at max_clients = 2) and 70
    silent connections sit in or beyond its spare slots: Hill, its
    neighbour, still links to it."""
    h = Herd(procs, tmp_path, topology={"Hill": ["Jaquez"], "Jaquez": []},
             herd={"max_clients": "2"})
    h.start("Jaquez")
    busy = busy_clients(h, 2)
    silent = [raw(h, "Jaquez") for _ in range(70)]
    h.start("Hill")
    h.wait_links(timeout=30)
    busy[1].sendall(b" +1+1 1\n")
    at_line_ok(busy[1].recv(4096), b"busy +1+1 1", b"Jaquez")
    for s in silent:
        s.close()
    for name in ("Hill", "Jaquez"):
        sanitizer_clean(h, name)


def test_strangers_reconnecting_cannot_hold_the_spare_slots(procs, tmp_path):
    """Jaquez is full and a stranger keeps all 64 spare slots held,
    opening a new connection the moment one is closed (after 5 s without
    a link opening, or to make room).  A spare held 0.5 s gives way to a
    newcomer, so Hill, whose opening follows its connect at once, links;
    without that, the stranger's reconnects win every freed slot."""
    import threading
    h = Herd(procs, tmp_path, topology={"Hill": ["Jaquez"], "Jaquez": []},
             herd={"max_clients": "2"})
    h.start("Jaquez")
    busy = busy_clients(h, 2)
    stop = threading.Event()
    held = [raw(h, "Jaquez") for _ in range(64)]
    lock = threading.Lock()

    def stranger():
        while not stop.is_set():
            with lock:
                for i, s in enumerate(held):
                    s.setblocking(False)
                    try:
                        gone = s.recv(4096) == b""
                    except BlockingIOError:
                        gone = False
                    except OSError:
                        gone = True
                    if gone:
                        s.close()
                        try:
                            held[i] = raw(h, "Jaquez")
                        except OSError:
                            pass
            stop.wait(0.001)

    t = threading.Thread(target=stranger, daemon=True)
    t.start()
    try:
        h.start("Hill")
        h.wait_links(timeout=30)
        log = h.log("Jaquez")
        assert "every spare slot is held (64); closing the oldest" in log, log[-3000:]
    finally:
        stop.set()
        t.join()
        with lock:
            for s in held:
                s.close()
    busy[1].sendall(b" +1+1 1\n")
    at_line_ok(busy[1].recv(4096), b"busy +1+1 1", b"Jaquez")
    for name in ("Hill", "Jaquez"):
        sanitizer_clean(h, name)


def soft_nofile(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    return None


def test_descriptor_limit_raised_and_shortfall_logged(procs, tmp_path):
    import resource
    from herdlib import SUBSET, binary, port_open, write_ini
    ini, ports = write_ini(tmp_path, {"Hill": []}, herd={"max_clients": "5000"})

    def low(soft, hard):
        return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    p = procs.start([binary("herd-node"), "-c", ini, "Hill"], cwd=str(tmp_path),
                    preexec_fn=low(64, 2048))
    wait_for(lambda: port_open(ports["Hill"]), what="Hill")
    assert soft_nofile(p.pid) == 2048
    log = open(os.path.join(str(tmp_path), "logs", "Hill.log")).read()
    assert "descriptors: the limit is 2048 (hard limit reached), but " \
           "max_clients 5000" in log, log
    # herd-places too (a long-running program, whose limits can be read).
    pp = __import__("herdlib").free_port()
    q = procs.start([binary("herd-places"), "-p", str(pp), "-d", SUBSET],
                    cwd=str(tmp_path), preexec_fn=low(64, 3000))
    wait_for(lambda: port_open(pp) or q.poll() is not None, what="herd-places")
    assert q.poll() is None, "herd-places exited %s: %s" % (
        q.returncode, q.stderr.read().decode(errors="replace"))
    assert soft_nofile(q.pid) == 3000
