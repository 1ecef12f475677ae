"""Black-box tests of bin/herd-places, the offline Google Places emulator.

Each test starts the real binary on a free loopback port (-p 0; the port
is read from its first stdout line) with the committed data subset, speaks
raw HTTP to it and kills it by pid at teardown (the procs fixture)."""

import base64
import http.client
import json
import math
import os
import select
import signal
import subprocess
import threading
import time
import urllib.parse

import pytest

from herdlib import SUBSET, binary, free_port, write_ini

UCLA = (34.068930, -118.445127)
LEGACY = "/maps/api/place/nearbysearch/json"
NEARBY = "/v1/places:searchNearby"
R_EARTH = 6371008.8
KEY = "test-key-Zq8vX3"

LEGACY_RESULT_KEYS = {
    "geometry", "icon", "icon_background_color", "icon_mask_base_uri",
    "name", "place_id", "reference", "scope", "types", "vicinity",
}
NEW_PLACE_KEYS = {
    "name", "id", "types", "formattedAddress", "location", "viewport",
    "displayName", "shortFormattedAddress", "primaryType", "attributions",
}


# ---------------------------------------------------------------- helpers

def distance_m(lat1, lng1, lat2, lng2):
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * R_EARTH * math.asin(math.sqrt(min(1.0, a)))


def subset_places():
    """(name, lat, lng) of every place in the committed subset."""
    out = []
    with open(SUBSET, encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if fields[0] == "P":
                out.append((fields[6], float(fields[1]), float(fields[2])))
    return out


def expected_nearest(lat, lng, radius, limit):
    """Brute force over the subset: nearest first, ties by file order."""
    ranked = []
    for i, (name, plat, plng) in enumerate(subset_places()):
        d = distance_m(lat, lng, plat, plng)
        if d <= radius:
            ranked.append((d, i, name))
    ranked.sort()
    return ranked[:limit]


class Emulator:
    def __init__(self, proc, port):
        self.proc = proc
        self.port = port

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, dict(resp.getheaders()), data
        finally:
            conn.close()

    def legacy(self, **params):
        status, headers, data = self.request(
            "GET", LEGACY + "?" + urllib.parse.urlencode(params))
        assert status == 200, data
        assert headers["Content-Type"].startswith("application/json")
        return json.loads(data)

    def nearby(self, body, mask="*", key=None, raw=None):
        headers = {"Content-Type": "application/json"}
        if mask is not None:
            headers["X-Goog-FieldMask"] = mask
        if key is not None:
            headers["X-Goog-Api-Key"] = key
        payload = raw if raw is not None else json.dumps(body).encode()
        status, _, data = self.request("POST", NEARBY, payload, headers)
        return status, json.loads(data)


def circle(lat, lng, radius, **extra):
    body = {"locationRestriction": {"circle": {
        "center": {"latitude": lat, "longitude": lng}, "radius": radius}}}
    body.update(extra)
    return body


def read_port(proc, timeout=15.0):
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            raise AssertionError("herd-places did not start: %r %r" % (
                line, proc.stderr.read() if proc.poll() is not None else b""))
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 1)
            if not chunk:
                continue
            line += chunk
    assert line.startswith(b"herd-places: listening on 127.0.0.1:"), line
    return int(line.rsplit(b":", 1)[1])


@pytest.fixture
def start(procs):
    """start(*options, env=...) -> Emulator, on the subset, any free port."""
    def run(*options, env=None, data=SUBSET, port="0"):
        args = [binary("herd-places"), "-p", port]
        if data:
            args += ["-d", data]
        args += list(options)
        proc = procs.start(args, env=env, stdout=subprocess.PIPE)
        return Emulator(proc, read_port(proc))
    return run


def run_exit(args, env=None, timeout=30):
    return subprocess.run([binary("herd-places")] + args, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=timeout)


# ---------------------------------------------------------------- legacy

