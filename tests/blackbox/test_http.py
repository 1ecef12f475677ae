"""The supervisor's HTTP face (issue 14): /metrics checked by the real
promtool and scraped by a real Prometheus server, /api/status, the live
page loaded by a real headless Chromium, and the face's bounds (methods,
request size, connections)."""

import html.parser
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from herdlib import DEFAULT_TOPOLOGY, REPO, Client, free_port, wait_for
from supervisorlib import pid_alive

RULES = os.path.join(REPO, "docs", "herd.rules.yml")
ARTIFACTS = os.path.join(REPO, "build", "test-artifacts")
CHROMIUM = "/usr/bin/chromium"


def herd_with_http(make_herd, topology=None):
    port = free_port()
    h = make_herd(topology or DEFAULT_TOPOLOGY,
                  herd={"http": "127.0.0.1:%d" % port})
    h.http = port
    h.start()
    for name in h.topology:
        h.wait_links(name, len(neighbours(h.topology, name)))
    return h


def iamat(h, node, client_id, loc, t):
    c = Client(h.ports[node])
    try:
        return c.request("IAMAT %s %s %s" % (client_id, loc, t)).rstrip(b"\n")
    finally:
        c.close()


def neighbours(topology, name):
    out = set(topology[name])
    for other, ns in topology.items():
        if name in ns:
            out.add(other)
    return out


def edges(topology):
    return {tuple(sorted((a, b))) for a, ns in topology.items() for b in ns}


