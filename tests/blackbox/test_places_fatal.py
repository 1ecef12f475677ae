"""The places emulator down is not success (issue 11 point 6): with its
data file missing, `herdctl start` and `herdctl status` exit 3 and say
that WHATSAT cannot work and why; `[places] data` names the file, and by
default it is data/places.tsv of the project the binaries belong to, not
beside herd.ini."""

import json
import shutil

from herdlib import SUBSET, Client, binary, free_port, wait_for
from supervisorlib import SupHerd, line_topology



def _places(port, data=None):
    pl = {"provider": "local", "port": str(port), "url": None}
    if data:
        pl["data"] = data
    return pl


def test_missing_data_file_fails_status(make_herd, tmp_path):
    port = free_port()
    missing = str(tmp_path / "nowhere" / "places.tsv")
    h = make_herd(line_topology(["A"]), places=_places(port, missing))
    p = h.ctl("start")
    assert p.returncode == 3, (p.stdout, p.stderr)
    err = p.stderr.decode()
    assert "the places emulator is fatal" in err, err
    assert "WHATSAT cannot work" in err, err
    p = h.ctl("status")
    out = p.stdout.decode()
    assert p.returncode == 3, out
    line = [x for x in out.splitlines() if x.startswith("WHATSAT cannot work")]
    assert line, out
    assert "the places emulator is fatal" in line[0] and missing in line[0], \
        line
    p = h.ctl("status", "--json")
    assert p.returncode == 3
    assert json.loads(p.stdout)["places"]["state"] == "fatal"
    # The node itself runs: it is only WHATSAT that cannot work.
    assert h.node("A")["state"] == "running"

    # Point [places] data at a real file and reload: the emulator
    # restarts with it and the herd is whole again.
    h.rewrite(line_topology(["A"]), places=_places(port, SUBSET))
    p = h.ctl("reload")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert b"places" in p.stdout and b"restart" in p.stdout, p.stdout
    wait_for(lambda: h.status()["places"]["state"] == "running", timeout=30,
             what="places to run")
    p = h.ctl("status")
    assert p.returncode == 0, p.stdout
    assert b"WHATSAT cannot work" not in p.stdout
    c = Client(h.ports["A"])
    c.send("IAMAT kiwi +34.068930-118.445127 1621464827.959498503\n")
    c.read_line()
    reply = c.whatsat("WHATSAT kiwi 10 2")
    assert b'"status":\t"OK"' in reply, reply
    c.close()


def test_default_data_is_beside_the_project_not_herd_ini(procs, tmp_path):
    """herd.ini in tmp/etc (think /etc), herd-places in tmp/proj/bin: the
    data is tmp/proj/data/places.tsv.  A file beside herd.ini is not it."""
    proj = tmp_path / "proj"
    (proj / "bin").mkdir(parents=True)
    places_bin = str(proj / "bin" / "herd-places")
    shutil.copy(binary("herd-places"), places_bin)
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "data").mkdir()
    shutil.copy(SUBSET, etc / "data" / "places.tsv")    # the decoy
    port = free_port()
    h = SupHerd(procs, etc, line_topology(["A"]), places=_places(port),
                env={"HERD_PLACES_BIN": places_bin})
    try:
        p = h.ctl("start")
        assert p.returncode == 3, (p.stdout, p.stderr)
        st = h.status()
        assert st["places"]["state"] == "fatal"
        assert str(proj / "data" / "places.tsv") in st["places"]["reason"], st
        # Build it where it belongs; start brings the emulator back.
        (proj / "data").mkdir()
        shutil.copy(SUBSET, proj / "data" / "places.tsv")
        p = h.ctl("start")
        assert p.returncode == 0, (p.stdout, p.stderr)
        assert h.status()["places"]["state"] == "running"
        assert "loaded" in h.log("places") and \
            str(proj / "data" / "places.tsv") in h.log("places")
    finally:
        h.track()
        h.ctl("stop", timeout=60)