def test_legacy_ucla_shape_and_ranking(start):
    emu = start()
    body = emu.legacy(location="%f,%f" % UCLA, radius=3000)
    assert list(body) == ["html_attributions", "results", "status"]
    assert body["status"] == "OK"
    assert len(body["html_attributions"]) == 1
    assert "GeoNames" in body["html_attributions"][0]
    assert "CC BY 4.0" in body["html_attributions"][0]
    names = [r["name"] for r in body["results"]]
    assert "Westwood" in names and "Bel Air" in names
    want = expected_nearest(UCLA[0], UCLA[1], 3000, 20)
    assert names == [w[2] for w in want]
    last = 0
    for r in body["results"]:
        assert set(r) == LEGACY_RESULT_KEYS
        loc = r["geometry"]["location"]
        vp = r["geometry"]["viewport"]
        assert set(loc) == {"lat", "lng"}
        assert vp["southwest"]["lat"] < loc["lat"] < vp["northeast"]["lat"]
        assert vp["southwest"]["lng"] < loc["lng"] < vp["northeast"]["lng"]
        d = distance_m(UCLA[0], UCLA[1], loc["lat"], loc["lng"])
        assert d <= 3000 + 1e-6
        assert d >= last - 1e-6
        last = d
        assert r["scope"] == "GOOGLE"
        assert r["types"] == ["locality", "political"]
        assert len(r["place_id"]) == 27 and r["reference"] == r["place_id"]
        assert r["vicinity"] == "Los Angeles County, California"


def test_legacy_place_ids_are_stable(start, procs):
    a = start().legacy(location="%f,%f" % UCLA, radius=3000)
    b = start().legacy(location="34.07,-118.44", radius=5000)
    ids_a = {r["name"]: r["place_id"] for r in a["results"]}
    ids_b = {r["name"]: r["place_id"] for r in b["results"]}
    assert ids_a["Westwood"] == ids_b["Westwood"]
    assert len(set(ids_b.values())) == len(ids_b)


def test_legacy_three_pages_of_twenty(start):
    emu = start()
    want = expected_nearest(UCLA[0], UCLA[1], 50000, 60)
    assert len(want) == 60
    page1 = emu.legacy(location="%f,%f" % UCLA, radius=50000)
    assert list(page1) == ["html_attributions", "next_page_token", "results",
                           "status"]
    assert len(page1["results"]) == 20
    page2 = emu.legacy(pagetoken=page1["next_page_token"])
    assert len(page2["results"]) == 20 and page2["status"] == "OK"
    page3 = emu.legacy(pagetoken=page2["next_page_token"])
    assert len(page3["results"]) == 20
    assert "next_page_token" not in page3
    got = [r["name"] for p in (page1, page2, page3) for r in p["results"]]
    assert got == [w[2] for w in want]
    # A token is the whole query: the same token gives the same page.
    again = emu.legacy(pagetoken=page1["next_page_token"])
    assert again["results"] == page2["results"]


def test_legacy_no_token_when_twenty_or_fewer(start):
    emu = start()
    n = len(expected_nearest(UCLA[0], UCLA[1], 5000, 100))
    assert 0 < n <= 20
    body = emu.legacy(location="%f,%f" % UCLA, radius=5000)
    assert len(body["results"]) == n and "next_page_token" not in body


def test_legacy_zero_results(start):
    body = start().legacy(location="0,-150", radius=50000)
    assert body["status"] == "ZERO_RESULTS"
    assert body["results"] == []
    assert "GeoNames" in body["html_attributions"][0]


def test_legacy_utf8_names(start):
    body = start().legacy(location="42.46372,1.49129", radius=100)
    assert [r["name"] for r in body["results"]] == ["Sant Julià de Lòria"]


@pytest.mark.parametrize("params", [
    {},
    {"radius": "1000"},
    {"location": "", "radius": "1000"},
    {"location": "abc", "radius": "1000"},
    {"location": "34.0", "radius": "1000"},
    {"location": "34.0,", "radius": "1000"},
    {"location": "34.0,-118.4,1", "radius": "1000"},
    {"location": "91,0", "radius": "1000"},
    {"location": "-90.5,0", "radius": "1000"},
    {"location": "0,180.01", "radius": "1000"},
    {"location": "1e1,2", "radius": "1000"},
    {"location": "nan,0", "radius": "1000"},
    {"location": "0x10,0", "radius": "1000"},
    {"location": "34,-118"},
    {"location": "34,-118", "radius": ""},
    {"location": "34,-118", "radius": "0"},
    {"location": "34,-118", "radius": "-5"},
    {"location": "34,-118", "radius": "50000.01"},
    {"location": "34,-118", "radius": "1e3"},
    {"location": "34,-118", "radius": "inf"},
    {"location": "34,-118", "radius": "ten"},
    {"pagetoken": "not-a-token"},
    {"pagetoken": "AAAA"},
    {"pagetoken": "x" * 5000},
])
def test_legacy_invalid_request(start, params):
    emu = start()
    body = emu.legacy(**params)
    assert body["status"] == "INVALID_REQUEST", params
    assert body["results"] == []
    assert body["error_message"]


