"""Links are TLS 1.3 (docs/PEERS.md): what crosses a link cannot be read
off the wire (a real tcpdump capture), cannot be altered (a proxy that
flips a byte makes the link drop with nothing applied) and cannot be
replayed; the client port still speaks SPEC.md in clear."""

import os
import shutil
import signal
import socket

from herdlib import Herd, binary, held_line, iamat, port_open, wait_for
from linklib import Proxy

TOPO = {"Apple": ["Pear"], "Pear": []}     # Apple dials Pear's port


def tcpdump(procs, path, port):
    """A real tcpdump on loopback, writing every packet of port to path;
    returns once it is capturing."""
    p = procs.start(["tcpdump", "-i", "lo", "-n", "-U", "--immediate-mode",
                     "-s", "0", "-Z", "root",
                     "-w", str(path), "tcp port %d" % port])
    line = p.stderr.readline().decode(errors="replace")
    assert "listening on" in line, line
    return p


def stop(p):
    p.send_signal(signal.SIGINT)
    p.wait(timeout=10)


def test_link_traffic_is_encrypted_on_the_wire(procs, tmp_path):
    h = Herd(procs, tmp_path, topology=TOPO)
    h.start("Pear")
    link_cap = tmp_path / "link.pcap"
    client_cap = tmp_path / "client.pcap"
    # Pear's port carries only the link (no client talks to Pear while
    # the capture runs); Apple's carries the clients' IAMATs.
    dumps = [tcpdump(procs, link_cap, h.ports["Pear"]),
             tcpdump(procs, client_cap, h.ports["Apple"])]
    h.start("Apple")
    h.wait_links()
    ids = ["private.person.%d" % i for i in range(20)]
    loc = "+12.3456789-098.7654321"
    for i, cid in enumerate(ids):
        iamat(h, "Apple", cid, loc, "1621464827.%d" % i)
    # Barrier: Pear has applied the last one from the link.
    wait_for(lambda: "update from Apple: %s" % ids[-1] in h.log("Pear"),
             what="the last update to cross the link")
    # And tcpdump (-U: a write per packet) has written client lines: on a
    # busy machine it lags behind the node, and the kernel may drop some
    # packets for it, so the proof that it sees client traffic in clear is
    # one line, not all twenty.
    wait_for(lambda: any(c.encode() in client_cap.read_bytes() for c in ids),
             what="a client line in the client capture")
    for p in dumps:
        stop(p)
    link = link_cap.read_bytes()
    client = client_cap.read_bytes()
    # The captures work: the link's clear HERD-HELLO is in one, the
    # client lines in the other...
    assert b"HERD-HELLO Apple Pear herd-v2 " in link
    assert b"\x17\x03\x03" in link       # TLS application data records
    assert loc.encode() in client
    # ...but nothing of a client crosses the link in clear.
    for cid in ids:
        assert cid.encode() not in link
    assert loc.encode() not in link
    assert b"private.person" not in link
    assert b"HERD-AT" not in link and b"HERD-SYNCED" not in link
    # And the records did arrive.
    assert held_line(h, "Pear", ids[0]) is not None


def proxied_herd(procs, tmp_path):
    """Pear listening on its port; Apple dialing it through a proxy (its
    own herd.ini names the proxy's port for Pear, the run_dir and so the
    secret are shared)."""
    h = Herd(procs, tmp_path, topology=TOPO)
    h.start("Pear")
    proxy = Proxy(h.ports["Pear"])
    apple_dir = tmp_path / "apple"
    apple_dir.mkdir()
    text = open(h.ini).read()
    text = text.replace("run_dir = run", "run_dir = %s" % (tmp_path / "run"))
    text = text.replace("log_dir = logs", "log_dir = %s" % (tmp_path / "logs"))
    text = text.replace("port = %d" % h.ports["Pear"], "port = %d" % proxy.port)
    ini = apple_dir / "herd.ini"
    ini.write_text(text)
    p = procs.start([binary("herd-node"), "-c", str(ini), "Apple"],
                    cwd=str(apple_dir))
    h.procs["Apple"] = p
    wait_for(lambda: port_open(h.ports["Apple"]), what="Apple to listen")
    h.wait_links()
    return h, proxy


def test_tampered_link_drops_with_nothing_applied_and_replay_is_refused(
        procs, tmp_path):
    h, proxy = proxied_herd(procs, tmp_path)
    try:
        first = iamat(h, "Apple", "before.tamper", "+1+1", "1621464827")
        wait_for(lambda: held_line(h, "Pear", "before.tamper") == first,
                 what="the link to carry an update")
        session = bytes(proxy.sessions[0])
        # One byte of the next TLS record from Apple is flipped; the proxy
        # takes no new connection, so the link stays down afterwards.
        proxy.stop_accepting()
        proxy.tamper()
        iamat(h, "Apple", "tampered.id", "+2+2", "1621464828")
        wait_for(proxy.flipped.is_set, what="the proxy to flip a byte")
        wait_for(lambda: "link down: Apple (TLS read failed" in h.log("Pear"),
                 what="Pear to drop the link on the forged record")
        assert held_line(h, "Pear", "tampered.id") is None
        assert held_line(h, "Pear", "before.tamper") == first
        wait_for(lambda: (h.status("Pear") or {}).get("links_up") == 0,
                 what="Pear's status to show the link down")
        assert h.status("Pear")["applied"] == 1
    finally:
        proxy.close()

    # The recorded session, replayed byte for byte to a Pear that lost
    # its data, is refused: nothing of it is stored.
    h.stop("Apple")
    h.stop("Pear")
    shutil.rmtree(os.path.join(h.dir, "data"))
    h.start("Pear")
    assert session.startswith(b"HERD-HELLO Apple Pear herd-v2 ")
    r = socket.create_connection(("127.0.0.1", h.ports["Pear"]))
    r.sendall(session)
    r.settimeout(10)
    try:
        while r.recv(65536):
            pass
    except ConnectionResetError:
        pass
    r.close()
    wait_for(lambda: "link handshakes: 1 failed" in h.log("Pear"),
             what="Pear to log the refused replay")
    assert held_line(h, "Pear", "before.tamper") is None
    assert "link up" not in h.log("Pear").split("starting:")[-1]
