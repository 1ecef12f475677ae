"""Supervisor and herdctl defects of issue 12, each pinned by the
behaviour it broke."""

import os
import shutil

from herdlib import SUBSET, binary, free_port, wait_for, write_ini
from supervisorlib import line_topology



def test_absent_node_retried_when_its_own_binary_appears(make_herd, tmp_path):
    """A node whose herd-node is missing is retried once herd-node is
    there, whatever herd-places is (it used to wait for herd-places)."""
    node_bin = str(tmp_path / "bin" / "herd-node")
    h = make_herd(line_topology(["A"]),
                  env={"HERD_NODE_BIN": node_bin,
                       "HERD_PLACES_BIN": str(tmp_path / "no-places")})
    p = h.ctl("start")
    assert p.returncode == 3, (p.stdout, p.stderr)
    a = h.node("A")
    assert a["state"] == "absent" and "not installed" in a["reason"], a
    os.makedirs(os.path.dirname(node_bin))
    shutil.copy(binary("herd-node"), node_bin)
    h.wait_state("A", "running")


def test_reload_says_why_the_emulator_stops(make_herd):
    port = free_port()
    h = make_herd(line_topology(["A"]),
                  places={"provider": "local", "port": str(port), "url": None,
                          "data": SUBSET})
    h.start()
    assert h.status()["places"]["state"] == "running"
    # A moves to another machine: no node is left here, provider still
    # local.
    write_ini(h.dir, h.topology, ports=h.ports, herd=h.herd,
              places=h.places, hosts={"A": "198.18.0.9"})
    p = h.ctl("reload")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert b"no node of this machine is left" in p.stdout, p.stdout
    wait_for(lambda: "reload: no node of this machine is left; stopping"
             in h.log("places"), timeout=20, what="the places stop note")
    assert "provider is no longer local" not in h.log("places")


def test_fallback_config_keeps_the_emulator_log(make_herd):
    """With herd.ini broken mid-edit, `logs` still shows the emulator's
    log when the provider is local (the fallback used to fake google)."""
    port = free_port()
    h = make_herd(line_topology(["A"]),
                  places={"provider": "local", "port": str(port), "url": None,
                          "data": SUBSET})
    h.start()
    wait_for(lambda: "listening on" in h.log("places"), timeout=20,
             what="the emulator's log")
    with open(h.ini, "a") as f:
        f.write("\n[herd]\nbogus = 1\n")
    p = h.ctl("logs", "-n", "200")
    assert p.returncode == 0, p.stderr
    assert b"last good configuration" in p.stderr
    assert b"places" in p.stdout and b"listening on" in p.stdout, p.stdout