def get(h, path, method="GET", headers=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (h.http, path),
                                 method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def raw(port, data, timeout=10):
    """Send bytes, read until the server closes; b"" when it closed or
    reset without a word."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = b""
    try:
        s.sendall(data)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        s.close()
    return out


def samples(text):
    """{(name, frozenset(labels)): value} of an exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        name, _, rest = head.partition("{")
        labels = []
        for part in rest.rstrip("}").split('",'):
            if part:
                k, v = part.split('="', 1)
                labels.append((k, v.rstrip('"')))
        out[(name, frozenset(labels))] = float(value)
    return out


# ---- /metrics and the rules, checked by promtool ------------------------

def test_metrics_pass_promtool_and_name_no_client(make_herd):
    h = herd_with_http(make_herd)
    for i in range(5):
        assert iamat(h, "Hill", "secret-client-%d" % i, "+12.5-45.25",
                     "%d.5" % (1700000000 + i)).startswith(b"AT Hill ")
    c = socket.create_connection(("127.0.0.1", h.ports["Hill"]))
    c.sendall(b"HELLO there\n")
    c.recv(100)
    c.close()
    # The nodes write their numbers into their status files each second.
    def scrape():
        status, headers, body = get(h, "/metrics")
        s = samples(body.decode())
        return (s.get(("herd_requests_total", frozenset(
            {("node", "Hill"), ("verb", "invalid")}))) == 1 and
            all(s.get(("herd_records", frozenset({("node", n)}))) == 5
                for n in DEFAULT_TOPOLOGY) and (status, headers, body))
    status, headers, body = wait_for(scrape, what="the numbers in /metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    p = subprocess.run(["promtool", "check", "metrics"], input=body,
                       capture_output=True, timeout=60)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert p.stdout == b"" and p.stderr == b"", (p.stdout, p.stderr)
    # No client id or location, ever.
    assert "secret-client" not in text and "45.25" not in text
    s = samples(text)
    assert s[("herd_requests_total",
              frozenset({("node", "Hill"), ("verb", "IAMAT")}))] == 5
    for family in ["herd_request_duration_seconds_bucket",
                   "herd_flood_lag_seconds_bucket", "herd_records",
                   "herd_record_bytes", "herd_client_connections",
                   "herd_link_up", "herd_floods_total",
                   "herd_journal_fsync_duration_seconds_count",
                   "herd_journal_written_bytes_total",
                   "herd_places_requests_total",
                   "herd_places_request_duration_seconds_bucket",
                   "process_cpu_seconds_total",
                   "process_resident_memory_bytes", "process_open_fds",
                   "process_start_time_seconds",
                   "herd_supervisor_child_restarts_total",
                   "herd_supervisor_child_state"]:
        assert any(k[0] == family for k in s), family
    for node in DEFAULT_TOPOLOGY:
        assert s[("herd_supervisor_child_state",
                  frozenset({("child", node), ("kind", "node"),
                             ("state", "running")}))] == 1
        assert s[("herd_records", frozenset({("node", node)}))] == 5
        for peer in neighbours(DEFAULT_TOPOLOGY, node):
            assert s[("herd_link_up",
                      frozenset({("node", node), ("peer", peer)}))] == 1


def test_rules_pass_promtool():
    p = subprocess.run(["promtool", "check", "rules", RULES],
                       capture_output=True, timeout=60)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert b"SUCCESS: 8 rules found" in p.stdout
    text = open(RULES).read()
    for alert in ["HerdNodeDown", "HerdLinkDown", "HerdFloodLagHigh",
                  "HerdNodeRestarting", "HerdNodeFatal", "HerdPlacesFailing"]:
        assert "alert: %s\n" % alert in text


def test_fatal_reason_is_an_info_metric(make_herd):
    port = free_port()
    # Hill's port is taken by a listener of ours: it cannot bind, dies
    # with 111 five times in a row, and the supervisor gives up.
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    try:
        h = make_herd({"Hill": []}, herd={"http": "127.0.0.1:%d" % port},
                      ports={"Hill": blocker.getsockname()[1]})
        h.http = port
        h.ctl("start")
        h.wait_state("Hill", "fatal")
        s = samples(get(h, "/metrics")[2].decode())
        info = [k for k in s if k[0] == "herd_supervisor_child_fatal_info"]
        assert len(info) == 1 and s[info[0]] == 1
        labels = dict(info[0][1])
        assert labels["child"] == "Hill" and labels["kind"] == "node"
        assert "cannot bind" in labels["reason"] or "exit" in labels["reason"]
        assert s[("herd_supervisor_child_state",
                  frozenset({("child", "Hill"), ("kind", "node"),
                             ("state", "fatal")}))] == 1
    finally:
        blocker.close()


# ---- a real Prometheus server --------------------------------------------

def prom_query(port, q):
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (
        port, urllib.parse.urlencode({"query": q}))
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
    except (urllib.error.URLError, ConnectionError, ValueError):
        return None
    if body.get("status") != "success":
        return None
    return body["data"]["result"]


def test_prometheus_scrapes_the_herd(make_herd, procs, tmp_path):
    h = herd_with_http(make_herd)
    prom_port = free_port()
    conf = tmp_path / "prometheus.yml"
    conf.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "rule_files: ['%s']\n"
        "scrape_configs:\n  - job_name: herd\n    static_configs:\n"
        "      - targets: ['127.0.0.1:%d']\n" % (RULES, h.http))
    prom = procs.start(["prometheus", "--config.file=%s" % conf,
                        "--storage.tsdb.path=%s" % (tmp_path / "tsdb"),
                        "--web.listen-address=127.0.0.1:%d" % prom_port,
                        "--log.level=warn"], cwd=str(tmp_path))
    try:
        n = 12
        for i in range(n):
            assert iamat(h, "Hill", "prom-%d" % i, "+1.5-2.5",
                         "%d.25" % (1750000000 + i)).startswith(b"AT Hill ")
        # A scrape taken after every update reached every node.
        def total():
            r = prom_query(prom_port, 'sum(herd_requests_total{job="herd"})')
            return r and float(r[0]["value"][1]) == n and r
        wait_for(total, timeout=60, interval=0.5,
                 what="Prometheus to see %d requests" % n)
        r = prom_query(prom_port, 'sum(herd_requests_total{verb="IAMAT"})')
        assert float(r[0]["value"][1]) == n

        def lag_counts():
            r = prom_query(prom_port, 'sum by (node) '
                           '(herd_flood_lag_seconds_count{job="herd"})')
            got = {x["metric"]["node"]: float(x["value"][1]) for x in r or []}
            others = [x for x in DEFAULT_TOPOLOGY if x != "Hill"]
            return all(got.get(x) == n for x in others) and got
        got = wait_for(lag_counts, timeout=60, interval=0.5,
                       what="flood lag counted at every other node")
        assert got["Hill"] == 0     # its own updates are not flooded to it
        # The rules loaded and were evaluated against the herd.
        rules = json.load(urllib.request.urlopen(
            "http://127.0.0.1:%d/api/v1/rules" % prom_port, timeout=10))
        names = [r["name"] for g in rules["data"]["groups"] for r in g["rules"]]
        assert "HerdNodeDown" in names and "HerdFloodLagHigh" in names
    finally:
        prom.send_signal(signal.SIGTERM)
        try:
            prom.wait(timeout=20)
        except subprocess.TimeoutExpired:
            prom.kill()


# ---- /api/status -------------------------------------------------------

