"""The chaos suite's short form: a supervised five-node herd under IAMAT
load while nodes are killed, stopped, cut apart and their links flapped
(incremental catch-ups between restarts); afterwards every node
holds every client's newest acknowledged record (tests/chaos/chaos.py;
`make chaos` runs the long form)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "chaos"))

import chaos  # noqa: E402


def test_chaos_short(tmp_path, capsys):
    res = chaos.run(str(tmp_path), duration=20, n_ids=200, workers=4,
                    interval=1.0, converge_timeout=60)
    chaos.report(res)
    out = capsys.readouterr().out
    with capsys.disabled():
        sys.stdout.write("\n" + out)
    assert res["acknowledged"] > 0 and res["ids_acked"] > 0, out
    assert res["faults_total"] >= 5, out
    assert res["faults"]["kill -9"] >= 1, out
    if "flap" in res["kinds"]:
        assert res["faults"]["link flap"] >= 1, out
    # Restarted nodes and flapped links resume from the neighbours' logs.
    assert res["catchups"]["incremental"] >= 1, out
    assert not res["fault_errors"], out
    assert res["lost"] == 0, out
    assert res["diverged"] == 0 and res["phantom"] == 0, out
    assert res["converged_s"] is not None, out
    assert not res["sanitizer"], out


class _Herd:
    names = ["A", "B"]
    ports = {"A": 1, "B": 2}


def test_checker_sees_a_loss_and_a_divergence(monkeypatch):
    """The checker itself: a stale record, a split herd and a record no
    client sent are each found."""
    ledger = chaos.Ledger()
    at = "AT A +0.000000001 %s +1.000000+2.000000 %s"
    for cid in ("x", "y", "z"):
        ledger.note_sent(cid, 10 * 10**9, "+1.000000+2.000000")
        ledger.note_sent(cid, 20 * 10**9, "+1.000000+2.000000")
    ledger.note_acked("x", 20 * 10**9, at % ("x", "20.000000000"))
    ledger.note_acked("y", 10 * 10**9, at % ("y", "10.000000000"))
    views = {
        # x: B still holds the older record -> lost (and diverged).
        1: {"x": at % ("x", "20.000000000"), "y": at % ("y", "20.000000000"),
            "z": at % ("z", "30.000000000")},
        # y: a later, unacknowledged but sent record everywhere -> fine.
        # z: a time nobody sent -> phantom.
        2: {"x": at % ("x", "10.000000000"), "y": at % ("y", "20.000000000"),
            "z": at % ("z", "30.000000000")},
    }
    monkeypatch.setattr(chaos, "read_records", lambda port, ids: views[port])
    lost, diverged, phantom, _ = chaos.check(_Herd(), ledger, ["x", "y", "z"])
    assert (lost, diverged, phantom) == (1, 1, 2)
    views[2]["x"] = views[1]["x"]
    lost, diverged, phantom, _ = chaos.check(_Herd(), ledger, ["x", "y"])
    assert (lost, diverged, phantom) == (0, 0, 0)
