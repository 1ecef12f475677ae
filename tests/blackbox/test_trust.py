"""The herd secret protects the links: a test that knows the secret can
link (so the checks below are not vacuous), a replayed handshake cannot,
and an authenticated peer's malformed frames change nothing."""

import hashlib
import hmac
import os

from herdlib import Herd, held_line, wait_for


def mac(secret, role, dialer, listener, nd, nl):
    msg = "herd-v1\n%s\n%s\n%s\n%s\n%s" % (role, dialer, listener, nd, nl)
    return hmac.new(secret, msg.encode(), hashlib.sha256).hexdigest()


def read_secret(h):
    with open(os.path.join(h.dir, "run", "herd.secret"), "rb") as f:
        return f.read().rstrip(b"\r\n \t")


def handshake(h, dialer, listener, nonce, secret):
    """Dial listener as dialer; returns (client, challenge fields, auth line)."""
    c = h.client(listener)
    c.send("HERD-HELLO %s %s %s\n" % (dialer, listener, nonce))
    fields = c.read_line().split()
    assert fields[0] == b"HERD-CHALLENGE" and fields[1] == listener.encode()
    nl = fields[2].decode()
    assert hmac.compare_digest(fields[3].decode(),
                               mac(secret, "listener", dialer, listener, nonce, nl))
    auth = "HERD-AUTH %s\n" % mac(secret, "dialer", dialer, listener, nonce, nl)
    return c, nl, auth


TOPO = {"Apple": ["Pear"], "Pear": []}


# HERD-RESUME from a peer that holds nothing of the node's log.
NO_LOG = b"HERD-RESUME 0000000000000000 0\n"


def test_secret_holder_links_and_replay_is_refused(procs, tmp_path):
    h = Herd(procs, tmp_path, topology=TOPO)
    h.start("Pear")             # Apple (the dialer) is played by the test
    secret = read_secret(h)
    nonce = "0123456789abcdef" * 2
    c, nl, auth = handshake(h, "Apple", "Pear", nonce, secret)
    c.send(auth)
    # Authenticated: the node says where it is in our log; we say we hold
    # nothing of its log, and it sends its (empty) catch-up.
    c.read_until(b"HERD-RESUME 0000000000000000 0\n")
    c.send(NO_LOG)
    c.read_until(b"HERD-SYNCED 0\n")
    # A flood line is now accepted and stored.
    line = b"AT Apple +0.000000001 from.test +1+1 1621464827"
    c.send(b"HERD-AT " + line + b"\n")
    wait_for(lambda: held_line(h, "Pear", "from.test") == line,
             what="the authenticated flood to be stored")

    # Replaying the same HELLO and AUTH on a new connection fails: the
    # listener's nonce is fresh, so the old proof no longer fits.
    r = h.client("Pear")
    r.send("HERD-HELLO Apple Pear %s\n" % nonce)
    fields = r.read_line().split()
    assert fields[0] == b"HERD-CHALLENGE" and fields[2].decode() != nl
    r.send(auth)
    r.send(b"HERD-AT AT Apple +0.000000001 replayed +1+1 1621464827\n")
    assert r.closed()
    assert held_line(h, "Pear", "replayed") is None
    # The proven link stays up: a refused stranger cannot knock it down.
    c.send(b"HERD-AT AT Apple +0.000000001 still.up +1+1 1621464827\n")
    wait_for(lambda: held_line(h, "Pear", "still.up") is not None,
             what="the first link to survive the replay")
    assert "authentication failed" in h.log("Pear")


def test_reflected_listener_proof_is_refused(procs, tmp_path):
    h = Herd(procs, tmp_path, topology=TOPO)
    h.start("Pear")
    c = h.client("Pear")
    nonce = "ab" * 16
    c.send("HERD-HELLO Apple Pear %s\n" % nonce)
    fields = c.read_line().split()
    # Sending the listener's own MAC back as ours must fail (role binding).
    c.send(b"HERD-AUTH " + fields[3] + b"\n")
    assert c.closed()


def test_malformed_frames_after_auth_change_nothing(procs, tmp_path):
    h = Herd(procs, tmp_path, topology=TOPO)
    h.start("Pear")
    secret = read_secret(h)
    c, _, auth = handshake(h, "Apple", "Pear", "cd" * 16, secret)
    c.send(auth)
    c.send(NO_LOG)
    c.read_until(b"HERD-SYNCED 0\n")
    good = b"AT Apple +0.000000001 victim +1+1 1621464827"
    c.send(b"HERD-AT " + good + b"\n")
    wait_for(lambda: held_line(h, "Pear", "victim") == good, what="good record")
    bad = [
        b"HERD-AT AT Apple +0.1 victim +1+1 1999999999",          # diff not 9 digits
        b"HERD-AT AT Apple +0.000000001 victim +91+1 1999999999", # latitude
        b"HERD-AT AT Apple +0.000000001 victim +1+1 1999999999 x",
        b"HERD-AT  AT Apple +0.000000001 victim +1+1 1999999999",
        b"HERD-AT AT Apple  +0.000000001 victim +1+1 1999999999",
        b"HERD-AT AT Apple +0.000000001 victim +1+1 1999999999.1234567890",
        b"HERD-AT",
        b"HERD-SYNCED -1",
        b"HERD-NONSENSE",
        b"\x00\xff\xfe",
        b"IAMAT victim +2+2 1999999999",
    ]
    for line in bad:
        c.send(line + b"\n")
    c.send(b"HERD-AT AT Apple +0.000000001 marker +1+1 1\n")
    wait_for(lambda: held_line(h, "Pear", "marker") is not None, what="marker")
    assert held_line(h, "Pear", "victim") == good
    assert "malformed" in h.log("Pear")


def test_peer_that_is_not_a_neighbour_is_refused(procs, tmp_path):
    h = Herd(procs, tmp_path, topology={"Apple": ["Pear"], "Pear": [], "Zed": []})
    h.start("Pear")
    c = h.client("Pear")
    line = b"HERD-HELLO Zed Pear " + b"ab" * 16
    c.send(line + b"\n")
    assert c.read_line() == b"? " + line + b"\n"
    # A neighbour that should be dialed, not dial (Pear sorts after Apple,
    # so Pear never accepts Apple's role reversed).
    line = b"HERD-HELLO Pear Apple " + b"ab" * 16
    c.send(line + b"\n")
    assert c.read_line() == b"? " + line + b"\n"


def test_no_secret_in_logs_or_status(procs, tmp_path):
    h = Herd(procs, tmp_path)
    h.start_all()
    secret = read_secret(h).decode()
    for name in h.topology:
        h.client(name).request("IAMAT x +1+1 1")
    for name in list(h.procs):
        h.stop(name)
    for root, _, files in os.walk(h.dir):
        for f in files:
            if f == "herd.secret":
                continue
            with open(os.path.join(root, f), "rb") as fh:
                assert secret.encode() not in fh.read(), f
