#!/usr/bin/env python3
"""A webhook receiver for trying Mailroom locally: prints each POST and answers 200.

Usage: scripts/receiver.py [PORT [HOST]]   (default 3000 on 127.0.0.1; for `sam local invoke` on Linux, HOST is
docker0's address, where the containers reach the host as host.docker.internal)
With MAILROOM_WEBHOOK_SECRET=whsec_... set, it also checks the Standard Webhooks signature.
"""
import base64
import hashlib
import hmac
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


def signature_ok(secret, msg_id, timestamp, header, body):
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(part == "v1," + expected for part in header.split())


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        secret = os.environ.get("MAILROOM_WEBHOOK_SECRET")
        check = ""
        if secret:
            ok = signature_ok(secret, self.headers.get("webhook-id", ""), self.headers.get("webhook-timestamp", ""),
                              self.headers.get("webhook-signature", ""), body)
            check = " signature " + ("valid" if ok else "INVALID")
        summary = f"{len(body)} bytes"
        if self.headers.get("Content-Type", "").startswith("application/json"):
            payload = json.loads(body)
            summary = f"to={payload['envelope']['to']} subject={payload['headers'].get('subject', '')!r} " \
                      f"attachments={len(payload['attachments'])}"
            links = [a["url"] for a in payload["attachments"] if "url" in a]
            if links:
                summary += f" links={','.join(links)}"
        print(f"POST {self.path} webhook-id={self.headers.get('webhook-id')}{check} {summary}", flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    print(f"listening on http://{host}:{port}", flush=True)
    HTTPServer((host, port), Handler).serve_forever()