def test_api_status_is_herdctl_status_json(make_herd):
    h = herd_with_http(make_herd, {"Hill": ["Jaquez"], "Jaquez": []})
    status, headers, body = get(h, "/api/status")
    assert status == 200 and headers["Content-Type"] == "application/json"
    api = json.loads(body)
    ctl = json.loads(h.ctl("status", "--json").stdout)

    def shape(st):
        return [(n["name"], n["state"], n["pid"], n["restarts"],
                 sorted((l["peer"], l["state"]) for l in n["links"]))
                for n in st["nodes"]]
    assert shape(api) == shape(ctl)
    assert set(api) == set(ctl) and set(api["herd"]) == set(ctl["herd"])
    assert [sorted(n) for n in api["nodes"]] == [sorted(n) for n in ctl["nodes"]]


# ---- the face's bounds -----------------------------------------------------

def test_only_get_and_head_and_bounded_requests(make_herd):
    h = herd_with_http(make_herd, {"Hill": []})
    for path in ["/", "/metrics", "/api/status"]:
        assert get(h, path)[0] == 200
        status, headers, body = get(h, path, method="HEAD")
        assert status == 200 and body == b""
        for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]:
            status, headers, _ = get(h, path, method=method)
            assert status == 405, (path, method)
            assert headers["Allow"] == "GET, HEAD"
    assert get(h, "/nope")[0] == 404
    assert get(h, "/metrics/")[0] == 404
    assert get(h, "/api/status?x=1")[0] == 200      # a query is no new path
    # A body is never read, whatever it claims.
    reply = raw(h.http, b"POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Length: 1000000\r\n\r\n" + b"x" * 4096)
    assert reply.startswith(b"HTTP/1.1 405 ")
    # A request line or headers past the bound: refused, nothing served.
    huge = raw(h.http, b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " +
               b"a" * 20000 + b"\r\n\r\n")
    assert not huge.startswith(b"HTTP/1.1 200"), huge[:100]
    assert huge == b"" or huge.split(b" ")[1] in (b"413", b"414", b"431"), huge[:100]
    long_url = raw(h.http, b"GET /" + b"m" * 20000 + b" HTTP/1.1\r\n"
                   b"Host: 127.0.0.1\r\n\r\n")
    assert not long_url.startswith(b"HTTP/1.1 200"), long_url[:100]
    # A foreign Host on a loopback face (DNS rebinding): refused.
    assert get(h, "/api/status", headers={"Host": "evil.example:80"})[0] == 421
    assert get(h, "/api/status", headers={"Host": "localhost:1"})[0] == 200
    # And the face still answers.
    assert get(h, "/metrics")[0] == 200


def test_connections_are_bounded_and_never_hold_up_restarts(make_herd):
    h = herd_with_http(make_herd, {"Hill": []})
    held = []
    try:
        # Idle connections up to the per-address bound (16), then more.
        for _ in range(24):
            held.append(socket.create_connection(("127.0.0.1", h.http),
                                                 timeout=10))
        # One more is closed without an answer while those are open.
        assert raw(h.http, b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") == b""
        # Meanwhile the supervisor reaps and restarts as ever.
        pid = h.node("Hill")["pid"]
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: (lambda n: n["pid"] not in (None, pid) and
                          n["state"] == "running" and n)(h.node("Hill")),
                 timeout=30, what="Hill restarted")
        assert not pid_alive(pid)
    finally:
        for s in held:
            s.close()
    # Once they are gone, the face serves again.
    def serves():
        try:
            return get(h, "/metrics")[0] == 200
        except OSError:
            return False    # not yet: the server has yet to see them close
    wait_for(serves, what="the face again")


# ---- the live page in a real Chromium --------------------------------------

class Dom(html.parser.HTMLParser):
    def __init__(self, text):
        super().__init__()
        self.tags = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def find(self, tag, **want):
        return [a for t, a in self.tags if t == tag and all(
            a.get(k.replace("_", "-")) == v for k, v in want.items())]


def chromium(args, timeout=60):
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--no-first-run", "--mute-audio",
            "--user-data-dir=%s" % args.pop(0)]
    p = subprocess.run(base + args, capture_output=True, timeout=timeout)
    return p


