#!/usr/bin/env python3
"""A webhook receiver on 127.0.0.1 for the end-to-end run (scripts/e2e.sh):
stands in for Slack's, Discord's or any JSON incoming webhook. Every POST is
answered 200 and appended to LOG as one JSON line: the arrival time (Unix
seconds, float), the path and the body as received (parsed JSON).

Usage: webhook_receiver.py --port PORT --log LOG
"""

import argparse
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    log_path = ""

    def log_message(self, fmt, *args):
        sys.stderr.write("webhook-receiver: " + (fmt % args) + "\n")

    def do_POST(self):  # noqa: N802 (the stdlib's name)
        received = time.time()
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            parsed = json.loads(body)
        except ValueError:
            self.send_response(400)
            self.end_headers()
            return
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(json.dumps({"received": received, "path": self.path, "body": parsed}) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    Handler.log_path = args.log
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    sys.stderr.write(f"webhook-receiver: listening on 127.0.0.1:{args.port}\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
