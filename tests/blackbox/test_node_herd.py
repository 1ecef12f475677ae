"""Flooding, last-writer-wins, catch-up after restarts, routing around a
stopped node, and the herd secret: five real nodes on loopback."""

import os
import signal
import time

from herdlib import Herd, held_line, iamat, wait_for, wait_held
from linklib import TlsDialer, key_id, read_secret

NAMES = ["Hill", "Jaquez", "Smith", "Singleton", "Campbell"]


def test_flood_reaches_every_node_two_hops_included(procs, tmp_path):
    h = Herd(procs, tmp_path)
    h.start_all()
    at = iamat(h, "Hill", "kiwi.cs.ucla.edu", "+34.068930-118.445127",
               "1621464827.959498503")
    assert at.startswith(b"AT Hill +")
    # Campbell is two hops from Hill (Hill-Smith-Campbell).
    for node in NAMES:
        wait_held(h, node, "kiwi.cs.ucla.edu", at)


def test_whatsat_elsewhere_returns_original_at_line(procs, tmp_path, places):
    h = Herd(procs, tmp_path, places={"url": places.url})
    h.start_all()
    at = iamat(h, "Jaquez", "roam", "+1.0-2.0", "1621464827.5")
    wait_held(h, "Campbell", "roam", at)
    c = h.client("Campbell")
    reply = c.whatsat("WHATSAT roam 5 3")
    assert reply.startswith(at + b"\n{")
    assert reply.endswith(b"}\n\n")


def test_older_update_never_overwrites_newer(procs, tmp_path):
    h = Herd(procs, tmp_path)
    h.start_all()
    newer = iamat(h, "Hill", "lww", "+10+10", "1750000000.000000002")
    for node in NAMES:
        wait_held(h, node, "lww", newer)
    older = iamat(h, "Campbell", "lww", "+20+20", "1750000000.000000001")
    assert older.startswith(b"AT Campbell ")
    # An IAMAT with the newest time but sent afterwards, as a marker that
    # the older one had every chance to spread.
    marker = iamat(h, "Campbell", "marker", "+0+0", "1")
    for node in NAMES:
        wait_held(h, node, "marker", marker)
    for node in NAMES:
        assert held_line(h, node, "lww") == newer


def test_same_client_time_resolved_alike_everywhere(procs, tmp_path):
    h = Herd(procs, tmp_path)
    h.start_all()
    a = iamat(h, "Hill", "tie", "+1+1", "1700000000.5")
    b = iamat(h, "Campbell", "tie", "+2+2", "1700000000.5")
    winner = max(a, b)
    for node in NAMES:
        wait_held(h, node, "tie", winner)


def test_killed_node_restarts_and_learns_what_it_missed(procs, tmp_path):
    h = Herd(procs, tmp_path)
    h.start_all()
    before = iamat(h, "Hill", "early", "+1+1", "1621464827")
    wait_held(h, "Singleton", "early", before)
    h.stop("Singleton", sig=signal.SIGKILL)
    missed = [iamat(h, NAMES[i % 4 if i % 4 < 3 else 4], "missed%d" % i,
                    "+1+1", "1621464827.%d" % i) for i in range(20)]
    h.start("Singleton")
    h.wait_links(["Singleton"])
    wait_held(h, "Singleton", "early", before)
    for i, at in enumerate(missed):
        wait_held(h, "Singleton", "missed%d" % i, at)
    assert "catch-up from" in h.log("Singleton")


def test_middle_node_stopped_updates_route_around(procs, tmp_path):
    h = Herd(procs, tmp_path)
    h.start_all()
    h.stop("Smith")
    # Hill -> Jaquez -> Singleton -> Campbell avoids Smith.
    at = iamat(h, "Hill", "around", "+3+3", "1621464828")
    wait_held(h, "Campbell", "around", at)
    # Smith comes back and catches up.
    h.start("Smith")
    wait_held(h, "Smith", "around", at)
    log = h.log("Hill")
    assert "link down: Smith" in log


def test_forged_flood_line_from_client_is_refused(procs, tmp_path):
    h = Herd(procs, tmp_path)
    h.start_all()
    c = h.client("Hill")
    forged = b"HERD-AT AT Smith +0.000000001 victim +1+1 1621464827"
    c.send(forged + b"\n")
    assert c.read_line() == b"? " + forged + b"\n"
    c.send(b"HERD-SYNCED 5\nHERD-AUTH " + b"0" * 64 + b"\nHERD-PING\n")
    assert c.read_line() == b"? HERD-SYNCED 5\n"
    assert c.read_line().startswith(b"? HERD-AUTH ")
    assert c.read_line() == b"? HERD-PING\n"
    # A real update sent to Hill afterwards, as a marker: once every node
    # holds it, a forged line Hill had taken would have spread too (each
    # link delivers in order).
    marker = iamat(h, "Hill", "marker", "+0+0", "1")
    for node in NAMES:
        wait_held(h, node, "marker", marker)
    for node in NAMES:
        assert held_line(h, node, "victim") is None


