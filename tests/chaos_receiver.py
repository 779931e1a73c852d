#!/usr/bin/env python3
"""chaos_receiver.py: an HTTPS webhook receiver that misbehaves on purpose,
for the fault-injection suite (tests/integration/test_faults.py).

    python3 tests/chaos_receiver.py --port 8443 --cert srv.pem
        --key srv.key [--seed N]

What it answers depends on the first path segment (each test uses its own
path, e.g. /ok/t1-ab12):

    /ok/...[?delay=S]        204, after S seconds (default 0)
    /chaos/...?p500=F&reset=F&stall=F[&stall_s=S]
                             each request on its own: with probability p500
                             a 500; with probability reset the whole request
                             is read and the connection reset (TCP RST, no
                             answer); with probability stall the request is
                             read, nothing is answered for S seconds (default
                             3, meant to be past the sender's --timeout), and
                             the connection is reset; otherwise 204

Unlike tests/receiver.py it keeps only what the fault tests compare, so that
tens of thousands of requests stay cheap: per request the path, webhook-id,
SHA-256 of the body, what was done, and the arrival time. "What was done" is
the status answered ("204", "500"), "204!" when the 204 could not be written
(the client had gone: not an acknowledgement), "reset", "stall", or
"partial" when the body ended before its Content-Length (the client died
mid-request; such a request is not a delivery).

Control endpoints (JSON):

    GET  /_log?prefix=/ok/t1[&since=N]
             {"total": T, "records": [[path, id, sha256, done, arrived], ...]}
             the records under prefix, oldest first, from the N-th record
             overall (N = a previous answer's total) on
    GET  /_count?prefix=/ok/t1&done=204
             {"count": C}: how many records under prefix have that outcome
    GET  /_tls_errors        {"tls_errors": N}: failed TLS handshakes
    POST /_reset             forget everything
    GET  /_health            {"ok": true}

Stdlib only.
"""

import argparse
import hashlib
import http.server
import json
import random
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse

MAX_BODY = 1024 * 1024


class State:
    """What the receiver has seen, shared by the handler threads."""

    def __init__(self, seed):
        self.lock = threading.Lock()
        self.records = []
        self.counts = {}        # (path, done): how many, for cheap polling
        self.tls_errors = 0
        self.rng = random.Random(seed)

    def reset(self):
        with self.lock:
            self.records = []
            self.counts = {}
            self.tls_errors = 0

    def random(self):
        with self.lock:
            return self.rng.random()

    def add(self, rec):
        with self.lock:
            self.records.append(rec)
            k = (rec[0], rec[3])
            self.counts[k] = self.counts.get(k, 0) + 1

    def redo(self, rec, done):
        """Changes what was done for a recorded request."""
        with self.lock:
            k = (rec[0], rec[3])
            self.counts[k] -= 1
            rec[3] = done
            k = (rec[0], done)
            self.counts[k] = self.counts.get(k, 0) + 1


def _float(q, name, default):
    try:
        return float(q[name][0])
    except (KeyError, ValueError, IndexError):
        return default


