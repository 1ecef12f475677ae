"""SPEC.md's client protocol, byte for byte, against real herd-node
processes."""

import json
import re
import time

import pytest

from herdlib import Herd

KIWI = b"IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503\n"
AT_RE = re.compile(rb"^AT (\S+) ([+-]\d+\.\d{9}) (\S+) (\S+) (\S+)\n$")


def one_node(procs, tmp_path, places=None, herd=None):
    h = Herd(procs, tmp_path, topology={"Hill": []}, places=places, herd=herd)
    h.start_all()
    return h


def exact_diff(reply, sent_at, received_at, client_time):
    """The reply's time difference lies between the two measured bounds."""
    m = AT_RE.match(reply)
    assert m, reply
    sec, frac = m.group(2)[1:].split(b".")
    value = int(sec) + int(frac) / 1e9
    if m.group(2).startswith(b"-"):
        value = -value
    assert sent_at - client_time - 0.001 <= value <= received_at - client_time + 0.001
    return m


def test_iamat_reply_copies_operands_and_names_the_node(procs, tmp_path):
    h = one_node(procs, tmp_path)
    c = h.client("Hill")
    client_time = time.time() - 0.263873386
    stamp = "%.9f" % client_time
    before = time.time()
    reply = c.request("IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 %s" % stamp)
    after = time.time()
    m = exact_diff(reply, before, after, float(stamp))
    assert m.group(1) == b"Hill"
    assert reply.endswith(b" kiwi.cs.ucla.edu +34.068930-118.445127 " +
                          stamp.encode() + b"\n")
    assert m.group(2).startswith(b"+")


def test_spec_example_byte_for_byte(procs, tmp_path):
    h = one_node(procs, tmp_path)
    c = h.client("Hill")
    c.send(KIWI)
    reply = c.read_line()
    m = AT_RE.match(reply)
    assert m and m.group(1) == b"Hill"
    assert reply == (b"AT Hill " + m.group(2) +
                     b" kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503\n")
    # The example's client time is in the past: the sign is '+'.
    assert m.group(2)[:1] == b"+"


def test_future_client_time_has_minus_sign(procs, tmp_path):
    h = one_node(procs, tmp_path)
    c = h.client("Hill")
    reply = c.request("IAMAT future +0+0 %d.5" % (time.time() + 1000))
    m = AT_RE.match(reply)
    assert m and m.group(2).startswith(b"-")
    assert re.match(rb"^-(99\d|1000)\.\d{9}$", m.group(2))


def test_integer_client_time_and_short_fractions(procs, tmp_path):
    h = one_node(procs, tmp_path)
    c = h.client("Hill")
    for stamp in ["1621464827", "1621464827.9", "1621464827.123456789"]:
        reply = c.request("IAMAT a +1-1 " + stamp)
        assert AT_RE.match(reply), reply
        assert reply.endswith((" a +1-1 %s\n" % stamp).encode())


@pytest.mark.parametrize("sep", [b" ", b"\t", b"\r", b"\f", b"\v", b" \t\f\v\r "])
def test_every_whitespace_separates_fields(procs, tmp_path, sep):
    h = one_node(procs, tmp_path)
    c = h.client("Hill")
    line = sep.join([b"IAMAT", b"ws.client", b"+1.5-2.5", b"1621464827.5"])
    c.send(sep + line + sep + b"\n")
    reply = c.read_line()
    m = AT_RE.match(reply)
    assert m, reply
    assert reply.endswith(b" ws.client +1.5-2.5 1621464827.5\n")


def test_crlf_line_ending(procs, tmp_path):
    h = one_node(procs, tmp_path)
    c = h.client("Hill")
    c.send(b"IAMAT crlf +1+1 1621464827.5\r\n")
    assert AT_RE.match(c.read_line())
    c.send(b"NOPE\r\n")
    assert c.read_line() == b"? NOPE\n"


BAD_LINES = [
    b"",
    b"   ",
    b"iamat kiwi +34.068930-118.445127 1621464827.959498503",
    b"IAMAT kiwi +34.068930-118.445127",
    b"IAMAT kiwi +34.068930-118.445127 1621464827.959498503 extra",
    b"IAMAT kiwi 34.068930-118.445127 1621464827.959498503",
    b"IAMAT kiwi +34.068930118.445127 1621464827.959498503",
    b"IAMAT kiwi +34.068930-118.445127-1 1621464827.959498503",
    b"IAMAT kiwi +90.000001+0 1621464827",
    b"IAMAT kiwi -90.1+0 1621464827",
    b"IAMAT kiwi +0+180.0000001 1621464827",
    b"IAMAT kiwi +0-181 1621464827",
    b"IAMAT kiwi +.5+1 1621464827",
    b"IAMAT kiwi +1.+1 1621464827",
    b"IAMAT kiwi ++1+1 1621464827",
    b"IAMAT kiwi +1e1+1 1621464827",
    b"IAMAT kiwi +1+1 1621464827.1234567891",
    b"IAMAT kiwi +1+1 1621464827.",
    b"IAMAT kiwi +1+1 .5",
    b"IAMAT kiwi +1+1 -1621464827",
    b"IAMAT kiwi +1+1 +1621464827",
    b"IAMAT kiwi +1+1 1e9",
    b"IAMAT kiwi +1+1 0x10",
    b"IAMAT kiwi +1+1 99999999999999999999",
    b"WHATSAT",
    b"WHATSAT nobody.known 10 5",
    b"whatsat kiwi 10 5",
    b"HELLO world",
    b"\x00\x01\x02 binary",
    b"AT Hill +0.1 kiwi +1+1 1",
]


