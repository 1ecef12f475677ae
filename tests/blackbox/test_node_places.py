"""The node's places providers: google (Places API New) and google-legacy
against the suite's double, and local against the real herd-places."""

import json
import os
import socket

from herdlib import SUBSET, Herd, binary, free_port, port_open, wait_for
from places_double import make_results

KIWI = "IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"
KEY = "test-key-3f9a-not-a-real-key"


def whatsat_json(h, line):
    c = h.client("Hill")
    at = c.request(KIWI)
    reply = c.whatsat(line)
    assert reply.startswith(at)
    body = reply[len(at):]
    assert body.endswith(b"}\n\n") and b"\n\n" not in body[:-2]
    return json.loads(body[:-2])


def test_google_new_api_mapped_to_legacy_shape(procs, tmp_path, places, monkeypatch):
    monkeypatch.setenv("HERD_TEST_PLACES_KEY", KEY)
    places.results = 9
    h = Herd(procs, tmp_path, topology={"Hill": []},
             places={"provider": "google", "url": places.url,
                     "key_env": "HERD_TEST_PLACES_KEY"})
    h.start_all()
    data = whatsat_json(h, "WHATSAT kiwi.cs.ucla.edu 2.5 4")
    assert data["status"] == "OK"
    assert data["html_attributions"] == []
    assert len(data["results"]) == 4
    first = data["results"][0]
    assert first["name"] == "Place 0"
    assert first["place_id"] == "id-0"
    assert first["vicinity"] == "Address 0"
    assert first["geometry"]["location"] == {"lat": 34.0, "lng": -118.4}
    method, path, _, headers, body = places.requests[-1]
    assert (method, path) == ("POST", "/v1/places:searchNearby")
    assert headers["X-Goog-Api-Key"] == KEY
    assert "places.displayName" in headers["X-Goog-FieldMask"]
    req = json.loads(body)
    assert req["maxResultCount"] == 4
    circle = req["locationRestriction"]["circle"]
    assert circle["radius"] == 2500
    assert abs(circle["center"]["latitude"] - 34.06893) < 1e-6
    h.stop("Hill")
    assert KEY not in h.log("Hill")


def test_google_new_api_error_keeps_shape(procs, tmp_path, places, monkeypatch):
    monkeypatch.setenv("HERD_TEST_PLACES_KEY", KEY)
    places.status = "PERMISSION_DENIED"
    places.http_status = 403
    h = Herd(procs, tmp_path, topology={"Hill": []},
             places={"provider": "google", "url": places.url,
                     "key_env": "HERD_TEST_PLACES_KEY"})
    h.start_all()
    data = whatsat_json(h, "WHATSAT kiwi.cs.ucla.edu 1 1")
    assert data["results"] == [] and data["status"] == "PERMISSION_DENIED"
    assert data["error_message"] == "double says no"


def test_google_legacy_sends_key_but_never_logs_it(procs, tmp_path, places, monkeypatch):
    monkeypatch.setenv("HERD_TEST_PLACES_KEY", KEY)
    h = Herd(procs, tmp_path, topology={"Hill": []},
             places={"provider": "google-legacy", "url": places.url,
                     "key_env": "HERD_TEST_PLACES_KEY"})
    h.start_all()
    data = whatsat_json(h, "WHATSAT kiwi.cs.ucla.edu 1 1")
    assert data["status"] == "OK" and len(data["results"]) == 1
    assert places.requests[-1][2]["key"] == [KEY]
    # A failing upstream's message does not carry the key either.
    places.close()
    data = whatsat_json(h, "WHATSAT kiwi.cs.ucla.edu 1 1")
    assert data["status"] == "UNKNOWN_ERROR" and KEY not in data["error_message"]
    h.stop("Hill")
    assert KEY not in h.log("Hill")


def start_emulator(procs, tmp_path, extra=()):
    port = free_port()
    procs.start([binary("herd-places"), "-p", str(port), "-d", SUBSET,
                 "-l", str(tmp_path / "places.log")] + list(extra))
    wait_for(lambda: port_open(port), what="herd-places to listen")
    return port


def test_local_provider_finds_places_near_ucla(procs, tmp_path):
    port = start_emulator(procs, tmp_path)
    h = Herd(procs, tmp_path, topology={"Hill": []},
             places={"provider": "local", "port": str(port), "url": None})
    h.start_all()
    data = whatsat_json(h, "WHATSAT kiwi.cs.ucla.edu 3 20")
    assert data["status"] == "OK"
    names = [r["name"] for r in data["results"]]
    assert "Westwood" in names and "Bel Air" in names
    assert len(names) <= 20
    assert any("GeoNames" in a for a in data["html_attributions"])


