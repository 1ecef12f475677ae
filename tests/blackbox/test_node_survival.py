"""What every node must survive (SPEC.md): places down or slow, huge
lines, garbage, stalled half lines, clients that never read; and the
process contract: signals and exit codes."""

import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from herdlib import Client, Drain, Herd, binary, free_port, wait_for, write_ini

KIWI = "IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"


def one_node(procs, tmp_path, places=None, herd=None):
    h = Herd(procs, tmp_path, topology={"Hill": []}, places=places, herd=herd)
    h.start_all()
    return h


def error_json(reply, at):
    assert reply.startswith(at)
    body = reply[len(at):]
    assert body.endswith(b"}\n\n") and b"\n\n" not in body[:-2]
    return json.loads(body[:-2])


def test_places_refused_still_gives_the_shape(procs, tmp_path):
    h = one_node(procs, tmp_path, places={"url": "http://127.0.0.1:%d" % free_port()})
    c = h.client("Hill")
    at = c.request(KIWI)
    data = error_json(c.whatsat("WHATSAT kiwi.cs.ucla.edu 10 5"), at)
    assert data["results"] == [] and data["status"] == "UNKNOWN_ERROR"
    assert data["error_message"]
    assert data["html_attributions"] == []


@pytest.mark.parametrize("status", ["REQUEST_DENIED", "OVER_QUERY_LIMIT", "INVALID_REQUEST"])
def test_google_error_status_passed_on(procs, tmp_path, places, status):
    places.status = status
    h = one_node(procs, tmp_path, places={"url": places.url})
    c = h.client("Hill")
    at = c.request(KIWI)
    data = error_json(c.whatsat("WHATSAT kiwi.cs.ucla.edu 10 5"), at)
    assert data["status"] == status and data["results"] == []
    assert data["error_message"] == "double says " + status


def test_zero_results_passed_on(procs, tmp_path, places):
    places.status = "ZERO_RESULTS"
    h = one_node(procs, tmp_path, places={"url": places.url})
    c = h.client("Hill")
    at = c.request(KIWI)
    data = error_json(c.whatsat("WHATSAT kiwi.cs.ucla.edu 10 5"), at)
    assert data["status"] == "ZERO_RESULTS" and data["results"] == []


@pytest.mark.parametrize("raw", [b"not json", b"", b"[1,2,3]", b"{\"results\": 5}",
                                 b"\x00\xff\xfe garbage", b"{" * 5000])
def test_garbage_from_places_gives_the_error_shape(procs, tmp_path, places, raw):
    places.raw = raw
    h = one_node(procs, tmp_path, places={"url": places.url})
    c = h.client("Hill")
    at = c.request(KIWI)
    data = error_json(c.whatsat("WHATSAT kiwi.cs.ucla.edu 10 5"), at)
    assert data["status"] == "UNKNOWN_ERROR" and data["results"] == []


def test_http_error_from_places(procs, tmp_path, places):
    places.http_status = 503
    places.raw = b"Service Unavailable"
    h = one_node(procs, tmp_path, places={"url": places.url})
    c = h.client("Hill")
    at = c.request(KIWI)
    data = error_json(c.whatsat("WHATSAT kiwi.cs.ucla.edu 10 5"), at)
    assert "503" in data["error_message"]


def test_slow_places_do_not_block_iamat(procs, tmp_path, places):
    places.delay = 3.0
    h = one_node(procs, tmp_path, places={"url": places.url, "timeout_ms": "1500"})
    slow = h.client("Hill")
    at = slow.request(KIWI)
    slow.send("WHATSAT kiwi.cs.ucla.edu 10 5\n")
    # While that WHATSAT waits for places, other clients are served.
    other = h.client("Hill")
    for i in range(20):
        assert other.request("IAMAT fast%d +1+1 1621464827" % i).startswith(b"AT Hill ")
    slow.sock.settimeout(0.2)
    with pytest.raises(socket.timeout):
        slow.read_line()            # the WHATSAT is still pending
    slow.sock.settimeout(10)
    first = slow.read_line()
    assert first == at
    data = json.loads(slow.read_until(b"\n\n")[:-2])
    assert data["status"] == "UNKNOWN_ERROR" and data["results"] == []
    assert "time" in data["error_message"].lower()


def test_huge_line_answered_and_closed_others_served(procs, tmp_path):
    h = one_node(procs, tmp_path, herd={"max_line": "1024"})
    bystander = h.client("Hill")
    big = h.client("Hill")
    big.send(b"A" * 5000)
    reply = big.read_line()
    assert reply.startswith(b"? AAAA") and len(reply) == 2 + 1024 + 1
    assert big.closed()
    assert bystander.request(KIWI).startswith(b"AT Hill ")
    # A line of exactly max_line bytes is still served.
    exact = h.client("Hill")
    line = b"IAMAT " + b"x" * (1024 - len(b"IAMAT  +1+1 1621464827")) + b" +1+1 1621464827"
    assert len(line) == 1024
    exact.send(line + b"\n")
    assert exact.read_line().startswith(b"AT Hill ")


