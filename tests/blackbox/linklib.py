"""The link protocol as a test plays it (docs/PEERS.md): key ids and
link PSKs from a secret, a dialer that speaks TLS 1.3 through the real
`openssl s_client`, and a TCP proxy that records, replays or tampers
with the bytes between two nodes."""

import hashlib
import hmac
import os
import queue
import socket
import subprocess
import threading
import time

from linklab import pump


def read_secret(herd_dir):
    with open(os.path.join(herd_dir, "run", "herd.secret"), "rb") as f:
        return f.read().rstrip(b"\r\n \t")


def key_id(secret):
    return hashlib.sha256(b"herd key id\n" + secret).hexdigest()[:16]


def link_psk(secret, dialer, listener):
    """HKDF-SHA256 (RFC 5869), one block: what common/auth.c derives."""
    prk = hmac.new(b"herd-v2 link psk", secret, hashlib.sha256).digest()
    info = ("dialer %s\nlistener %s" % (dialer, listener)).encode()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def hello(dialer, listener, kid):
    return ("HERD-HELLO %s %s herd-v2 %s\n" % (dialer, listener, kid)).encode()


class TlsDialer:
    """Dial a node as `dialer`: HERD-HELLO in clear, then TLS 1.3 with the
    PSK of (psk_secret, dialer, listener) through openssl s_client, whose
    socket is relayed onto ours.  send() and read_line() carry the plain
    text inside TLS."""

    def __init__(self, port, dialer, listener, secret, kid=None, psk=None,
                 identity=None):
        kid = kid or key_id(secret)
        psk = psk or link_psk(secret, dialer, listener)
        identity = identity or "herd-v2 %s %s %s" % (dialer, listener, kid)
        self.node = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.node.sendall(hello(dialer, listener, kid))
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        self.proc = subprocess.Popen(
            ["openssl", "s_client", "-connect",
             "127.0.0.1:%d" % lsock.getsockname()[1], "-tls1_3",
             "-ciphersuites", "TLS_AES_128_GCM_SHA256", "-psk_identity",
             identity, "-psk", psk.hex(), "-quiet"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        lsock.settimeout(10)
        self.tls, _ = lsock.accept()
        lsock.close()
        self.lines = queue.Queue()
        self.buf = b""
        self.eof = threading.Event()
        for a, b in ((self.tls, self.node), (self.node, self.tls)):
            threading.Thread(target=pump, args=(a, b), daemon=True).start()
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        for line in iter(self.proc.stdout.readline, b""):
            self.lines.put(line)
        self.eof.set()
        self.lines.put(None)

    def send(self, data):
        """Plain text into TLS; lost if s_client already quit (a refused
        handshake), which is what the refusal tests want."""
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass

    def read_line(self, timeout=10):
        line = self.lines.get(timeout=timeout)
        if line is None:
            self.lines.put(None)
            raise AssertionError("link closed by the node")
        return line

    def read_until(self, marker, timeout=10):
        got = b""
        deadline = time.monotonic() + timeout
        while marker not in got:
            got += self.read_line(max(0.1, deadline - time.monotonic()))
        return got

    def closed(self, timeout=10):
        return self.eof.wait(timeout)

    def close(self):
        for s in (self.tls, self.node):
            try:
                s.close()
            except OSError:
                pass
        try:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass


class Proxy:
    """A TCP proxy from a loopback port to target_port.  It records what
    each side sent (per connection, in order), and flips the last byte of
    the next chunk from the dialer once tamper() is called."""

    def __init__(self, target_port):
        self.target = target_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.sessions = []          # [bytearray from dialer] per connection
        self.flip = threading.Event()
        self.flipped = threading.Event()
        self.accepting = True
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while self.accepting:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if not self.accepting:
                c.close()
                return
            try:
                t = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                c.close()
                continue
            rec = bytearray()
            self.sessions.append(rec)
            self.conns += [c, t]
            threading.Thread(target=pump, args=(c, t, self._recorder(rec)),
                             daemon=True).start()
            threading.Thread(target=pump, args=(t, c), daemon=True).start()

    def _recorder(self, rec):
        """What a chunk from the dialer becomes: its last bit flipped once
        tampering is asked for (the first chunk after), and kept in rec."""
        def on_data(data):
            if self.flip.is_set() and not self.flipped.is_set():
                data = data[:-1] + bytes([data[-1] ^ 0x01])
                self.flipped.set()
            rec.extend(data)
            return data
        return on_data

    def tamper(self):
        self.flip.set()

    def stop_accepting(self):
        self.accepting = False
        try:
            self.sock.close()
        except OSError:
            pass

    def close(self):
        self.stop_accepting()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
