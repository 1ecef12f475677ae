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