def dump(h, profile, budget_ms=2500):
    p = chromium([profile, "--virtual-time-budget=%d" % budget_ms,
                  "--dump-dom", "http://127.0.0.1:%d/" % h.http])
    assert p.returncode == 0, p.stderr[-2000:]
    return Dom(p.stdout.decode())


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="no chromium")
def test_live_page_in_chromium(make_herd, tmp_path):
    h = herd_with_http(make_herd)
    for i in range(8):
        iamat(h, "Smith", "page-%d" % i, "+3.5-4.5", "%d.5" % (1760000000 + i))
    profile = str(tmp_path / "chromium")
    dom = dump(h, profile)
    main = dom.find("main", id="herd")[0]
    assert int(main["data-updates"]) >= 2, main   # refreshed without reload
    for name in DEFAULT_TOPOLOGY:
        assert dom.find("g", data_node=name, data_state="running"), name
        assert dom.find("tr", data_node=name, data_state="running"), name
    lines = dom.find("line")
    shown = {(a["data-a"], a["data-b"]): a["data-state"] for a in lines
             if "edge" in a.get("class", "")}
    assert shown == {e: "up" for e in edges(DEFAULT_TOPOLOGY)}

    # kill -9 a node: the page shows its restart (a new pid, restarts 1)
    # in any view whose data is 3 s younger than the kill.
    old = h.node("Campbell")["pid"]
    killed = time.time()
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        d = dump(h, profile, budget_ms=1200)
        row = d.find("tr", data_node="Campbell")[0]
        updated = int(d.find("main", id="herd")[0]["data-updated"]) / 1000.0
        if row["data-restarts"] == "1" and row["data-pid"] not in ("", str(old)):
            break
        assert updated < killed + 3, ("page data %.1f s after the kill shows "
                                      "no restart: %r" % (updated - killed, row))
        assert time.monotonic() < deadline, "no page view showed the restart"
    wait_for(lambda: h.node("Campbell")["state"] == "running" and
             h.wait_links("Campbell", 2), what="Campbell back")

    # Screenshots, wide and phone-narrow, kept as test artifacts.
    os.makedirs(ARTIFACTS, exist_ok=True)
    for name, size in [("herd-page.png", "1200,900"),
                       ("herd-page-phone.png", "390,1400")]:
        out = os.path.join(ARTIFACTS, name)
        if os.path.exists(out):
            os.unlink(out)
        p = chromium([profile, "--virtual-time-budget=4000",
                      "--window-size=%s" % size, "--hide-scrollbars",
                      "--screenshot=%s" % out, "http://127.0.0.1:%d/" % h.http])
        assert p.returncode == 0 and os.path.getsize(out) > 10000, p.stderr[-2000:]
    shutil.copy(os.path.join(ARTIFACTS, "herd-page.png"),
                str(tmp_path / "herd-page.png"))


# ---- --http-only: the face for a herd systemd runs ----------------------

def test_http_only_watches_nodes_it_does_not_run(procs, tmp_path):
    from herdlib import Herd, binary
    port = free_port()
    topo = {"Hill": ["Jaquez"], "Jaquez": []}
    h = Herd(procs, tmp_path, topology=topo, herd={"http": "127.0.0.1:%d" % port})
    h.http = port
    h.start_all()
    face = procs.start([binary("herd-supervisor"), "-c", h.ini, "--http-only"],
                       cwd=str(tmp_path))

    def rows():
        try:
            st = json.loads(get(h, "/api/status")[2])
        except (OSError, ValueError):
            return None
        return {n["name"]: n for n in st["nodes"]}
    r = wait_for(lambda: (lambda x: x if x and all(
        x[n]["state"] == "running" for n in topo) else None)(rows()),
        what="both nodes seen running")
    assert r["Hill"]["pid"] == h.procs["Hill"].pid
    assert r["Hill"]["restarts"] == 0
    body = wait_for(lambda: (lambda b: b if b'herd_link_up{node="Hill",peer="Jaquez"} 1'
                             in b else None)(get(h, "/metrics")[2]),
                    what="Hill's link in /metrics")
    p = subprocess.run(["promtool", "check", "metrics"], input=body,
                       capture_output=True, timeout=60)
    assert p.returncode == 0, (p.stdout, p.stderr)
    # What systemd does after a crash: start it again.  A new pid is a
    # restart.
    old = h.procs["Hill"].pid
    h.stop("Hill", sig=signal.SIGKILL)
    wait_for(lambda: (rows() or {}).get("Hill", {}).get("state") == "stopped",
             what="Hill seen gone")
    h.start("Hill")
    r = wait_for(lambda: (lambda x: x if x and x["Hill"]["state"] == "running"
                          and x["Hill"]["pid"] != old else None)(rows()),
                 what="Hill seen back")
    assert r["Hill"]["restarts"] == 1
    # No supervisor's files: the face takes no lock, socket or pid file.
    for f in ["supervisor.sock", "supervisor.pid", "supervisor.lock"]:
        assert not os.path.exists(os.path.join(str(tmp_path), "run", f)), f
    face.send_signal(signal.SIGTERM)
    assert face.wait(timeout=20) == 0