def test_invalid_lines_get_question_mark_copy(procs, tmp_path):
    h = one_node(procs, tmp_path)
    c = h.client("Hill")
    for line in BAD_LINES:
        c.send(line + b"\n")
        assert c.read_line() == b"? " + line + b"\n", line
    # The connection stays open and still serves.
    assert AT_RE.match(c.request("IAMAT ok +1+1 1621464827"))


def test_valid_bounds_accepted(procs, tmp_path):
    h = one_node(procs, tmp_path)
    c = h.client("Hill")
    for loc in [b"+90-180", b"-90+180", b"+90.000+180.000", b"-00.0-000.0",
                b"+0+0", b"+089.9999999999-179.99999999999"]:
        c.send(b"IAMAT b " + loc + b" 1621464827\n")
        reply = c.read_line()
        assert AT_RE.match(reply), (loc, reply)
        assert reply.endswith(b" b " + loc + b" 1621464827\n")


def test_whatsat_bounds(procs, tmp_path, places):
    h = one_node(procs, tmp_path, places={"url": places.url})
    c = h.client("Hill")
    c.request("IAMAT kiwi +34.068930-118.445127 1621464827.959498503")
    for args in [b"0 5", b"0.0 5", b"50.0001 5", b"51 5", b"-1 5", b"+10 5",
                 b"10 0", b"10 21", b"10 -1", b"10 5.0", b"10 +5", b"1e1 5",
                 b"10. 5", b".5 5", b"10 5 6", b"10"]:
        line = b"WHATSAT kiwi " + args
        c.send(line + b"\n")
        assert c.read_line() == b"? " + line + b"\n", args
    for args, metres in [(b"50 20", "50000"), (b"50.000 1", "50000"),
                         (b"0.5 01", "500"), (b"10 5", "10000"),
                         (b"1.2345 3", "1234.5")]:
        reply = c.whatsat("WHATSAT kiwi " + args.decode())
        assert reply.startswith(b"AT Hill "), reply
        assert places.requests[-1][2]["radius"] == [metres]


def test_whatsat_reply_shape(procs, tmp_path, places):
    places.results = 12
    h = one_node(procs, tmp_path, places={"url": places.url})
    c = h.client("Hill")
    at = c.request(KIWI.decode())
    reply = c.whatsat("WHATSAT kiwi.cs.ucla.edu 10 5")
    assert reply.startswith(at)
    body = reply[len(at):]
    assert body.endswith(b"}\n\n")
    assert not body.endswith(b"}\n\n\n")
    text = body[:-2]
    assert b"\n\n" not in text
    data = json.loads(text)
    assert len(data["results"]) == 5
    assert data["status"] == "OK"
    assert "html_attributions" in data
    assert [r["name"] for r in data["results"]] == ["Place %d" % i for i in range(5)]
    # Google's legacy API got the location and the radius in metres.
    method, path, query, headers, _ = places.requests[-1]
    assert path == "/maps/api/place/nearbysearch/json"
    assert query["radius"] == ["10000"]
    lat, lng = query["location"][0].split(",")
    assert abs(float(lat) - 34.06893) < 1e-6 and abs(float(lng) + 118.445127) < 1e-6


def test_whatsat_fewer_results_than_bound(procs, tmp_path, places):
    places.results = 2
    h = one_node(procs, tmp_path, places={"url": places.url})
    c = h.client("Hill")
    at = c.request(KIWI.decode())
    reply = c.whatsat("WHATSAT kiwi.cs.ucla.edu 50 20")
    data = json.loads(reply[len(at):-2])
    assert len(data["results"]) == 2


def test_pipelined_requests_answered_in_order(procs, tmp_path, places):
    h = one_node(procs, tmp_path, places={"url": places.url})
    c = h.client("Hill")
    c.send(KIWI + b"WHATSAT kiwi.cs.ucla.edu 1 1\nBAD\n" +
           b"IAMAT other +1+1 1621464827\n" * 50)
    at = c.read_line()
    assert AT_RE.match(at)
    assert c.read_line() == at
    c.read_until(b"\n\n")
    assert c.read_line() == b"? BAD\n"
    for _ in range(50):
        assert c.read_line().endswith(b" other +1+1 1621464827\n")


def test_many_clients_at_once(procs, tmp_path):
    h = one_node(procs, tmp_path)
    clients = [h.client("Hill") for _ in range(100)]
    for i, c in enumerate(clients):
        c.send(b"IAMAT c%d +1+1 1621464827\n" % i)
    for i, c in enumerate(clients):
        assert c.read_line().endswith(b" c%d +1+1 1621464827\n" % i)


def test_log_has_requests_replies_and_timestamps(procs, tmp_path):
    h = one_node(procs, tmp_path)
    c = h.client("Hill")
    c.request("IAMAT logged.client +1+1 1621464827")
    c.request("JUNK")
    h.stop("Hill")
    log = h.log("Hill")
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z Hill: ", log, re.M)
    assert "IAMAT logged.client +1+1 1621464827" in log
    assert "AT Hill +" in log
    assert "? JUNK" in log
    for line in log.splitlines():
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z Hill: ", line), line
