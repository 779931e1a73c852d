#!/usr/bin/env python3
"""receiver.py: a scriptable HTTPS webhook receiver for the integration tests.

    python3 tests/receiver.py --port 8443 --cert srv.pem --key srv.key [--log F]

Every request is recorded (path, query, headers, raw body, arrival time, the
status answered, and which registered secrets its Standard Webhooks
signature verifies with). What it answers depends on the first path segment,
so each test uses its own path, e.g. /ok/t1:

    /ok/...                  204
    /status/NNN/...          NNN (e.g. /status/500, /status/410)
    /fail/...                500
    /gone/...                410
    /redirect/...            302 to /ok/... (the same rest of the path)
    /slow/...?s=N            sleeps N seconds (default 5), then 204
    /flaky/...?fail=K        500 for the first K requests to this path, then 204
    /ratelimit/...?fail=K&after=N
                             429 with Retry-After: N (default 1) for the first
                             K requests (default 1), then 204

Control endpoints (JSON):

    GET  /_requests[?prefix=/ok/t1]   the recorded requests, oldest first
    GET  /_tls_errors                 how many TLS handshakes failed
    POST /_secrets   {"prefix": "/ok/t1", "secrets": ["whsec_..", ...]}
                     later requests under prefix are checked against these
    POST /_reset                      forget all requests, counters, secrets
    GET  /_health                     {"ok": true}

Stdlib only; also importable (verify_signature) by the tests.
"""

import argparse
import base64
import binascii
import hashlib
import hmac
import http.server
import json
import socket
import ssl
import sys
import threading
import time
import urllib.parse

MAX_BODY = 1024 * 1024


def secret_key(secret):
    """The HMAC key of a whsec_ secret: the base64-decoded part after the prefix."""
    if not secret.startswith("whsec_"):
        raise ValueError("secret does not start with whsec_")
    return base64.b64decode(secret[len("whsec_"):], validate=True)


