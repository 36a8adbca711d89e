"""The viewer's local server: the page and its static files, and a JSON API the page pages through.

    GET /                      the page            GET /static/<file>   its script and style
    GET /api/meta              runs, pairs, exams  GET /api/samples     ?run&filter&group&q&sort&desc&offset&limit
    GET /api/sample?run&n      one sample          GET /api/pairs       ?pair&kind&q&offset&limit

Bound to 127.0.0.1 only, and answering only requests addressed to it (the Host header), so a web
page whose name was rebound to 127.0.0.1 cannot read the logs. Every answer carries a strict Content-Security-Policy (scripts and styles
from this server only, no connection elsewhere), so nothing a log holds can run as script.
"""

from __future__ import annotations

import threading
from typing import cast
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from evalkit.core.errors import EvalkitError
from evalkit.analysis.view.page import STATIC, page_html, to_json
from evalkit.analysis.view.session import Viewer

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def handler_for(viewer: Viewer) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()          # one question at a time: the search caches are not shared safely
    api = {"/api/meta": lambda p: viewer.meta(), "/api/samples": viewer.samples, "/api/sample": viewer.sample,
           "/api/pairs": viewer.pairs}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:     # quiet: the terminal shows the URL, not every request
            pass

        def do_GET(self) -> None:
            port = cast(tuple, self.server.server_address)[1]      # (host, port): an IPv4 server
            if self.headers.get("Host") not in (f"127.0.0.1:{port}", f"localhost:{port}"):
                # a page elsewhere that rebinds its name to 127.0.0.1 must not read the logs
                return self._json(403, {"error": "this viewer answers only http://127.0.0.1 or localhost"})
            url = urlsplit(self.path)
            if url.path == "/":
                return self._send(200, page_html(served=True).encode(), "text/html; charset=utf-8")
            if url.path.startswith("/static/") and url.path[8:] in STATIC:
                name = url.path[8:]
                return self._send(200, STATIC[name], TYPES[name[name.rfind("."):]])
            if url.path not in api:
                return self._json(404, {"error": f"no such page {url.path}"})
            params = dict(parse_qsl(url.query))
            try:
                if url.path == "/api/pairs":          # its own lock (Viewer.pairing): compare may take seconds
                    body = api[url.path](params)
                else:
                    with lock:
                        body = api[url.path](params)
            except (ValueError, EvalkitError) as exc:
                return self._json(400, {"error": str(exc)})
            self._json(200, body)

        def _json(self, status: int, body: dict) -> None:
            self._send(status, to_json(body).encode(), "application/json")

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

    return Handler


def serve(viewer: Viewer, port: int = 0) -> ThreadingHTTPServer:
    """The server, bound and ready (not yet serving): `server.server_address[1]` is its port."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler_for(viewer))
    server.daemon_threads = True
    return server