def test_legacy_tampered_page_token(start):
    emu = start()
    token = emu.legacy(location="%f,%f" % UCLA, radius=50000)["next_page_token"]
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[3] ^= 1
    bad = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    for t in (bad, token[:-2], token + "A"):
        assert emu.legacy(pagetoken=t)["status"] == "INVALID_REQUEST"


def test_legacy_radius_bounds_and_spaces(start):
    emu = start()
    assert emu.legacy(location="34.06893,-118.445127", radius="50000")["status"] == "OK"
    assert emu.legacy(location="34.06893,-118.445127", radius="0.5")["status"] \
        == "ZERO_RESULTS"
    # An unencoded '+' arrives as a space; Google takes it, so do we.
    status, _, data = emu.request(
        "GET", LEGACY + "?location=+34.068930,-118.445127&radius=3000")
    assert status == 200 and json.loads(data)["status"] == "OK"


# ---------------------------------------------------------------- new API

def test_new_full_mask_shape(start):
    emu = start()
    status, body = emu.nearby(circle(UCLA[0], UCLA[1], 3000))
    assert status == 200
    assert list(body) == ["places"]
    want = expected_nearest(UCLA[0], UCLA[1], 3000, 20)
    assert [p["displayName"]["text"] for p in body["places"]] == [w[2] for w in want]
    for p in body["places"]:
        assert set(p) == NEW_PLACE_KEYS
        assert p["name"] == "places/" + p["id"]
        assert p["displayName"]["languageCode"] == "en"
        assert p["types"] == ["locality", "political"]
        assert set(p["location"]) == {"latitude", "longitude"}
        assert distance_m(UCLA[0], UCLA[1], p["location"]["latitude"],
                          p["location"]["longitude"]) <= 3000 + 1e-6
        assert p["formattedAddress"].endswith(
            "Los Angeles County, California, US")
    legacy = emu.legacy(location="%f,%f" % UCLA, radius=3000)
    assert [p["id"] for p in body["places"]] == \
        [r["place_id"] for r in legacy["results"]]


def test_new_field_mask_is_honoured(start):
    emu = start()
    status, body = emu.nearby(circle(UCLA[0], UCLA[1], 3000),
                              mask="places.displayName,places.location")
    assert status == 200
    for p in body["places"]:
        assert set(p) == {"displayName", "location"}
    status, body = emu.nearby(circle(UCLA[0], UCLA[1], 3000),
                              mask=" places.id , places.formattedAddress")
    assert all(set(p) == {"id", "formattedAddress"} for p in body["places"])
    status, body = emu.nearby(circle(UCLA[0], UCLA[1], 3000), mask="places.*")
    assert all(set(p) == NEW_PLACE_KEYS for p in body["places"])
    # A real Google field the emulator has no data for: accepted, left out.
    status, body = emu.nearby(circle(UCLA[0], UCLA[1], 3000),
                              mask="places.id,places.rating")
    assert status == 200 and all(set(p) == {"id"} for p in body["places"])
    # Field mask as a query parameter.
    status, _, data = emu.request(
        "POST", NEARBY + "?fields=places.id",
        json.dumps(circle(UCLA[0], UCLA[1], 3000)).encode())
    assert status == 200
    assert all(set(p) == {"id"} for p in json.loads(data)["places"])


def test_new_max_result_count(start):
    emu = start()
    for n, want in ((1, 1), (7, 7), (20, 20)):
        status, body = emu.nearby(circle(UCLA[0], UCLA[1], 50000, maxResultCount=n))
        assert status == 200 and len(body["places"]) == want
    status, body = emu.nearby(circle(UCLA[0], UCLA[1], 50000))
    assert len(body["places"]) == 20


