"""A tiny HTTP service for ``aftershock demo``: ``/health`` answers JSON, ``/`` a page.

Run: ``python -m aftershock.demo.service --port 18080``. It binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STARTED = time.time()


class _Handler(BaseHTTPRequestHandler):
    server_version = "aftershock-demo/1"

    def do_GET(self) -> None:
        if self.path.startswith("/health"):
            body = json.dumps(
                {"status": "ok", "pid": os.getpid(), "uptime": round(time.time() - STARTED, 3)}
            ).encode()
            content_type = "application/json"
        else:
            body = b"<h1>aftershock demo service</h1>\n"
            content_type = "text/html"
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the demo's output is aftershock's."""


def main() -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), _Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