def sign(secret, msg_id, timestamp, body):
    """The v1 signature of body as the sender must compute it."""
    mac = hmac.new(secret_key(secret),
                   b"%s.%s.%s" % (msg_id.encode(), timestamp.encode(), body),
                   hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def verify_signature(secrets, headers, body):
    """
    Indices of the secrets whose signature appears in the webhook-signature
    header (space-separated "v1,<base64>" entries); [] when none does or a
    header is missing. headers is a dict with lower-case names.
    """
    msg_id = headers.get("webhook-id")
    ts = headers.get("webhook-timestamp")
    sig = headers.get("webhook-signature")
    if msg_id is None or ts is None or sig is None:
        return []
    offered = set(sig.split())
    good = []
    for i, s in enumerate(secrets):
        try:
            want = sign(s, msg_id, ts, body)
        except (ValueError, binascii.Error):
            continue
        if any(hmac.compare_digest(want, o) for o in offered):
            good.append(i)
    return good


class State:
    """What the receiver has seen, shared by the handler threads."""

    def __init__(self, log_path=None):
        self.lock = threading.Lock()
        self.requests = []
        self.counts = {}
        self.secrets = {}
        self.tls_errors = 0
        self.log = open(log_path, "a", encoding="utf-8") if log_path else None

    def reset(self):
        with self.lock:
            self.requests = []
            self.counts = {}
            self.secrets = {}
            self.tls_errors = 0

    def count(self, key):
        """How many requests came to key before this one (0 for the first)."""
        with self.lock:
            n = self.counts.get(key, 0)
            self.counts[key] = n + 1
            return n

    def secrets_for(self, path):
        with self.lock:
            best = ""
            for prefix in self.secrets:
                if path.startswith(prefix) and len(prefix) > len(best):
                    best = prefix
            return list(self.secrets.get(best, [])) if best else None

    def record(self, rec):
        with self.lock:
            self.requests.append(rec)
            if self.log:
                self.log.write(json.dumps(rec) + "\n")
                self.log.flush()


# What /quoted/... answers: quotes, backslashes, braces, commas, NULL.
QUOTED_BODY = 'say "no" \\ {a,b} NULL \\" end\\'


def behaviour(path, query, state):
    """(status, extra headers, delay in seconds) for a request to path."""
    parts = path.split("/")
    kind = parts[1] if len(parts) > 1 else ""
    rest = "/" + "/".join(parts[2:]) if len(parts) > 2 else "/"
    q = urllib.parse.parse_qs(query)

    def qint(name, default):
        try:
            return int(q[name][0])
        except (KeyError, ValueError):
            return default

    if kind == "ok":
        return 204, {}, 0
    if kind == "status" and len(parts) > 2 and parts[2].isdigit():
        return int(parts[2]), {}, 0
    if kind == "fail":
        return 500, {}, 0
    if kind == "quoted":
        # A body that needs escaping in a PostgreSQL array literal.
        return 500, {"X-Body": QUOTED_BODY}, 0
    if kind == "gone":
        return 410, {}, 0
    if kind == "redirect":
        return 302, {"Location": "/ok" + rest}, 0
    if kind == "slow":
        try:
            delay = float(q.get("s", ["5"])[0])
        except ValueError:
            delay = 5.0
        return 204, {}, delay
    if kind == "flaky":
        n = state.count(path + "?" + query)
        return (500 if n < qint("fail", 1) else 204), {}, 0
    if kind == "ratelimit":
        n = state.count(path + "?" + query)
        if n < qint("fail", 1):
            return 429, {"Retry-After": str(qint("after", 1))}, 0
        return 204, {}, 0
    return 404, {}, 0


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dlrhook-test-receiver"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("receiver: %s\n" % (fmt % args))

    def handle(self):
        try:
            self.request.do_handshake()
        except ssl.SSLError:
            with self.server.state.lock:
                self.server.state.tls_errors += 1
            return
        except (ConnectionError, socket.timeout):
            return
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError, socket.timeout):
            pass        # the client went away mid-request

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(n, MAX_BODY)) if n > 0 else b""

    def reply(self, status, body=b"", ctype=None, headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body:
            self.send_header("Content-Type", ctype or "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def control(self, method, path, query, body):
        state = self.server.state
        if path == "/_health":
            return self.reply(200, b'{"ok":true}')
        if path == "/_requests" and method == "GET":
            prefix = urllib.parse.parse_qs(query).get("prefix", [""])[0]
            with state.lock:
                recs = [r for r in state.requests
                        if r["path"].startswith(prefix)]
            return self.reply(200, json.dumps(recs).encode())
        if path == "/_tls_errors" and method == "GET":
            return self.reply(200, json.dumps(
                {"tls_errors": state.tls_errors}).encode())
        if path == "/_secrets" and method == "POST":
            try:
                req = json.loads(body)
                prefix, secrets = req["prefix"], list(req["secrets"])
            except (ValueError, KeyError, TypeError):
                return self.reply(400, b'{"error":"want prefix and secrets"}')
            with state.lock:
                state.secrets[prefix] = secrets
            return self.reply(204)
        if path == "/_reset" and method == "POST":
            state.reset()
            return self.reply(204)
        return self.reply(404, b'{"error":"unknown control endpoint"}')

    def do_any(self):
        arrived = time.time()
        split = urllib.parse.urlsplit(self.path)
        path, query = split.path, split.query
        body = self.read_body()
        if path.startswith("/_"):
            return self.control(self.command, path, query, body)
        state = self.server.state
        headers = {k.lower(): v for k, v in self.headers.items()}
        secrets = state.secrets_for(path)
        status, extra, delay = behaviour(path, query, state)
        rec = {
            "method": self.command,
            "path": path,
            "query": query,
            "headers": headers,
            "body_b64": base64.b64encode(body).decode(),
            "arrived": arrived,
            "client": "%s:%d" % self.client_address[:2],
            "status": status,
            "verified": (verify_signature(secrets, headers, body)
                         if secrets is not None else None),
        }
        state.record(rec)
        if delay:
            time.sleep(delay)
        body = extra.pop("X-Body", "").encode()
        try:
            self.reply(status, body=body, headers=extra)
        except (ConnectionError, ssl.SSLError):
            pass

    do_POST = do_GET = do_PUT = do_DELETE = do_any


class Server(http.server.ThreadingHTTPServer):
    """TLS per connection, the handshake in the handler's thread."""

    daemon_threads = True
    request_queue_size = 128    # a sender opens dozens of connections at once

    def __init__(self, addr, ctx, state, verbose=False):
        super().__init__(addr, Handler)
        self.ctx = ctx
        self.state = state
        self.verbose = verbose

    def get_request(self):
        sock, addr = super().get_request()
        sock.settimeout(60)
        return self.ctx.wrap_socket(sock, server_side=True,
                                    do_handshake_on_connect=False), addr


def make_server(host, port, cert, key, log_path=None, verbose=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return Server((host, port), ctx, State(log_path), verbose)


def main():
    ap = argparse.ArgumentParser(description="HTTPS test receiver for dlrhook")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True, help="server certificate (PEM)")
    ap.add_argument("--key", required=True, help="its private key (PEM)")
    ap.add_argument("--log", help="also append each request to this JSON-lines file")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    srv = make_server(args.host, args.port, args.cert, args.key, args.log,
                      args.verbose)
    print("receiver: listening on https://%s:%d" % (args.host, args.port),
          flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
