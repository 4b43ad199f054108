"""A small JSON HTTP server on 127.0.0.1 for the examples' stand-in services (no internet needed)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["serve", "reply"]


def serve(handle: Callable[[BaseHTTPRequestHandler], None]) -> str:
    """Answer every GET and POST with `handle(request)` on a free port of 127.0.0.1; return the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            handle(self)

        do_POST = do_GET

        def log_message(self, *args: object) -> None:
            pass  # keep the example's output to the pipeline's lines

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}"


def reply(handler: BaseHTTPRequestHandler, status: int, body: dict, headers: dict | None = None) -> None:
    """Send `body` as JSON with `status` and any extra `headers`."""
    payload = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(payload)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(payload)
