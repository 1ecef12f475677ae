"""The herd's keys protect the links (docs/PEERS.md): a test that holds
the secret can link over TLS (so the checks below are not vacuous); a
replayed recording, a proof made for the other role, a wrong secret or an
old node's handshake cannot; an authenticated peer's malformed frames
change nothing."""

import os
import shutil
import socket

from herdlib import Herd, held_line, wait_for
from linklib import Proxy, TlsDialer, hello, key_id, link_psk, read_secret


TOPO = {"Apple": ["Pear"], "Pear": []}


# HERD-RESUME from a peer that holds nothing of the node's log.
NO_LOG = b"HERD-RESUME 0000000000000000 0\n"


def linked(h, secret, **kw):
    """A TLS link to Pear as Apple, confirmed and caught up."""
    t = TlsDialer(h.ports["Pear"], "Apple", "Pear", secret, **kw)
    assert t.read_line() == b"HERD-UP\n"
    # The node says where it is in our log; we hold nothing of its log,
    # and it sends its (empty) catch-up.
    t.read_until(b"HERD-RESUME ")
    t.send(NO_LOG)
    t.read_until(b"HERD-SYNCED 0\n")
    return t


def test_secret_holder_links_and_replay_is_refused(procs, tmp_path):
    h = Herd(procs, tmp_path, topology=TOPO)
    h.start("Pear")             # Apple (the dialer) is played by the test
    secret = read_secret(h.dir)
    # The dialer's bytes are recorded by a proxy on their way to Pear.
    proxy = Proxy(h.ports["Pear"])
    t = TlsDialer(proxy.port, "Apple", "Pear", secret)
    try:
        assert t.read_line() == b"HERD-UP\n"
        t.read_until(b"HERD-RESUME ")
        t.send(NO_LOG)
        t.read_until(b"HERD-SYNCED 0\n")
        line = b"AT Apple +0.000000001 from.test +1+1 1621464827"
        t.send(b"HERD-AT " + line + b"\n")
        wait_for(lambda: held_line(h, "Pear", "from.test") == line,
                 what="the authenticated flood to be stored")
        recorded = bytes(proxy.sessions[0])
    finally:
        t.close()
        proxy.close()
    assert recorded.startswith(hello("Apple", "Pear", key_id(secret)))
    assert b"from.test" not in recorded         # it went inside TLS

    # A fresh Pear (its data gone) is sent the whole recording again,
    # while a real link is up: the replay is refused, nothing of it is
    # stored, and the working link stays up.
    h.stop("Pear")
    shutil.rmtree(os.path.join(h.dir, "data"))
    h.start("Pear")
    live = linked(h, secret)
    try:
        r = socket.create_connection(("127.0.0.1", h.ports["Pear"]))
        r.sendall(recorded)
        r.settimeout(10)
        while r.recv(65536):
            pass                # read to the node's close
        r.close()
        wait_for(lambda: "link handshakes: 1 failed" in h.log("Pear"),
                 what="Pear to log the failed handshake")
        assert held_line(h, "Pear", "from.test") is None
        live.send(b"HERD-AT AT Apple +0.000000001 still.up +1+1 1621464827\n")
        wait_for(lambda: held_line(h, "Pear", "still.up") is not None,
                 what="the live link to survive the replay")
        assert "link down" not in h.log("Pear").split("starting:")[-1]
    finally:
        live.close()


def test_proof_for_the_other_role_is_refused(procs, tmp_path):
    """Reflection: the key Pear would use as the dialer (roles swapped)
    does not open a link on which Apple dials."""
    h = Herd(procs, tmp_path, topology=TOPO)
    h.start("Pear")
    secret = read_secret(h.dir)
    t = TlsDialer(h.ports["Pear"], "Apple", "Pear", secret,
                  psk=link_psk(secret, "Pear", "Apple"))
    try:
        assert t.closed()
    finally:
        t.close()
    wait_for(lambda: "(last: TLS handshake failed" in h.log("Pear"),
             what="Pear to log the failure")
    assert "link up" not in h.log("Pear")


def test_wrong_secret_with_a_known_key_id_is_refused(procs, tmp_path):
    h = Herd(procs, tmp_path, topology=TOPO)
    h.start("Pear")
    secret = read_secret(h.dir)
    t = TlsDialer(h.ports["Pear"], "Apple", "Pear", b"not the secret at all",
                  kid=key_id(secret))
    try:
        t.send(b"HERD-AT AT Apple +0.000000001 forged +1+1 1621464827\n")
        assert t.closed()
    finally:
        t.close()
    wait_for(lambda: "(last: TLS handshake failed" in h.log("Pear"),
             what="Pear to log the failure")
    assert held_line(h, "Pear", "forged") is None
    assert "link up" not in h.log("Pear")


def test_unknown_key_and_old_protocol_are_refused_by_name(procs, tmp_path):
    h = Herd(procs, tmp_path, topology=TOPO)
    h.start("Pear")
    c = h.client("Pear")
    c.send(hello("Apple", "Pear", "00" * 8))
    assert c.read_line() == b"HERD-REFUSED key 0000000000000000 is not in the keyring\n"
    assert c.closed()
    # A node of the old protocol (plaintext HMAC handshake) is told apart.
    c = h.client("Pear")
    c.send(b"HERD-HELLO Apple Pear " + b"ab" * 16 + b"\n")
    assert c.read_line() == (b"HERD-REFUSED herd-v2 (TLS) links only; this "
                             b"node refuses herd-v1\n")
    assert c.closed()
    log = h.log("Pear")
    assert "refused: key 0000000000000000 is not in the keyring" in log
    assert "old link protocol (herd-v1" in log


def test_malformed_frames_after_auth_change_nothing(procs, tmp_path):
    h = Herd(procs, tmp_path, topology=TOPO)
    h.start("Pear")
    t = linked(h, read_secret(h.dir))
    try:
        good = b"AT Apple +0.000000001 victim +1+1 1621464827"
        t.send(b"HERD-AT " + good + b"\n")
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
            b"HERD-UP",
            b"HERD-NONSENSE",
            b"\x00\xff\xfe",
            b"IAMAT victim +2+2 1999999999",
        ]
        for line in bad:
            t.send(line + b"\n")
        t.send(b"HERD-AT AT Apple +0.000000001 marker +1+1 1\n")
        wait_for(lambda: held_line(h, "Pear", "marker") is not None, what="marker")
        assert held_line(h, "Pear", "victim") == good
        assert "malformed" in h.log("Pear")
    finally:
        t.close()


def test_peer_that_is_not_a_neighbour_is_refused(procs, tmp_path):
    h = Herd(procs, tmp_path, topology={"Apple": ["Pear"], "Pear": [], "Zed": []})
    h.start("Pear")
    kid = key_id(read_secret(h.dir))
    c = h.client("Pear")
    line = hello("Zed", "Pear", kid).rstrip(b"\n")
    c.send(line + b"\n")
    assert c.read_line() == b"? " + line + b"\n"
    # A neighbour that should be dialed, not dial (Pear sorts after Apple,
    # so Pear never accepts Apple's role reversed).
    line = hello("Pear", "Apple", kid).rstrip(b"\n")
    c.send(line + b"\n")
    assert c.read_line() == b"? " + line + b"\n"


def test_no_secret_in_logs_or_status(procs, tmp_path):
    h = Herd(procs, tmp_path)
    h.start_all()
    secret = read_secret(h.dir).decode()
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
