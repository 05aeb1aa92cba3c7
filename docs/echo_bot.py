"""An echo bot for talkroom: verifies the webhook signature, answers with the text."""

import hashlib
import hmac
import json
import os
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET = os.environ["TALKROOM_BOT_SECRET"].encode()  # printed by `talkroom createbot`


class Echo(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        stamp = self.headers.get("X-Talkroom-Timestamp", "")
        mac = hmac.new(SECRET, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        fresh = stamp.isdigit() and abs(time.time() - int(stamp)) < 300  # no replays
        given = (self.headers["X-Talkroom-Signature"] or "").encode()
        if not (fresh and hmac.compare_digest(f"sha256={mac}".encode(), given)):
            return self.send_error(401, "bad signature")
        out = json.dumps({"text": "echo: " + json.loads(body)["message"]["text"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


HTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8081"))), Echo).serve_forever()
