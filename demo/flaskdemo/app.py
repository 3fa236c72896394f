"""A tiny HTTP app for the pybuild demo: GET / greets, GET /health says ok."""

import json
import os
import socket
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            body = b"ok\n"
        else:
            info = {"app": "flaskdemo", "version": os.environ.get("APP_VERSION"),
                    "host": socket.gethostname(), "user": os.getuid()}
            try:
                with open("/app/data/build-info.txt") as fh:
                    info["build"] = fh.read().strip()
            except OSError:
                pass
            body = (json.dumps(info) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    print(f"flaskdemo listening on :{port}", flush=True)
    HTTPServer(("0.0.0.0", port), Handler).serve_forever()
