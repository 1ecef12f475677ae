"""Durability: every node keeps its records in data_dir (journal and
snapshot) and loads them before it serves.  kill -9 of one node and of the
whole herd, torn journal tails, a corrupt snapshot, compaction."""

import glob
import os
import re
import signal
import struct
import zlib

from herdlib import Herd, wait_for

NAMES = ["Hill", "Jaquez", "Smith", "Singleton", "Campbell"]
FRAME_HEAD = 8


def send_updates(h, node, updates, batch=32):
    """Pipeline IAMATs (client_id, location, time) to node; return the
    acknowledged AT lines, in order."""
    c = h.client(node)
    acks = []
    try:
        for i in range(0, len(updates), batch):
            part = updates[i:i + batch]
            c.send("".join("IAMAT %s %s %s\n" % u for u in part))
            for _ in part:
                line = c.read_line().rstrip(b"\n")
                assert line.startswith(b"AT %s " % node.encode()), line
                acks.append(line)
    finally:
        c.close()
    return acks


def held_lines(h, node, ids, batch=16):
    """The AT line node holds for each id (None when unknown), read with
    WHATSATs whose places fail fast: a reply's first line is the stored
    line."""
    c = h.client(node)
    out = {}
    try:
        for i in range(0, len(ids), batch):
            part = ids[i:i + batch]
            c.send("".join("WHATSAT %s 1 1\n" % x for x in part))
            for x in part:
                first = c.read_line()
                if first.startswith(b"? "):
                    out[x] = None
                else:
                    c.read_until(b"\n\n")
                    out[x] = first.rstrip(b"\n")
    finally:
        c.close()
    return out


def client_id(line):
    return line.split(b" ")[3].decode()


def newest(acks):
    """The newest acknowledged line per client (times only grow here)."""
    out = {}
    for line in acks:
        out[client_id(line)] = line
    return out


def assert_holds(h, node, want):
    got = held_lines(h, node, sorted(want))
    missing = {k: v for k, v in want.items() if got.get(k) != v}
    assert not missing, "%s lost %d of %d: e.g. %r, holds %r" % (
        node, len(missing), len(want), next(iter(missing.items())),
        got.get(next(iter(missing))))


def wait_holds(h, node, want, timeout=20):
    def ok():
        got = held_lines(h, node, sorted(want))
        return all(got.get(k) == v for k, v in want.items())
    wait_for(ok, timeout=timeout, interval=0.2,
             what="%s to hold all %d records" % (node, len(want)))


def kill9(h, names):
    for name in names:
        h.stop(name, sig=signal.SIGKILL)


def data(h, name, suffix):
    return os.path.join(h.dir, "data", name + suffix)


def updates_for(prefix, n, t0=1700000000, rounds=1):
    """n clients, each updated `rounds` times with growing client times."""
    out = []
    for r in range(rounds):
        for i in range(n):
            out.append(("%s-%d" % (prefix, i), "+%d.5-%d.25" % (i % 80, i % 170),
                        "%d.%09d" % (t0 + r, i)))
    return out


# --- one node ----------------------------------------------------------------

def test_kill9_single_node_always_nothing_acknowledged_lost(procs, tmp_path):
    h = Herd(procs, tmp_path, topology={"Hill": []}, herd={"fsync": "always"})
    h.start("Hill")
    acks = send_updates(h, "Hill", updates_for("solo", 300, rounds=3))
    # Killed the instant the last acknowledgment arrived.
    kill9(h, ["Hill"])
    h.start("Hill")
    assert_holds(h, "Hill", newest(acks))
    log = h.log("Hill")
    assert re.search(r"journal: loaded 300 clients from 0 snapshot records and "
                     r"900 journal records in [0-9.]+ ms \(fsync always", log), log