def test_handshake_with_wrong_secret_changes_nothing(procs, tmp_path):
    h = Herd(procs, tmp_path)
    h.start_all()
    # Pretend to be Campbell dialing Smith, naming the herd's key but
    # without its secret: the TLS handshake fails, nothing is stored.
    kid = key_id(read_secret(h.dir))
    t = TlsDialer(h.ports["Smith"], "Campbell", "Smith", b"a guessed secret!!",
                  kid=kid)
    try:
        t.send(b"HERD-AT AT Campbell +0.000000001 forged +1+1 1621464827\n")
        assert t.closed()
    finally:
        t.close()
    wait_for(lambda: "(last: TLS handshake failed" in h.log("Smith"),
             what="Smith to log the refusal")
    # The real link is untouched.
    at = iamat(h, "Campbell", "still.linked", "+1+1", "1621464829")
    wait_held(h, "Smith", "still.linked", at)
    assert held_line(h, "Smith", "forged") is None


def test_node_with_wrong_secret_never_links(procs, tmp_path):
    h = Herd(procs, tmp_path, topology={"Hill": ["Jaquez"], "Jaquez": []})
    os.makedirs(os.path.join(h.dir, "run"), exist_ok=True)
    h.start("Hill")
    # Jaquez gets its own run_dir, so its own, different secret.
    other = tmp_path / "other"
    other.mkdir()
    text = open(h.ini).read().replace("run_dir = run", "run_dir = %s" % (other / "run"))
    ini2 = other / "herd.ini"
    ini2.write_text(text)
    from herdlib import binary, port_open
    p = procs.start([binary("herd-node"), "-c", str(ini2), "Jaquez"], cwd=str(other))
    wait_for(lambda: port_open(h.ports["Jaquez"]), what="Jaquez")
    # Hill dials; Jaquez does not know Hill's key and says so, in clear.
    wait_for(lambda: "is not in the keyring" in h.log("Hill"),
             what="Jaquez to refuse Hill's key")
    jlog = other / "logs" / "Jaquez.log"
    hellos = lambda: jlog.read_text(errors="replace").count(
        "< HERD-HELLO Hill Jaquez herd-v2")
    refusals = hellos()
    at = iamat(h, "Hill", "secret.test", "+1+1", "1621464830")
    # Hill redials (backoff at most 2 s); a refusal logged after the
    # update means the link never came up in between to carry it.
    wait_for(lambda: hellos() > refusals,
             what="Hill to be refused again after the update")
    assert h.links_up("Hill") == 0
    assert held_line(h, "Jaquez", "secret.test") is None
    assert at.startswith(b"AT Hill")
    p.kill()
    # No secret ever reaches a log.
    secret = open(os.path.join(h.dir, "run", "herd.secret")).read().strip()
    assert secret not in h.log("Hill")
    mode = os.stat(os.path.join(h.dir, "run", "herd.secret")).st_mode & 0o777
    assert mode == 0o600


def test_each_update_flooded_once_per_link_but_its_source(procs, tmp_path):
    """Messages per update equal the minimum: the origin sends to each
    neighbour, every other node forwards once to each neighbour but the
    one it heard from: 2E - (N - 1) HERD-AT lines for the default herd."""
    h = Herd(procs, tmp_path)
    h.start_all()
    edges = sum(len(h.neighbors(n)) for n in NAMES) // 2
    def totals():
        sts = [h.status(n) for n in NAMES]
        return sum(s["flood_sent"] for s in sts), sum(s["applied"] for s in sts)
    time.sleep(1.2)             # let every status file carry its counters
    sent0, applied0 = totals()
    updates = 20
    for i in range(updates):
        at = iamat(h, NAMES[i % 5], "count%d" % i, "+1+1", "1621464827.%d" % i)
    for node in NAMES:
        wait_held(h, node, "count%d" % (updates - 1), at)
    wait_for(lambda: totals()[1] - applied0 == updates * len(NAMES),
             what="status files to count every update")
    sent, applied = totals()
    assert sent - sent0 == updates * (2 * edges - (len(NAMES) - 1))