def test_new_zero_results_is_empty_object(start):
    status, body = start().nearby(circle(0, -150, 50000))
    assert status == 200 and body == {}


def test_new_type_filters(start):
    emu = start()
    status, body = emu.nearby(circle(UCLA[0], UCLA[1], 3000,
                                     includedTypes=["restaurant"]))
    assert status == 200 and body == {}
    status, body = emu.nearby(circle(UCLA[0], UCLA[1], 3000,
                                     includedTypes=["locality"],
                                     rankPreference="DISTANCE",
                                     languageCode="fr"))
    assert status == 200 and body["places"]
    assert body["places"][0]["displayName"]["languageCode"] == "fr"


def assert_google_error(status, body, code, word):
    assert status == code, body
    assert list(body) == ["error"]
    assert set(body["error"]) == {"code", "message", "status"}
    assert body["error"]["code"] == code
    assert body["error"]["status"] == word
    assert body["error"]["message"]


@pytest.mark.parametrize("body", [
    {},
    {"locationRestriction": {}},
    {"locationRestriction": {"circle": {"radius": 100}}},
    circle(91, 0, 100),
    circle(0, -181, 100),
    circle("34", -118, 100),
    circle(34, -118, 0),
    circle(34, -118, -1),
    circle(34, -118, 50001),
    circle(34, -118, "100"),
    circle(34, -118, 100, maxResultCount=0),
    circle(34, -118, 100, maxResultCount=21),
    circle(34, -118, 100, maxResultCount=1.5),
    circle(34, -118, 100, maxResultCount="5"),
    circle(34, -118, 100, rankPreference="NEAREST"),
    circle(34, -118, 100, includedTypes="locality"),
    circle(34, -118, 100, languageCode="en us"),
    circle(34, -118, 100, unknownField=1),
    [],
    "text",
])
def test_new_invalid_argument(start, body):
    status, answer = start().nearby(body)
    assert_google_error(status, answer, 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", b'{"a":1} x',
                                 b'{"locationRestriction":\x00}'])