def test_google_provider_against_the_emulator(procs, tmp_path):
    port = start_emulator(procs, tmp_path)
    h = Herd(procs, tmp_path, topology={"Hill": []},
             places={"provider": "google", "url": "http://127.0.0.1:%d" % port})
    h.start_all()
    data = whatsat_json(h, "WHATSAT kiwi.cs.ucla.edu 3 2")
    assert data["status"] == "OK"
    assert len(data["results"]) == 2
    assert data["results"][0]["geometry"]["location"]["lat"]


def test_slow_emulator_does_not_slow_iamat(procs, tmp_path):
    port = start_emulator(procs, tmp_path, ["--latency-ms", "2000"])
    h = Herd(procs, tmp_path, topology={"Hill": []},
             places={"provider": "local", "port": str(port), "url": None})
    h.start_all()
    slow = h.client("Hill")
    slow.request(KIWI)
    slow.send("WHATSAT kiwi.cs.ucla.edu 3 5\n")
    fast = h.client("Hill")
    for i in range(10):
        assert fast.request("IAMAT f%d +1+1 1" % i).startswith(b"AT Hill ")
    # The IAMATs were all answered while the WHATSAT still waits.
    slow.sock.settimeout(0.2)
    try:
        early = slow.sock.recv(1)
    except socket.timeout:
        early = None
    assert early is None
    slow.sock.settimeout(10)
    assert slow.read_until(b"\n\n").endswith(b"}\n\n")


def test_many_whatsats_in_flight_queue_instead_of_failing(procs, tmp_path):
    """More WHATSATs in flight than the emulator takes connections (256):
    the node keeps at most 32 connections to it and queues the rest, so
    every one gets real places, none an error."""
    port = start_emulator(procs, tmp_path, ["--latency-ms", "200"])
    h = Herd(procs, tmp_path, topology={"Hill": []},
             places={"provider": "local", "port": str(port), "url": None,
                     "timeout_ms": "30000"})
    h.start_all()
    h.client("Hill").request(KIWI)
    clients = [h.client("Hill") for _ in range(12)]
    # Each WHATSAT its own radius, so none shares another's request.
    for k, c in enumerate(clients):
        c.send("".join("WHATSAT kiwi.cs.ucla.edu 3.%03d 1\n" % (k * 30 + i)
                       for i in range(30)))
    for c in clients:
        for _ in range(30):
            first = c.read_line()
            assert first.startswith(b"AT Hill ")
            data = json.loads(c.read_until(b"\n\n")[:-2])
            assert data["status"] == "OK", data


def legacy_herd(procs, tmp_path, places, herd=None):
    os.makedirs(str(tmp_path), exist_ok=True)
    h = Herd(procs, tmp_path, topology={"Hill": []}, herd=herd,
             places={"provider": "google-legacy", "url": places.url,
                     "key_env": "HERD_TEST_NO_KEY", "timeout_ms": "20000"})
    h.start_all()
    return h


def test_pretty_printed_answer_is_passed_on_verbatim(procs, tmp_path, places):
    """Google's own layout reaches the client byte for byte, results cut
    to the bound after the bound's last element."""
    places.indent = 3
    places.results = 6
    h = legacy_herd(procs, tmp_path, places)
    c = h.client("Hill")
    at = c.request(KIWI)
    full = places.encode({"html_attributions": [], "status": "OK",
                          "results": make_results(6)})
    reply = c.whatsat("WHATSAT kiwi.cs.ucla.edu 1 20")
    assert reply == at + full + b"\n\n"
    cut = places.encode({"html_attributions": [], "status": "OK",
                         "results": make_results(2)})
    reply = c.whatsat("WHATSAT kiwi.cs.ucla.edu 1 2")
    assert reply == at + cut + b"\n\n"


def log_count(h, needle):
    return h.log("Hill").count(needle)


