"""Helpers for tests and benchmarks of links: a TCP proxy that can cut a
link while both ends live, and snapshot files written byte for byte
(common/journal_codec.h), so a node starts holding many clients at once."""

import socket
import struct
import threading
import zlib


def pump(src, dst, on_data=None):
    """Copy src to dst until either side ends, then shut both down (so the
    pump the other way ends too); on_data, if given, sees each chunk on
    its way and returns what goes on."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if on_data is not None:
                data = on_data(data)
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class Proxy:
    """host:listen -> 127.0.0.1:target, byte for byte, until cut."""

    def __init__(self, target):
        self.target = target
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.cut_now = False
        self.socks = []
        self.lock = threading.Lock()
        self.stop = False
        self.t = threading.Thread(target=self._accept, daemon=True)
        self.t.start()

    def _accept(self):
        while not self.stop:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            if self.cut_now or self.stop:
                c.close()
                continue
            try:
                u = socket.create_connection(("127.0.0.1", self.target), 5)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.socks += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=pump, args=(a, b),
                                 daemon=True).start()

    def cut(self):
        self.cut_now = True
        with self.lock:
            for s in self.socks:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.socks = []

    def heal(self):
        self.cut_now = False

    def close(self):
        self.stop = True
        self.cut()
        self.lsock.close()


def frame(payload):
    ln = struct.pack("<I", len(payload))
    return ln + struct.pack("<I", zlib.crc32(payload, zlib.crc32(ln))) + \
        payload


def write_snapshot(path, lines):
    body = bytearray(b"HERDSNAP" + struct.pack("<II", 1, 0))
    for line in lines:
        body += frame(line.encode())
    crc = zlib.crc32(bytes(body))
    body += b"HEND" + struct.pack("<IQ", crc, len(lines))
    with open(path, "wb") as f:
        f.write(body)
