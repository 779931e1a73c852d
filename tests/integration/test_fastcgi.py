#!/usr/bin/env python3
"""test_fastcgi: dlrhook.fcgi spoken to in FastCGI, as a web server does.

Usage: python3 tests/integration/test_fastcgi.py [-k substring] [--list] [name...]

Starts dlrhook.fcgi the way mod_fcgid and lighttpd do (a listening socket
on its standard input) and plays the web server's part byte for byte, to
pin what the HTTP suites cannot see: how the program ends a connection.

  - Once the request's stdin has been read to its end, the program closes
    the connection at once. libfcgi's default close is a lingering one
    (shutdown, then wait up to 2 s for the web server to close first), and
    every request then waited for the web server before its process could
    accept the next (docs/BENCHMARKS.md, finding 20). Told apart without
    timing: after a lingering shutdown the program's end is still open and
    a write to it succeeds; after a close it fails with EPIPE.
  - A large body is read to its end before the answer and the close, even
    when the answer does not need it (no key: 401), so that the immediate
    close never leaves unread input behind: over TCP, unread input makes
    the kernel reset the connection, which can destroy the response before
    the web server reads it.
  - After a read error (a malformed record) the program keeps libfcgi's
    lingering close: it cannot know that nothing is left unread.

Environment: DLRHOOK_FCGI, the program. Every request here is answered
before any query, so no database is needed. Prints one line per test and
"N passed, N failed"; exits non-zero on failure.
"""

import errno
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from dlrtest import check, fail, main_of, plain_suite, run_plain  # noqa: E402

BEGIN_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT, STDERR = 1, 3, 4, 5, 6, 7
RESPONDER = 1
REQUEST_ID = 1
IO_TIMEOUT = 10.0
BODY_MAX = 64 * 1024


def record(rtype, content=b""):
    """One FastCGI record, padded to a multiple of 8 bytes."""
    pad = -len(content) % 8
    return (struct.pack(">BBHHBx", 1, rtype, REQUEST_ID, len(content), pad)
            + content + b"\0" * pad)


def stream(rtype, data, chunk=65535):
    """data as records of at most chunk bytes, then the empty one."""
    out = [record(rtype, data[i:i + chunk])
           for i in range(0, len(data), chunk)]
    return b"".join(out) + record(rtype)


def nv_length(n):
    return struct.pack(">B", n) if n < 128 else struct.pack(">I", n | 1 << 31)


def params(env):
    return b"".join(nv_length(len(k)) + nv_length(len(v)) + k + v
                    for k, v in ((k.encode(), v.encode())
                                 for k, v in env.items()))


def request_head(method, path, headers=None, body=b""):
    """BEGIN_REQUEST and the PARAMS stream of a request for body."""
    env = {"REQUEST_METHOD": method, "SCRIPT_NAME": "/webhooks",
           "PATH_INFO": path[len("/webhooks"):], "REQUEST_URI": path,
           "QUERY_STRING": "",
           "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
           "CONTENT_LENGTH": str(len(body))}
    if body:
        env["CONTENT_TYPE"] = "application/json"
    env.update(headers or {})
    begin = struct.pack(">HB5x", RESPONDER, 0)   # flags 0: no keep-conn
    return record(BEGIN_REQUEST, begin) + stream(PARAMS, params(env))


def request_bytes(method, path, headers=None, body=b""):
    """The records a web server sends for one request, in order."""
    return request_head(method, path, headers, body) + stream(STDIN, body)


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        got = sock.recv(n - len(buf))
        if not got:
            fail("the connection ended inside a record (%d of %d bytes)"
                 % (len(buf), n))
        buf += got
    return buf


def read_response(sock):
    """(status, headers, body) from the records up to END_REQUEST."""
    out = b""
    while True:
        version, rtype, rid, clen, pad = struct.unpack(
            ">BBHHBx", read_exact(sock, 8))
        content = read_exact(sock, clen + pad)[:clen]
        check(version == 1 and rid == REQUEST_ID,
              "a record of version %d for request %d" % (version, rid))
        if rtype == STDOUT:
            out += content
        elif rtype == END_REQUEST:
            app_status, proto = struct.unpack(">IB3x", content)
            check(proto == 0, "END_REQUEST protocol status %d" % proto)
            break
        elif rtype != STDERR:
            fail("unexpected record type %d" % rtype)
    head, _, body = out.partition(b"\r\n\r\n")
    headers = dict(line.split(": ", 1)
                   for line in head.decode().split("\r\n"))
    return int(headers.get("Status", "200").split()[0]), headers, body


class App:
    """dlrhook.fcgi on a listening socket of the given family."""

    def __init__(self, family):
        self.family = family
        self.dir = tempfile.mkdtemp(prefix="dlrfcgi.")
        lsock = socket.socket(family, socket.SOCK_STREAM)
        if family == socket.AF_UNIX:
            self.addr = os.path.join(self.dir, "app.sock")
        else:
            self.addr = ("127.0.0.1", 0)
        lsock.bind(self.addr)
        self.addr = lsock.getsockname()
        lsock.listen(16)
        env = dict(os.environ)
        env.pop("DLRHOOK_DATABASE", None)
        self.proc = subprocess.Popen(
            [os.environ["DLRHOOK_FCGI"]], stdin=lsock.fileno(),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
            close_fds=True)
        lsock.close()

    def connect(self):
        s = socket.socket(self.family, socket.SOCK_STREAM)
        s.settimeout(IO_TIMEOUT)
        s.connect(self.addr)
        return s

    def stop(self):
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)
        return err.decode(errors="replace")