def test_simultaneous_whatsats_share_one_upstream_request(procs, tmp_path,
                                                          places):
    """N WHATSATs for one client while the places are on their way: one
    upstream request, and every WHATSAT answered with its own bound.  The
    double holds the request until the node has read all N (its log says
    so), so they overlap whatever the machine's speed."""
    n = 8
    places.results = 12
    places.indent = 3
    places.hold_requests()
    h = legacy_herd(procs, tmp_path, places)
    c = h.client("Hill")
    at = c.request(KIWI)
    c.send("".join("WHATSAT kiwi.cs.ucla.edu 2 %d\n" % (i + 1)
                   for i in range(n)))
    wait_for(lambda: log_count(h, "< WHATSAT kiwi.cs.ucla.edu 2 ") == n,
             what="the node to read every WHATSAT")
    wait_for(lambda: places.count() >= 1, what="the upstream request")
    places.release()
    for i in range(n):
        reply = c.read_until(b"\n\n")
        assert reply.startswith(at)
        data = json.loads(reply[len(at):-2])
        assert data["status"] == "OK"
        assert [r["name"] for r in data["results"]] == \
            ["Place %d" % k for k in range(i + 1)]
    assert places.count() == 1
    # The status file counts it: one request, n - 1 WHATSATs that shared.
    wait_for(lambda: (h.status("Hill") or {}).get("places_shared") == n - 1,
             what="the status file to count the shared WHATSATs")
    assert h.status("Hill")["places_requests"] == 1
    # Not a cache: once answered, the same WHATSAT asks again.
    c.whatsat("WHATSAT kiwi.cs.ucla.edu 2 1")
    assert places.count() == 2
    # Another radius is another request, even while one is in flight.
    places.hold_requests()
    c.send("WHATSAT kiwi.cs.ucla.edu 2 1\nWHATSAT kiwi.cs.ucla.edu 3 1\n")
    wait_for(lambda: places.count() == 4, what="two upstream requests")
    places.release()
    c.read_until(b"\n\n")
    c.read_until(b"\n\n")
    radii = sorted(r[2]["radius"][0] for r in places.requests[2:])
    assert radii == ["2000", "3000"]


def test_whatsat_reply_logged_as_summary_unless_full(procs, tmp_path, places):
    places.results = 3
    h = legacy_herd(procs, tmp_path / "summary", places)
    c = h.client("Hill")
    at = c.request(KIWI).rstrip(b"\n").decode()
    reply = c.whatsat("WHATSAT kiwi.cs.ucla.edu 1 2")
    h.stop("Hill")
    log = h.log("Hill")
    # The AT line twice: the IAMAT's reply, then the WHATSAT's.
    assert log.count("> " + at + "\n") == 2
    assert "> places OK, 2 results, %d bytes\n" % len(reply) in log
    assert "Place 0" not in log and "geometry" not in log

    places.requests.clear()
    h = legacy_herd(procs, tmp_path / "full", places,
                    herd={"log_replies": "full"})
    c = h.client("Hill")
    c.request(KIWI)
    c.whatsat("WHATSAT kiwi.cs.ucla.edu 1 2")
    h.stop("Hill")
    log = h.log("Hill")
    assert "Place 1" in log and "geometry" in log
    assert "> places OK" not in log


def test_new_api_whatsats_share_a_request_with_the_same_bound(
        procs, tmp_path, places, monkeypatch):
    """Places API (New) carries the bound in its request: WHATSATs with
    the same location, radius and bound share one; another bound is
    another request."""
    monkeypatch.setenv("HERD_TEST_PLACES_KEY", KEY)
    places.results = 9
    places.hold_requests()
    h = Herd(procs, tmp_path, topology={"Hill": []},
             places={"provider": "google", "url": places.url,
                     "key_env": "HERD_TEST_PLACES_KEY",
                     "timeout_ms": "20000"})
    h.start_all()
    c = h.client("Hill")
    at = c.request(KIWI)
    c.send("WHATSAT kiwi.cs.ucla.edu 2 3\n" * 4 + "WHATSAT kiwi.cs.ucla.edu 2 1\n")
    wait_for(lambda: log_count(h, "< WHATSAT kiwi.cs.ucla.edu 2 ") == 5,
             what="the node to read every WHATSAT")
    wait_for(lambda: places.count() >= 2, what="the upstream requests")
    places.release()
    for want in (3, 3, 3, 3, 1):
        reply = c.read_until(b"\n\n")
        assert reply.startswith(at)
        data = json.loads(reply[len(at):-2])
        assert [r["name"] for r in data["results"]] == \
            ["Place %d" % k for k in range(want)]
    assert places.count() == 2
    assert sorted(json.loads(r[4])["maxResultCount"]
                  for r in places.requests) == [1, 3]