def test_megabytes_of_garbage(procs, tmp_path):
    h = one_node(procs, tmp_path)
    bystander = h.client("Hill")
    g = h.client("Hill")
    reader = Drain(g)
    chunk = bytes(range(256)) * 4096        # 1 MiB, with newlines inside
    for i in range(32):
        g.send(chunk)
        if i % 8 == 0:
            assert bystander.request(KIWI).startswith(b"AT Hill ")
    assert bystander.request(KIWI).startswith(b"AT Hill ")
    g.sock.shutdown(socket.SHUT_WR)
    reader.join(timeout=30)
    assert reader.received > 0


def test_half_line_stall_does_not_block_others(procs, tmp_path):
    h = one_node(procs, tmp_path, herd={"idle_timeout_s": "1"})
    stalled = h.client("Hill")
    stalled.send(b"IAMAT kiwi.cs.ucla.edu +34.06")
    c = h.client("Hill")
    assert c.request(KIWI).startswith(b"AT Hill ")
    # The half line is given up after idle_timeout_s.
    assert stalled.closed(timeout=5)


def test_client_that_never_reads(procs, tmp_path):
    h = one_node(procs, tmp_path, herd={"max_output_kb": "64"})
    hog = socket.create_connection(("127.0.0.1", h.ports["Hill"]))
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    hog.settimeout(0.5)
    line = (KIWI + "\n").encode() * 1000
    sent = 0
    try:
        for _ in range(200):
            sent += hog.send(line)
    except (socket.timeout, BlockingIOError, ConnectionResetError, BrokenPipeError):
        pass
    # The node stopped reading it (or dropped it) and still serves others.
    c = h.client("Hill")
    assert c.request(KIWI).startswith(b"AT Hill ")
    assert sent < len(line) * 200
    hog.close()


def test_many_connections_and_disconnects(procs, tmp_path):
    h = one_node(procs, tmp_path)
    for _ in range(300):
        s = socket.create_connection(("127.0.0.1", h.ports["Hill"]))
        s.send(b"IAMAT x +1+1 1")
        s.close()
    assert h.client("Hill").request(KIWI).startswith(b"AT Hill ")


def test_too_many_clients_refused_with_a_line(procs, tmp_path):
    h = one_node(procs, tmp_path, herd={"max_clients": "2"})
    # The start's probe gone first, so both kept clients take regular slots.
    wait_for(lambda: "client 1 closed" in h.log("Hill"),
             what="the start probe's close")
    # max_clients served (mid-line, so never idle enough to be closed for
    # a newcomer), plus 64 spare slots kept for neighbours' links.
    keep = [h.client("Hill") for _ in range(2)]
    for c in keep:
        c.send("IAMAT kept")
    spare = [h.client("Hill") for _ in range(64)]
    extra = Client(h.ports["Hill"])
    assert extra.read_line() == b"? too many clients\n"
    assert extra.closed()
    # A spare slot is not for a client: its first request is refused.
    assert spare[0].request(KIWI) == b"? too many clients\n"
    assert spare[0].closed()
    keep[0].send(" +1+1 1\n")
    assert keep[0].read_line().startswith(b"AT Hill ")


def test_sigterm_and_sigint_exit_zero(procs, tmp_path):
    h = one_node(procs, tmp_path)
    assert h.stop("Hill", sig=signal.SIGTERM) == 0
    assert "stopped" in h.log("Hill")
    h.start("Hill")
    assert h.stop("Hill", sig=signal.SIGINT) == 0


def test_bad_usage_and_config_exit_100(tmp_path):
    ini, _ = write_ini(tmp_path, {"Hill": []})
    r = subprocess.run([binary("herd-node")], capture_output=True)
    assert r.returncode == 100 and b"usage" in r.stderr
    r = subprocess.run([binary("herd-node"), "-c", ini, "Nobody"], capture_output=True)
    assert r.returncode == 100 and b"Nobody" in r.stderr
    bad = tmp_path / "bad.ini"
    bad.write_text("[herd]\nbogus = 1\n[node A]\nport = 1\n")
    r = subprocess.run([binary("herd-node"), "-c", str(bad), "A"], capture_output=True)
    assert r.returncode == 100
    assert r.stderr == ("%s:2: unknown key 'bogus' in [herd]\n" % bad).encode()


def test_port_taken_exits_111(procs, tmp_path):
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    ini, _ = write_ini(tmp_path, {"Hill": []}, ports={"Hill": port})
    r = subprocess.run([binary("herd-node"), "-c", ini, "Hill"], capture_output=True,
                       timeout=20)
    blocker.close()
    assert r.returncode == 111
    assert b"herd-node: fatal: cannot bind 127.0.0.1:%d" % port in r.stderr