def test_new_malformed_json(start, raw):
    status, answer = start().nearby(None, raw=raw)
    assert_google_error(status, answer, 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize("mask", [None, "", "displayName", "places.",
                                  "places..id", "places.id;", "places.1x"])
def test_new_field_mask_required_and_checked(start, mask):
    status, answer = start().nearby(circle(UCLA[0], UCLA[1], 3000), mask=mask)
    assert_google_error(status, answer, 400, "INVALID_ARGUMENT")


def test_new_body_too_large(start):
    emu = start()
    body = json.dumps(circle(UCLA[0], UCLA[1], 3000, regionCode="x" * 40000))
    status, _, data = emu.request("POST", NEARBY, body.encode(),
                                  {"X-Goog-FieldMask": "*"})
    assert_google_error(status, json.loads(data), 413, "INVALID_ARGUMENT")
    status, _ = emu.nearby(circle(UCLA[0], UCLA[1], 3000))
    assert status == 200


def test_routing_errors(start):
    emu = start()
    status, headers, data = emu.request("GET", NEARBY)
    assert status == 405 and headers["Allow"] == "POST"
    assert json.loads(data)["error"]["code"] == 405
    status, headers, data = emu.request("POST", LEGACY, b"{}")
    assert status == 405 and headers["Allow"] == "GET"
    status, _, data = emu.request("GET", "/nope")
    assert_google_error(status, json.loads(data), 404, "NOT_FOUND")
    status, _, _ = emu.request("GET", LEGACY + "?location=" + "1" * 100000)
    assert status in (414, 431)
    assert emu.legacy(location="%f,%f" % UCLA, radius=3000)["status"] == "OK"


# ---------------------------------------------------------------- keys

def test_key_required(start, tmp_path):
    log = tmp_path / "places.log"
    env = dict(os.environ, HERD_TEST_PLACES_KEY=KEY)
    emu = start("--key-env", "HERD_TEST_PLACES_KEY", "-l", str(log), env=env)
    where = "%f,%f" % UCLA
    denied = emu.legacy(location=where, radius=3000)
    assert denied["status"] == "REQUEST_DENIED" and denied["results"] == []
    assert denied["error_message"]
    wrong = emu.legacy(location=where, radius=3000, key=KEY + "x")
    assert wrong["status"] == "REQUEST_DENIED"
    assert emu.legacy(location=where, radius=3000, key=KEY)["status"] == "OK"
    # The key is checked before anything else.
    assert emu.legacy(key="wrong")["status"] == "REQUEST_DENIED"
    assert emu.legacy(key=KEY)["status"] == "INVALID_REQUEST"

    status, body = emu.nearby(circle(UCLA[0], UCLA[1], 3000))
    assert_google_error(status, body, 403, "PERMISSION_DENIED")
    status, body = emu.nearby(circle(UCLA[0], UCLA[1], 3000), key="nope")
    assert_google_error(status, body, 400, "INVALID_ARGUMENT")
    status, body = emu.nearby(circle(UCLA[0], UCLA[1], 3000), key=KEY)
    assert status == 200 and body["places"]
    status, _, data = emu.request(
        "POST", NEARBY + "?key=" + KEY,
        json.dumps(circle(UCLA[0], UCLA[1], 3000)).encode(),
        {"X-Goog-FieldMask": "places.id"})
    assert status == 200

    emu.proc.send_signal(signal.SIGTERM)
    assert emu.proc.wait(timeout=20) == 0
    text = log.read_text()
    assert "nearbysearch" in text and "searchNearby" in text
    assert KEY not in text


def test_require_key_from_herd_ini(start, tmp_path):
    ini, _ = write_ini(tmp_path, {"Hill": []},
                       places={"provider": "local", "port": free_port(),
                               "key_env": "HERD_TEST_INI_KEY", "url": None})
    env = dict(os.environ, HERD_TEST_INI_KEY=KEY)
    emu = start("-c", ini, "--require-key", env=env)
    assert emu.legacy(location="%f,%f" % UCLA, radius=3000)["status"] \
        == "REQUEST_DENIED"
    assert emu.legacy(location="%f,%f" % UCLA, radius=3000, key=KEY)["status"] == "OK"
    env.pop("HERD_TEST_INI_KEY")
    r = run_exit(["-c", ini, "--require-key", "-d", SUBSET, "-p", "0"], env=env)
    assert r.returncode == 100
    assert b"HERD_TEST_INI_KEY" in r.stderr


def test_port_and_log_from_herd_ini(procs, tmp_path):
    port = free_port()
    ini, _ = write_ini(tmp_path, {"Hill": []},
                       places={"provider": "local", "port": port, "url": None})
    proc = procs.start([binary("herd-places"), "-c", ini, "-d", SUBSET],
                       stdout=subprocess.PIPE)
    assert read_port(proc) == port
    emu = Emulator(proc, port)
    assert emu.legacy(location="%f,%f" % UCLA, radius=3000)["status"] == "OK"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    text = (tmp_path / "logs" / "places.log").read_text()
    assert "listening on 127.0.0.1:%d" % port in text
    assert "-> 200 OK" in text


# ---------------------------------------------------------------- test aids

@pytest.mark.parametrize("force,legacy_status,code,word", [
    ("ZERO_RESULTS", "ZERO_RESULTS", 200, None),
    ("INVALID_REQUEST", "INVALID_REQUEST", 400, "INVALID_ARGUMENT"),
    ("REQUEST_DENIED", "REQUEST_DENIED", 403, "PERMISSION_DENIED"),
    ("OVER_QUERY_LIMIT", "OVER_QUERY_LIMIT", 429, "RESOURCE_EXHAUSTED"),
    ("UNKNOWN_ERROR", "UNKNOWN_ERROR", 500, "INTERNAL"),
])
def test_force_status(start, force, legacy_status, code, word):
    emu = start("--force-status", force)
    body = emu.legacy(location="%f,%f" % UCLA, radius=3000)
    assert body["status"] == legacy_status and body["results"] == []
    status, answer = emu.nearby(circle(UCLA[0], UCLA[1], 3000))
    if word is None:
        assert status == 200 and answer == {}
    else:
        assert_google_error(status, answer, code, word)


def test_force_http_code(start):
    emu = start("--force-status", "503")
    status, headers, data = emu.request(
        "GET", LEGACY + "?location=34,-118&radius=1000")
    assert status == 503 and headers["Content-Type"].startswith("text/html")
    status, answer = emu.nearby(circle(UCLA[0], UCLA[1], 3000))
    assert_google_error(status, answer, 503, "UNAVAILABLE")


def test_latency_delays_each_request_but_blocks_none(start):
    emu = start("--latency-ms", "1000")
    times, errors = [], []

    def one():
        t0 = time.monotonic()
        try:
            body = emu.legacy(location="%f,%f" % UCLA, radius=3000)
            assert body["status"] == "OK"
            times.append(time.monotonic() - t0)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t0 = time.monotonic()
    threads = [threading.Thread(target=one) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    total = time.monotonic() - t0
    assert not errors and len(times) == 5
    assert min(times) >= 0.95
    # Served one after another, five would take five seconds.
    assert total < 4.0


def test_many_concurrent_clients(start):
    emu = start()
    errors = []

    def client():
        try:
            conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=20)
            for i in range(10):         # keep-alive: one connection, many requests
                conn.request("GET", LEGACY + "?location=%f,%f&radius=%d"
                             % (UCLA[0], UCLA[1], 2000 + 4000 * i))
                body = json.loads(conn.getresponse().read())
                assert body["status"] == "OK"
            conn.close()
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=client) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors


