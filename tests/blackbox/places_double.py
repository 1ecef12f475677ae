"""A test double for Google's legacy Nearby Search and Places API (New),
served by the test suite itself on a loopback port.  Each test sets what
it answers: a number of results, a delay, a status, raw bytes, compact or
pretty-printed JSON, and whether answers wait for the test's go."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def make_results(n, lat=34.06893, lng=-118.445127):
    return [{
        "geometry": {"location": {"lat": lat + i * 0.001, "lng": lng},
                     "viewport": {"northeast": {"lat": lat + 0.01, "lng": lng + 0.01},
                                  "southwest": {"lat": lat - 0.01, "lng": lng - 0.01}}},
        "name": "Place %d" % i,
        "place_id": "place-%d" % i,
        "reference": "place-%d" % i,
        "scope": "GOOGLE",
        "types": ["locality", "political"],
        "vicinity": "Somewhere %d" % i,
    } for i in range(n)]


class PlacesDouble:
    def __init__(self):
        self.results = 7
        self.status = "OK"
        self.delay = 0.0
        self.raw = None             # bytes to answer instead of JSON
        self.indent = None          # None: compact JSON; N: Google's style
        # A barrier: when set, every request waits until release() (the
        # test decides when, e.g. after the node has read N WHATSATs).
        self.hold = None
        self.http_status = 200
        self.requests = []          # (method, path, query, headers, body)
        self.lock = threading.Lock()
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, body_obj):
                if double.hold is not None:
                    double.hold.wait(30)
                if double.delay:
                    threading.Event().wait(double.delay)
                body = double.raw if double.raw is not None else \
                    double.encode(body_obj)
                try:
                    self.send_response(double.http_status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass

            def do_GET(self):
                u = urlparse(self.path)
                q = parse_qs(u.query)
                with double.lock:
                    double.requests.append(("GET", u.path, q, dict(self.headers), b""))
                out = {"html_attributions": [], "status": double.status,
                       "results": make_results(double.results)
                       if double.status == "OK" else []}
                if double.status not in ("OK", "ZERO_RESULTS"):
                    out["error_message"] = "double says " + double.status
                self._answer(out)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                u = urlparse(self.path)
                with double.lock:
                    double.requests.append(("POST", u.path, {}, dict(self.headers), body))
                if double.status != "OK":
                    out = {"error": {"code": 403, "message": "double says no",
                                     "status": double.status}}
                else:
                    req = json.loads(body or b"{}")
                    k = min(double.results, req.get("maxResultCount", 20))
                    out = {"places": [{
                        "id": "id-%d" % i,
                        "displayName": {"text": "Place %d" % i, "languageCode": "en"},
                        "formattedAddress": "Address %d" % i,
                        "location": {"latitude": 34.0 + i / 1000, "longitude": -118.4},
                        "types": ["locality"],
                    } for i in range(k)]}
                self._answer(out)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def encode(self, obj):
        """The body for obj as this double sends it."""
        if self.indent is None:
            return json.dumps(obj).encode()
        # Google's own layout: indented, "key" : value.
        return json.dumps(obj, indent=self.indent,
                          separators=(",", " : ")).encode()

    def hold_requests(self):
        self.hold = threading.Event()

    def release(self):
        if self.hold is not None:
            self.hold.set()

    def count(self):
        with self.lock:
            return len(self.requests)

    def close(self):
        self.release()
        self.server.shutdown()
        self.server.server_close()