def exchange(app, raw, send_chunk=None):
    """Sends raw, reads the response and the end of the connection."""
    s = app.connect()
    try:
        try:
            for i in range(0, len(raw), send_chunk or len(raw)):
                s.sendall(raw[i:i + (send_chunk or len(raw))])
        except (BrokenPipeError, ConnectionResetError) as e:
            fail("the program closed the connection after %d of the "
                 "request's %d bytes (%s)" % (i, len(raw), e))
        status, headers, body = read_response(s)
        try:
            rest = s.recv(1)
        except ConnectionResetError:
            fail("the connection was reset after a %d response; the "
                 "program closed it with input unread" % status)
        check(rest == b"", "%r after END_REQUEST, not the end of the "
              "connection" % rest)
        return status, headers, body, s
    except BaseException:
        s.close()
        raise


def closed_not_half_closed(s):
    """True when the program's end is gone, False when it still reads."""
    try:
        s.send(b"\0" * 8)
    except (BrokenPipeError, ConnectionResetError):
        return True
    except OSError as e:
        if e.errno in (errno.EPIPE, errno.ECONNRESET):
            return True
        raise
    return False


TESTS, test = plain_suite()


@test
def a_finished_request_closes_its_connection_at_once():
    app = App(socket.AF_UNIX)
    try:
        for i in range(3):
            status, headers, body, s = exchange(app, request_bytes(
                "GET", "/webhooks/delivery-status"))
            with s:
                check(status == 401, "request %d: %d, not 401" % (i, status))
                check(json.loads(body)["status"] == 401,
                      "request %d: body %r" % (i, body))
                check(closed_not_half_closed(s),
                      "request %d: after its response the program's end "
                      "of the connection is still open (a lingering "
                      "close that waits for the web server)" % i)
    finally:
        err = app.stop()
    check("error" not in err.lower(), "the program logged: %s" % err)


def large_body(family):
    app = App(family)
    body = b"x" * (16 * BODY_MAX)
    try:
        # Sent in pieces, as a web server streams a request body, with no
        # key: the answer (401) is decided before the body is looked at,
        # and the program must still read all of it before it closes.
        status, headers, rbody, s = exchange(app, request_bytes(
            "PUT", "/webhooks/delivery-status", body=body), send_chunk=8192)
        with s:
            check(status == 401, "%d, not 401" % status)
            check(json.loads(rbody)["status"] == 401, "body %r" % rbody)
            # Over TCP a write to a closed end succeeds until the reset
            # comes back; the Unix socket tells at once.
            check(family != socket.AF_UNIX or closed_not_half_closed(s),
                  "the program's end of the connection is still open")
        # The program is still there and answers the next request.
        status, _, _, s = exchange(app, request_bytes(
            "GET", "/webhooks/delivery-status"))
        s.close()
        check(status == 401, "the next request got %d, not 401" % status)
    finally:
        err = app.stop()
    check("error" not in err.lower(), "the program logged: %s" % err)


@test
def a_large_body_is_read_to_its_end_before_the_close_over_tcp():
    large_body(socket.AF_INET)


@test
def a_large_body_is_read_to_its_end_before_the_close_over_unix():
    large_body(socket.AF_UNIX)


@test
def a_read_error_keeps_the_lingering_close():
    # A body whose second record is not FastCGI (version 2): reading it
    # fails, so input may be left unread, and the program must keep
    # libfcgi's lingering close, which reads and drops it before closing,
    # not close at once. Told apart as in the first test: after the
    # lingering shutdown the program's end still takes a write.
    app = App(socket.AF_UNIX)
    body = b"x" * 3 * 8192
    bad = bytearray(record(STDIN, body[8192:2 * 8192]))
    bad[0] = 2
    try:
        s = app.connect()
        with s:
            s.sendall(request_head("PUT", "/webhooks/delivery-status",
                                   body=body)
                      + record(STDIN, body[:8192]) + bytes(bad))
            status, _, rbody = read_response(s)
            check(status == 401, "%d, not 401" % status)
            check(json.loads(rbody)["status"] == 401, "body %r" % rbody)
            check(not closed_not_half_closed(s),
                  "after a read error the program closed the connection "
                  "at once, with input possibly unread")
    finally:
        app.stop()


def precheck():
    prog = os.environ.get("DLRHOOK_FCGI", "")
    if not os.access(prog, os.X_OK):
        return "DLRHOOK_FCGI is not an executable program: %r" % prog
    return None


def main(argv):
    return run_plain(argv, TESTS, "# dlrhook FastCGI tests (%s)"
                     % os.environ.get("DLRHOOK_FCGI", ""), precheck)


if __name__ == "__main__":
    main_of(main)
