"""The supervisor's control socket serves its own user only: another uid
is refused even when file permissions would let it in."""

import json
import os
import pwd
import subprocess
import sys

import pytest

from herdlib import wait_for
from supervisorlib import line_topology


def nobody():
    try:
        return pwd.getpwnam("nobody").pw_uid
    except KeyError:
        return None


@pytest.mark.skipif(os.geteuid() != 0 or nobody() is None,
                    reason="needs root and a 'nobody' user to switch to")
def test_control_socket_refuses_other_users(make_herd):
    h = make_herd(line_topology(["A"]))
    h.start()
    sock = h.run_path("supervisor.sock")
    assert os.stat(sock).st_mode & 0o777 == 0o600
    # Open the way on the filesystem (every directory above the socket
    # traversable, the socket writable), so only the peer check stands.
    opened = []
    d = os.path.dirname(sock)
    while d not in ("/", "/tmp", ""):
        mode = os.stat(d).st_mode & 0o7777
        opened.append((d, mode))
        os.chmod(d, mode | 0o011)
        d = os.path.dirname(d)
    os.chmod(sock, 0o666)
    try:
        refused_as_nobody(h, sock)
    finally:
        for d, mode in opened:
            os.chmod(d, mode)
    # Its owner is still served.
    st = json.loads(h.ctl("status", "--json").stdout)
    assert [n["name"] for n in st["nodes"]] == ["A"]


def refused_as_nobody(h, sock):
    probe = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "s.connect(sys.argv[1])\n"
        "s.sendall(b'status\\n')\n"
        "data = b''\n"
        "while True:\n"
        "    c = s.recv(65536)\n"
        "    if not c: break\n"
        "    data += c\n"
        "sys.stdout.buffer.write(data)\n")
    uid = nobody()
    r = subprocess.run([sys.executable, "-c", probe, sock], capture_output=True,
                       timeout=30, user=uid, group=pwd.getpwuid(uid).pw_gid)
    assert r.returncode == 0, r.stderr
    assert b"permission denied" in r.stdout
    assert b'"nodes"' not in r.stdout
    wait_for(lambda: "refused a client of uid %d" % uid in h.log("supervisor"),
             what="the supervisor to log the refusal")