def test_status_file(procs, tmp_path):
    h = Herd(procs, tmp_path, topology={"Hill": ["Jaquez"], "Jaquez": []})
    h.start_all()
    h.client("Hill").request(KIWI)
    st = wait_for(lambda: (h.status("Hill") or {}).get("clients") == 1 and h.status("Hill"))
    assert st["name"] == "Hill" and st["pid"] == h.procs["Hill"].pid
    assert st["links_up"] == 1 and st["links_total"] == 1
    assert [{k: x[k] for k in ("peer", "state")} for x in st["links"]] == \
        [{"peer": "Jaquez", "state": "up"}]
    # Catch-up figures per link (test_catchup.py checks their values).
    assert set(st["links"][0]["catchup"]) >= {
        "mode", "sent_records", "sent_bytes", "received_records",
        "received_bytes"}


def test_sighup_relinks_without_restart(procs, tmp_path):
    topo = {"Hill": ["Jaquez"], "Jaquez": [], "Smith": []}
    h = Herd(procs, tmp_path, topology=topo)
    h.start_all()
    at = h.client("Hill").request("IAMAT keep +1+1 1621464827").rstrip(b"\n")
    pid = h.procs["Hill"].pid
    text = open(h.ini).read().replace("neighbors = Jaquez", "neighbors = Smith")
    open(h.ini, "w").write(text)
    for name in ("Hill", "Jaquez", "Smith"):
        h.procs[name].send_signal(signal.SIGHUP)
    wait_for(lambda: [(x["peer"], x["state"]) for x in
                      (h.status("Hill") or {}).get("links", [])] ==
             [("Smith", "up")], what="Hill to link to Smith instead")
    assert h.procs["Hill"].pid == pid and h.procs["Hill"].poll() is None
    c = h.client("Smith")
    wait_for(lambda: c.whatsat("WHATSAT keep 1 1").startswith(at), what="Smith catch-up")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_descriptors_no_busy_loop(procs, tmp_path):
    """With its descriptors used up the node stops accepting for a moment
    instead of spinning on a listener that stays readable, and serves
    again once descriptors are free."""
    import resource
    ini, ports = write_ini(tmp_path, {"Hill": []})

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))

    p = procs.start([binary("herd-node"), "-c", ini, "Hill"], cwd=str(tmp_path),
                    preexec_fn=low_limit)
    from herdlib import port_open
    wait_for(lambda: port_open(ports["Hill"]), what="Hill")
    held = []
    for _ in range(80):
        try:
            held.append(socket.create_connection(("127.0.0.1", ports["Hill"]), timeout=2))
        except OSError:
            break
    time.sleep(0.5)
    # Connections beyond the limit wait in the backlog; the node idles.
    before = cpu_seconds(p.pid)
    time.sleep(2.0)
    spent = cpu_seconds(p.pid) - before
    assert spent < 1.0, "node spun for %.2f s of CPU in 2 s" % spent
    assert "pausing accepts" in open(tmp_path / "logs" / "Hill.log").read()
    for s in held:
        s.close()
    c = wait_for(lambda: _try_client(ports["Hill"]), timeout=10, what="service again")
    assert c.request(KIWI).startswith(b"AT Hill ")


def _try_client(port):
    try:
        c = Client(port, timeout=2)
        c.request("IAMAT probe +1+1 1")
        return c
    except (OSError, EOFError):
        return None


def test_slow_reader_with_whole_lines_waiting_is_not_dropped(procs, tmp_path):
    """A client that pipelines more than its output cap lets through is
    paused, not dropped: its waiting lines are whole, so the line deadline
    (idle_timeout_s) does not apply to them."""
    h = one_node(procs, tmp_path, herd={"idle_timeout_s": "1", "max_output_kb": "64"})
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # before connect
    s.connect(("127.0.0.1", h.ports["Hill"]))
    s.settimeout(10)
    n = 150000                      # ~10 MB of replies: more than kernel buffers
    sender = threading.Thread(
        target=lambda: s.sendall(b"IAMAT slow +1+1 1621464827\n" * n), daemon=True)
    sender.start()
    time.sleep(3)                   # not reading at all, past the deadline
    got, buf = 0, b""
    deadline = time.monotonic() + 60
    while got < n and time.monotonic() < deadline:
        chunk = s.recv(65536)
        assert chunk, "the node dropped a client whose lines were whole"
        got += chunk.count(b"\n")
    assert got == n
    sender.join(timeout=10)
    s.close()


def test_sighup_keeps_places_settings_until_restart(procs, tmp_path):
    """[places] is read once at start: a SIGHUP says a restart applies a
    change, and WHATSAT keeps asking the old URL."""
    old_port, new_port = free_port(), free_port()
    h = one_node(procs, tmp_path, places={"url": "http://127.0.0.1:%d" % old_port})
    c = h.client("Hill")
    at = c.request(KIWI)
    text = open(h.ini).read().replace(":%d" % old_port, ":%d" % new_port)
    open(h.ini, "w").write(text)
    h.procs["Hill"].send_signal(signal.SIGHUP)
    log = tmp_path / "logs" / "Hill.log"
    wait_for(lambda: "reloaded " in log.read_text(), what="the reload")
    assert "reload: [places] settings changed; a restart applies them" in log.read_text()
    data = error_json(c.whatsat("WHATSAT kiwi.cs.ucla.edu 10 5"), at)
    assert str(old_port) in data["error_message"]
    assert str(new_port) not in data["error_message"]