def behaviour(path, query, state):
    """("answer", status, delay) or ("reset", None, delay) for a request."""
    parts = path.split("/")
    kind = parts[1] if len(parts) > 1 else ""
    q = urllib.parse.parse_qs(query)
    if kind == "ok":
        return "answer", 204, _float(q, "delay", 0.0)
    if kind == "chaos":
        p500 = _float(q, "p500", 0.0)
        reset = _float(q, "reset", 0.0)
        stall = _float(q, "stall", 0.0)
        x = state.random()
        if x < p500:
            return "answer", 500, 0.0
        if x < p500 + reset:
            return "reset", None, 0.0
        if x < p500 + reset + stall:
            return "reset", None, _float(q, "stall_s", 3.0)
        return "answer", 204, 0.0
    return "answer", 404, 0.0


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dlrhook-chaos-receiver"

    def log_message(self, fmt, *args):
        pass

    def handle(self):
        try:
            self.request.do_handshake()
        except ssl.SSLError:
            with self.server.state.lock:
                self.server.state.tls_errors += 1
            return
        except (ConnectionError, socket.timeout, OSError):
            return
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError, socket.timeout, OSError):
            pass        # the client went away mid-request

    def read_body(self):
        """(body, complete)."""
        n = int(self.headers.get("Content-Length") or 0)
        if n <= 0:
            return b"", True
        body = self.rfile.read(min(n, MAX_BODY))
        return body, len(body) == n

    def reply(self, status, body=b""):
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)
        self.wfile.flush()

    def reset_connection(self):
        """Closes the connection with a TCP RST: no answer, no TLS close."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass
        # The descriptor closes once rfile and wfile are closed too, which
        # the server does right after this handler returns.
        try:
            self.connection.close()
        except OSError:
            pass

    def control(self, method, path, query):
        state = self.server.state
        q = urllib.parse.parse_qs(query)
        prefix = q.get("prefix", [""])[0]
        if path == "/_health":
            return self.reply(200, b'{"ok":true}')
        if path == "/_log" and method == "GET":
            try:
                since = int(q.get("since", ["0"])[0])
            except ValueError:
                since = 0
            with state.lock:
                total = len(state.records)
                recs = [r for r in state.records[since:]
                        if r[0].startswith(prefix)]
            return self.reply(200, json.dumps(
                {"total": total, "records": recs}).encode())
        if path == "/_count" and method == "GET":
            done = q.get("done", ["204"])[0]
            with state.lock:
                n = sum(c for (path, what), c in state.counts.items()
                        if what == done and path.startswith(prefix))
            return self.reply(200, json.dumps({"count": n}).encode())
        if path == "/_tls_errors" and method == "GET":
            return self.reply(200, json.dumps(
                {"tls_errors": state.tls_errors}).encode())
        if path == "/_reset" and method == "POST":
            state.reset()
            return self.reply(204)
        return self.reply(404, b'{"error":"unknown control endpoint"}')

    def do_any(self):
        arrived = time.time()
        split = urllib.parse.urlsplit(self.path)
        path, query = split.path, split.query
        body, complete = self.read_body()
        if path.startswith("/_"):
            return self.control(self.command, path, query)
        state = self.server.state
        rec = [path, self.headers.get("webhook-id"),
               hashlib.sha256(body).hexdigest(), None, arrived]
        if not complete:
            rec[3] = "partial"
            state.add(rec)
            self.close_connection = True
            return
        what, status, delay = behaviour(path, query, state)
        if what == "reset":
            rec[3] = "stall" if delay else "reset"
            state.add(rec)
            if delay:
                time.sleep(delay)
            return self.reset_connection()
        rec[3] = str(status)
        # Recorded before the answer leaves, so whoever sees the client's
        # side of it finds the record here.
        state.add(rec)
        if delay:
            time.sleep(delay)
        try:
            self.reply(status)
        except (ConnectionError, ssl.SSLError, OSError):
            state.redo(rec, str(status) + "!")
            self.close_connection = True

    do_POST = do_GET = do_PUT = do_DELETE = do_any


class Server(http.server.ThreadingHTTPServer):
    """TLS per connection, the handshake in the handler's thread."""

    daemon_threads = True
    request_queue_size = 1024   # a sender opens hundreds of connections

    def __init__(self, addr, ctx, state):
        super().__init__(addr, Handler)
        self.ctx = ctx
        self.state = state

    def get_request(self):
        sock, addr = super().get_request()
        sock.settimeout(30)
        return self.ctx.wrap_socket(sock, server_side=True,
                                    do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address):
        pass            # a client that vanished is part of the game


def main():
    ap = argparse.ArgumentParser(description="misbehaving HTTPS test receiver")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True, help="server certificate (PEM)")
    ap.add_argument("--key", required=True, help="its private key (PEM)")
    ap.add_argument("--seed", type=int, default=None,
                    help="seed of the random choices (default: random)")
    args = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    srv = Server((args.host, args.port), ctx, State(args.seed))
    print("chaos receiver: listening on https://%s:%d" % (args.host, args.port),
          flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
