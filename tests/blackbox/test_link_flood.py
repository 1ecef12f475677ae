"""A stranger cannot keep a link down (issue 11.1): a flood of HERD-HELLOs
(silent ones, ones followed by garbage TLS, old-protocol ones) while the
dialing neighbour restarts; the link comes back within 3 s and an update
crosses it, and no failed attempt ever counted as a link up."""

import os
import signal
import socket
import threading
import time

from herdlib import Herd, held_line, wait_for
from linklib import hello, key_id, read_secret

TOPO = {"Apple": ["Pear"], "Pear": []}     # Apple dials Pear


def flood(port, line, kind, stop, sent):
    """HELLOs as fast as one thread can open connections; the last 50 are
    held open (pending handshakes), older ones closed."""
    held = []
    garbage = [b"", b"\x16\x03\x01\x00\x20" + b"\x00" * 32, os.urandom(200)]
    while not stop.is_set():
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.sendall(line + garbage[kind % 3])
            sent[kind] += 1
            held.append(s)
            if len(held) > 50:
                held.pop(0).close()
        except OSError:
            time.sleep(0.001)
    for s in held:
        s.close()


def test_hello_flood_while_the_neighbour_restarts(procs, tmp_path):
    h = Herd(procs, tmp_path, topology=TOPO)
    h.start_all()
    kid = key_id(read_secret(h.dir))
    lines = [hello("Apple", "Pear", kid)] * 3 + \
            [b"HERD-HELLO Apple Pear " + b"ab" * 16 + b"\n"]
    stop = threading.Event()
    sent = [0] * len(lines)
    threads = [threading.Thread(target=flood,
                                args=(h.ports["Pear"], lines[k], k, stop, sent))
               for k in range(len(lines))]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: sum(sent) > 400, what="the flood to get going")
        h.stop("Apple", sig=signal.SIGKILL)
        h.start("Apple")
        restarted = time.monotonic()
        # Apple counts the link up only once Pear has confirmed it.
        wait_for(lambda: h.links_up("Apple") == 1, timeout=3,
                 what="the link to come back within 3 s of the restart")
        took = time.monotonic() - restarted
        c = h.client("Apple")
        at = c.request("IAMAT after.flood +1+1 1621464827").rstrip(b"\n")
        c.close()
        wait_for(lambda: held_line(h, "Pear", "after.flood") == at,
                 what="an update to cross the link during the flood")
        during = sum(sent)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert during > 1000, sent
    print("link back %.2f s after the restart, %d HELLOs sent" % (took, during))
    log = h.log("Pear")
    assert "link handshakes: " in log
    # No failed attempt counted as up: one link-up before the restart,
    # one after.
    assert log.count("link up: Apple") == 2, log.count("link up: Apple")
    assert h.log("Apple").count("link up: Pear") == 2