# ---------------------------------------------------------------- process

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signals_exit_zero(start, sig):
    emu = start("--latency-ms", "60000")
    # A request held back by the latency must not hold up the exit.
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=30)
    conn.request("GET", LEGACY + "?location=34,-118&radius=1000")
    time.sleep(0.2)
    emu.proc.send_signal(sig)
    assert emu.proc.wait(timeout=20) == 0
    conn.close()


def test_exit_codes(tmp_path, procs):
    assert run_exit(["--bogus"]).returncode == 100
    assert run_exit(["-p", "70000", "-d", SUBSET]).returncode == 100
    assert run_exit(["-p", "x", "-d", SUBSET]).returncode == 100
    assert run_exit(["--latency-ms", "-1", "-d", SUBSET]).returncode == 100
    assert run_exit(["--force-status", "MAYBE", "-d", SUBSET]).returncode == 100
    assert run_exit(["-d", SUBSET, "extra"]).returncode == 100
    r = run_exit(["--key-env", "HERD_TEST_UNSET_VARIABLE", "-d", SUBSET],
                 env={k: v for k, v in os.environ.items()
                      if k != "HERD_TEST_UNSET_VARIABLE"})
    assert r.returncode == 100
    r = run_exit(["-d", str(tmp_path / "missing.tsv"), "-p", "0"])
    assert r.returncode == 111 and b"missing.tsv" in r.stderr
    bad = tmp_path / "bad.tsv"
    bad.write_text("herd-places-data 1 0 1\nP\t95\t0\tUS\t0\t0\tNowhere\n")
    r = run_exit(["-d", str(bad), "-p", "0"])
    assert r.returncode == 100 and b"bad.tsv:2:" in r.stderr
    bad.write_text("herd-places-data 1 0 2\nP\t1\t0\tUS\t0\t0\tOne\n")
    assert run_exit(["-d", str(bad), "-p", "0"]).returncode == 100
    broken_ini = tmp_path / "herd.ini"
    broken_ini.write_text("[nonsense]\n")
    assert run_exit(["-c", str(broken_ini), "-d", SUBSET]).returncode == 100
    # A port already taken is a system failure.
    busy = procs.start([binary("herd-places"), "-p", "0", "-d", SUBSET],
                       stdout=subprocess.PIPE)
    port = read_port(busy)
    r = run_exit(["-p", str(port), "-d", SUBSET])
    assert r.returncode == 111 and b"Address already in use" in r.stderr
    assert run_exit(["--help"]).returncode == 0


def test_index_equals_brute_force():
    """--selftest: the grid's answers against a full scan, on the subset and
    on synthetic points (poles, antimeridian, cell edges, dense ties)."""
    r = run_exit(["-d", SUBSET, "--selftest", "400"], timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 2
    for line in lines:
        assert line.endswith(" 0 mismatches"), line
        assert " 0 non-empty" not in line