def test_many_clients_at_once_always(procs, tmp_path):
    """Concurrent pipelining clients: group commit still acknowledges only
    what is on disk."""
    import threading
    h = Herd(procs, tmp_path, topology={"Hill": []}, herd={"fsync": "always"})
    h.start("Hill")
    results = [None] * 8

    def one(k):
        results[k] = send_updates(h, "Hill", updates_for("c%d" % k, 100,
                                                         rounds=2))
    threads = [threading.Thread(target=one, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    kill9(h, ["Hill"])
    h.start("Hill")
    want = {}
    for acks in results:
        want.update(newest(acks))
    assert len(want) == 800
    assert_holds(h, "Hill", want)


def test_clean_stop_keeps_everything_with_fsync_no(procs, tmp_path):
    h = Herd(procs, tmp_path, topology={"Hill": []}, herd={"fsync": "no"})
    h.start("Hill")
    acks = send_updates(h, "Hill", updates_for("nofsync", 50))
    assert h.stop("Hill") == 0
    h.start("Hill")
    assert_holds(h, "Hill", newest(acks))


def test_data_dir_setting(procs, tmp_path):
    h = Herd(procs, tmp_path, topology={"Hill": []},
             herd={"data_dir": "state/here", "fsync": "everysec"})
    h.start("Hill")
    send_updates(h, "Hill", updates_for("dd", 3))
    path = os.path.join(h.dir, "state", "here", "Hill.journal")
    wait_for(lambda: os.path.getsize(path) > 8, what="journal written")
    with open(path, "rb") as f:
        assert f.read(8) == b"HERDJNL\x01"


def test_bad_fsync_value_refused(procs, tmp_path):
    h = Herd(procs, tmp_path, topology={"Hill": []}, herd={"fsync": "sometimes"})
    p = h.start("Hill", wait=False)
    assert p.wait(timeout=10) == 100
    err = p.stderr.read().decode()
    assert re.search(r"herd\.ini:\d+: fsync must be always, everysec or no, "
                     r"not 'sometimes'", err), err


# --- the whole herd ------------------------------------------------------------

def herd_load(h, tag, rounds=1):
    """Updates at every node (its own clients); the newest acknowledged."""
    want = {}
    for name in NAMES:
        want.update(newest(send_updates(h, name, updates_for(
            "%s-%s" % (tag, name), 60, rounds=rounds))))
    return want


def test_whole_herd_kill9_always(procs, tmp_path):
    h = Herd(procs, tmp_path, herd={"fsync": "always"})
    h.start_all()
    want = herd_load(h, "all", rounds=2)
    kill9(h, NAMES)
    h.start_all()
    for name in NAMES:
        wait_holds(h, name, want)


def test_whole_herd_kill9_everysec(procs, tmp_path):
    import time
    h = Herd(procs, tmp_path, herd={"fsync": "everysec"})
    h.start_all()
    want = herd_load(h, "early")
    time.sleep(1.5)
    # More load right up to the kill: not promised, but must not hurt.
    herd_load(h, "late")
    kill9(h, NAMES)
    h.start_all()
    for name in NAMES:
        wait_holds(h, name, want)


# --- torn and corrupt files ----------------------------------------------------

def filled_node(procs, tmp_path, n=50):
    h = Herd(procs, tmp_path, topology={"Hill": []}, herd={"fsync": "always"})
    h.start("Hill")
    acks = send_updates(h, "Hill", updates_for("torn", n))
    kill9(h, ["Hill"])
    return h, acks


def test_torn_tail_mid_record(procs, tmp_path):
    h, acks = filled_node(procs, tmp_path)
    path = data(h, "Hill", ".journal")
    size = os.path.getsize(path)
    last = FRAME_HEAD + len(acks[-1])
    os.truncate(path, size - 5)
    h.start("Hill")
    log = h.log("Hill")
    assert "journal: truncated %d bytes of torn tail at offset %d " \
        "(incomplete record)" % (last - 5, size - last) in log, log
    assert os.path.getsize(path) == size - last
    got = held_lines(h, "Hill", [client_id(a) for a in acks])
    for a in acks[:-1]:
        assert got[client_id(a)] == a
    assert got[client_id(acks[-1])] is None
    # Appends go on from the cut, and survive another kill -9.
    more = send_updates(h, "Hill", [("after-cut", "+1+1", "1750000000.5")])
    kill9(h, ["Hill"])
    h.start("Hill")
    assert_holds(h, "Hill", newest(acks[:-1] + more))
    assert "truncated" not in h.log("Hill").split("starting: pid")[-1]


def test_torn_tail_garbage_appended(procs, tmp_path):
    h, acks = filled_node(procs, tmp_path)
    path = data(h, "Hill", ".journal")
    size = os.path.getsize(path)
    garbage = b"\x17garbage that is no frame\xff" * 3
    with open(path, "ab") as f:
        f.write(garbage)
    h.start("Hill")
    log = h.log("Hill")
    assert "journal: truncated %d bytes of torn tail at offset %d " \
        "(corrupt record)" % (len(garbage), size) in log, log
    assert os.path.getsize(path) == size
    assert_holds(h, "Hill", newest(acks))


def test_torn_tail_zero_filled(procs, tmp_path):
    """Power loss can leave a file longer than what reached it, the rest
    zeros."""
    h, acks = filled_node(procs, tmp_path)
    path = data(h, "Hill", ".journal")
    size = os.path.getsize(path)
    with open(path, "ab") as f:
        f.write(b"\0" * 4096)
    h.start("Hill")
    assert "journal: truncated 4096 bytes of torn tail at offset %d" % size \
        in h.log("Hill")
    assert_holds(h, "Hill", newest(acks))


def test_torn_header(procs, tmp_path):
    h = Herd(procs, tmp_path, topology={"Hill": []})
    os.makedirs(os.path.join(h.dir, "data"))
    with open(data(h, "Hill", ".journal"), "wb") as f:
        f.write(b"HERD")
    h.start("Hill")
    assert "journal: truncated 4 bytes of torn tail at offset 0" in h.log("Hill")
    acks = send_updates(h, "Hill", updates_for("fresh", 5))
    kill9(h, ["Hill"])
    h.start("Hill")
    assert_holds(h, "Hill", newest(acks))


def record_offsets(path):
    """Offsets of the journal's AT record frames, in order (control frames,
    HERD-LOG and HERD-POS, are left out)."""
    with open(path, "rb") as f:
        b = f.read()
    out, off = [], 8
    while off + FRAME_HEAD <= len(b):
        n = int.from_bytes(b[off:off + 4], "little")
        if b[off + FRAME_HEAD:off + FRAME_HEAD + 3] == b"AT ":
            out.append(off)
        off += FRAME_HEAD + n
    return out


def test_corrupt_record_mid_journal(procs, tmp_path):
    """A bit gone bad in the middle: the records before it are kept, the
    rest cut (the neighbours would bring them back)."""
    h, acks = filled_node(procs, tmp_path, n=10)
    path = data(h, "Hill", ".journal")
    off = record_offsets(path)[4]
    with open(path, "r+b") as f:
        f.seek(off + FRAME_HEAD + 5)
        b = f.read(1)
        f.seek(off + FRAME_HEAD + 5)
        f.write(bytes([b[0] ^ 0x40]))
    h.start("Hill")
    assert "at offset %d (corrupt record)" % off in h.log("Hill")
    got = held_lines(h, "Hill", [client_id(a) for a in acks])
    assert [got[client_id(a)] for a in acks] == acks[:4] + [None] * 6


# --- compaction and snapshots ------------------------------------------------

def test_interrupted_compaction_leftovers(procs, tmp_path):
    """A kill -9 during a compaction leaves NAME.journal.old (the journal
    before it) and a half-written NAME.snapshot.tmp: the first is loaded,
    the second removed, and a snapshot then replaces both."""
    h, acks = filled_node(procs, tmp_path, n=30)
    os.rename(data(h, "Hill", ".journal"), data(h, "Hill", ".journal.old"))
    with open(data(h, "Hill", ".snapshot.tmp"), "wb") as f:
        f.write(b"HERDSNAP\1\0\0\0half")
    h.start("Hill")
    assert "removed %s left by an interrupted compaction" % \
        data(h, "Hill", ".snapshot.tmp") in h.log("Hill")
    assert not os.path.exists(data(h, "Hill", ".snapshot.tmp"))
    assert_holds(h, "Hill", newest(acks))
    more = send_updates(h, "Hill", [("after-old", "+1+1", "1760000000.5")])
    wait_for(lambda: not os.path.exists(data(h, "Hill", ".journal.old")),
             what="the old journal to go")
    assert os.path.exists(data(h, "Hill", ".snapshot"))
    kill9(h, ["Hill"])
    h.start("Hill")
    assert_holds(h, "Hill", newest(acks + more))


BIG = "x" * 1800     # long client IDs: megabytes of journal in few requests


def big_updates(rounds, n=20, t0=1700000000):
    return [("%s-%d" % (BIG, i), "+10.5-20.5", "%d.%09d" % (t0 + r, i))
            for r in range(rounds) for i in range(n)]


def compacted_node(h, name="Hill"):
    """Enough updates to pass the 4 MiB bound; wait for the snapshot."""
    journal = data(h, name, ".journal")
    acks = send_updates(h, name, big_updates(130), batch=64)
    wait_for(lambda: os.path.exists(data(h, name, ".snapshot")), timeout=15,
             what="a snapshot")
    wait_for(lambda: os.path.getsize(journal) < 1024 * 1024, timeout=15,
             what="the journal to shrink")
    # The snapshot is renamed into place before NAME.journal.old is
    # retired; the log line comes after both, so a kill -9 from here on
    # finds the compaction finished.
    wait_for(lambda: re.search(r"journal: compacted \d+ records into "
                               r"\S+%s\.snapshot" % name, h.log(name)),
             timeout=15, what="the compaction in the log")
    return acks


def test_compaction_and_restart(procs, tmp_path):
    h = Herd(procs, tmp_path, topology={"Hill": []}, herd={"fsync": "always"})
    h.start("Hill")
    acks = compacted_node(h)
    done = re.compile(r"journal: compacted 20 records into \S+Hill\.snapshot "
                      r"\((\d+) bytes\) in [0-9.]+ ms, in the background; "
                      r"the journal was (\d+) bytes")
    m = wait_for(lambda: done.search(h.log("Hill")),
                 what="the compaction in the log")
    assert int(m.group(2)) > 4 * 1024 * 1024
    snap = data(h, "Hill", ".snapshot")
    with open(snap, "rb") as f:
        img = f.read()
    assert img[:8] == b"HERDSNAP" and img[-16:-12] == b"HEND"
    assert struct.unpack("<I", img[-12:-8])[0] == zlib.crc32(img[:-16])
    assert struct.unpack("<Q", img[-8:])[0] == 20
    assert not os.path.exists(snap + ".tmp")
    assert not os.path.exists(data(h, "Hill", ".journal.old"))
    # Newer updates after the compaction go to the journal.
    after = send_updates(h, "Hill", big_updates(1, n=5, t0=1750000000) +
                         [("small", "+1+1", "1.5")])
    kill9(h, ["Hill"])
    h.start("Hill")
    want = newest(acks + after)
    assert_holds(h, "Hill", want)
    assert re.search(r"journal: loaded 21 clients from 20 snapshot records and "
                     r"\d+ journal records", h.log("Hill"))


def test_corrupt_snapshot_set_aside_then_neighbours_fill_in(procs, tmp_path):
    h = Herd(procs, tmp_path, topology={"Hill": ["Jaquez"], "Jaquez": []},
             herd={"fsync": "always"})
    h.start_all()
    acks = compacted_node(h, "Hill")
    after = send_updates(h, "Hill", [("after-snap", "+1+1", "1760000000.5")])
    want = newest(acks + after)
    wait_holds(h, "Jaquez", want)
    kill9(h, ["Hill", "Jaquez"])
    snap = data(h, "Hill", ".snapshot")
    with open(snap, "r+b") as f:
        f.seek(100)
        b = f.read(1)
        f.seek(100)
        f.write(bytes([b[0] ^ 0x01]))

    # Alone, Hill starts from its journal only, and says so loudly.
    h.start("Hill")
    log = h.log("Hill")
    assert re.search(r"error: journal: snapshot \S+Hill\.snapshot is corrupt "
                     r"\(a corrupt record\); set aside as \S+Hill\.snapshot\."
                     r"corrupt-\d{8}T\d{6}Z; starting from the journal and the "
                     r"neighbours", log, re.I), log
    assert not os.path.exists(snap)
    assert len(glob.glob(snap + ".corrupt-*")) == 1
    got = held_lines(h, "Hill", sorted(want))
    assert got["after-snap"] == want["after-snap"]
    assert sum(1 for k in want if got[k] is None) == 20

    # With its neighbour back, the catch-up brings the rest.
    h.start("Jaquez")
    wait_holds(h, "Hill", want)
    # And once it is caught up, a restart alone keeps everything.
    kill9(h, ["Hill", "Jaquez"])
    h.start("Hill")
    assert_holds(h, "Hill", want)


def test_truncated_snapshot_set_aside(procs, tmp_path):
    h = Herd(procs, tmp_path, topology={"Hill": []})
    h.start("Hill")
    compacted_node(h)
    kill9(h, ["Hill"])
    snap = data(h, "Hill", ".snapshot")
    os.truncate(snap, os.path.getsize(snap) - 3)
    h.start("Hill")
    assert re.search(r"snapshot \S+ is corrupt \(a record runs into the "
                     r"trailer \(truncated\?\)\)", h.log("Hill"))
    assert glob.glob(snap + ".corrupt-*")


# --- a disk that fills up --------------------------------------------------------

def test_disk_full_keeps_serving_then_recovers(procs, tmp_path):
    """data_dir on a tiny tmpfs (needs root; skipped otherwise): the node
    answers every request while the disk is full, says so in its log, and
    once there is room again writes a snapshot of everything it holds."""
    import subprocess
    import time
    import pytest
    mnt = os.path.join(str(tmp_path), "data")
    os.makedirs(mnt)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", mnt],
                      stderr=subprocess.DEVNULL).returncode != 0:
        pytest.skip("cannot mount a tmpfs (not root?)")
    try:
        h = Herd(procs, tmp_path, topology={"Hill": []},
                 herd={"fsync": "always"})
        h.start("Hill")
        # 4.5 MB: more than the disk takes, and more than the journal's
        # 4 MiB buffer keeps while the disk refuses it.
        acks = send_updates(h, "Hill", big_updates(40, n=60), batch=32)
        want = newest(acks)
        assert len(acks) == 2400         # every one answered
        assert_holds(h, "Hill", want)    # and held in memory
        wait_for(lambda: "error: journal: cannot write" in h.log("Hill"),
                 what="the disk error in the log")
        log = h.log("Hill")
        assert "No space left on device" in log
        assert re.search(r"error: journal: dropped \d+ buffered bytes; a "
                         r"snapshot is written when the disk recovers", log)
        assert h.procs["Hill"].poll() is None
        # Room again: the journal is written, and a snapshot covers what
        # missed it.
        subprocess.run(["mount", "-o", "remount,size=16m", mnt], check=True)
        wait_for(lambda: "is writable again" in h.log("Hill"), what="recovery")
        wait_for(lambda: re.search(r"journal: compacted 60 records",
                                   h.log("Hill")), what="a snapshot")
        more = send_updates(h, "Hill", [("after-full", "+1+1", "1760000000.5")])
        time.sleep(0.1)
        kill9(h, ["Hill"])
        h.start("Hill")
        want.update(newest(more))
        assert_holds(h, "Hill", want)
    finally:
        h_proc = getattr(locals().get("h"), "procs", {})
        for name in list(h_proc):
            h.stop(name, sig=signal.SIGKILL)
        subprocess.run(["umount", "-l", mnt], stderr=subprocess.DEVNULL)
