#!/usr/bin/env python3
"""test_badinput: hostile and malformed HTTP requests, byte for byte.

Usage: python3 tests/integration/test_badinput.py [-k substring] [--list] [name...]

A table of raw requests, each sent over its own TCP connection exactly as
written (duplicated headers, odd methods, bare CR or LF, broken framing),
each with the exact status it must get. No row may get a 500.

Each row says who answers it:
  P(status)  the program: for errors an RFC 9457 problem (application/
             problem+json, "status" equal to the HTTP status, a non-empty
             detail without internals), Cache-Control: no-store, and for 405
             the route's Allow header;
  S(status)  the web server itself, before the program sees the request
             (a malformed request line or header, a path outside the
             mount): only the status is checked; the body is the server's
             own (HTML), which the contract does not cover;
  H09(status) Apache's HTTP/0.9 answer: no status line, the program's
             problem body alone.
Where Apache and lighttpd differ, a row gives both ({"apache": ...,
"lighttpd": ...}); DLRHOOK_SERVER_NAME picks one (any other name accepts
either).

Environment (as test_api.py): DLRHOOK_URL (base), DLRHOOK_SERVER_NAME
(apache or lighttpd), PGHOST/PGPORT/PGDATABASE/PGUSER (superuser psql, to
make accounts), DLRHOOK_ALLOW_PRIVATE=1 when the server accepts private
callback URLs (then those rows expect success).

Decisions recorded by rows (see docs/SECURITY.md):
  - duplicate JSON keys: json-c keeps the last value, and so does the API
    ("callbackUrl" twice gives 201 with the second URL; the first is never
    looked at, even when it is invalid);
  - a duplicated X-API-Key header reaches the program joined with ", " and
    is therefore never a key: 401, even when both copies are the same key;
  - a JSON \\ud800 (lone surrogate) escape becomes U+FFFD (json-c);
  - "HTTPS://" is accepted and stored as "https://".
"""

import json
import os
import re
import socket
import sys
import time
import urllib.parse

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from dlrtest import (BODY_MAX, CONFIG, RESOURCE, ROTATE, SECRET, Api, Db,  # noqa: E402
                     Failure, Response, check, expect_problem, expect_webhook,
                     fail, run, sql_literal, test)

api = Api(CONFIG)
db = Db()

SERVER = CONFIG.server
PRIVATE_OK = CONFIG.allow_private
TIMEOUT = 8.0
HOOK = "https://example.com/badinput"
ALLOW = {RESOURCE: "GET, POST, PUT, DELETE", SECRET: "GET", ROTATE: "POST"}


# --- expectations ------------------------------------------------------------

class P:
    """The program answers with this status."""

    def __init__(self, status, check=None):
        self.status = status
        self.check = check      # extra check of a 2xx: fn(obj, row)

    def __repr__(self):
        return "P(%d)" % self.status


class S:
    """The web server answers with this status itself."""

    def __init__(self, status):
        self.status = status

    def __repr__(self):
        return "S(%d)" % self.status


class H09:
    """An HTTP/0.9 answer: the program's problem body, no status line."""

    def __init__(self, status):
        self.status = status

    def __repr__(self):
        return "H09(%d)" % self.status


def priv(ok_status):
    """A private/loopback callbackUrl: 400, or ok_status when allowed."""
    return P(ok_status, url_unchanged) if PRIVATE_OK else P(400)


# --- the table ---------------------------------------------------------------

class Row:
    """
    One raw request. key: None (no X-API-Key), "fresh" (a valid key of an
    account without a webhook), "hooked" (a valid key of an account with
    one), or bytes sent as the header value. Each row with a valid key gets
    an account of its own. raw, when given, is fn(target_prefix, key) ->
    the whole request, for what the fields cannot say.
    """

    def __init__(self, name, expect, method=b"GET", path=RESOURCE, key=None,
                 headers=(), body=None, ctype=None, raw=None, query=b""):
        self.name = name
        self.expect = expect
        self.method = method
        self.path = path
        self.key = key
        self.headers = list(headers)
        self.body = body
        self.ctype = ctype
        self.raw = raw
        self.query = query
        self.account = None     # set when the pool is made

    def expectation(self):
        e = self.expect
        if isinstance(e, dict):
            if SERVER in e:
                return [e[SERVER]]
            return list(e.values())
        return [e]

    def build(self):
        prefix = CONFIG.base_path.encode()
        key = self.account.key.encode() if self.account else self.key
        if self.raw is not None:
            return self.raw(prefix, key)
        target = prefix + self.path.encode() + self.query
        out = [b"%s %s HTTP/1.1" % (self.method, target),
               b"Host: %s:%d" % (CONFIG.host.encode(), CONFIG.port)]
        if key is not None:
            out.append(b"X-API-Key: " + key)
        if self.ctype is not None:
            out.append(b"Content-Type: " + self.ctype)
        for k, v in self.headers:
            out.append(k + b": " + v.replace(b"{KEY}", key or b""))
        if self.body is not None:
            out.append(b"Content-Length: %d" % len(self.body))
        elif self.method in (b"POST", b"PUT", b"PATCH", b"DELETE",
                             b"PROPFIND"):
            out.append(b"Content-Length: 0")
        out.append(b"Connection: close")
        return b"\r\n".join(out) + b"\r\n\r\n" + (self.body or b"")


ROWS = []


def row(*a, **kw):
    ROWS.append(Row(*a, **kw))


def jbody(url):
    return json.dumps({"callbackUrl": url}).encode()


def url_row(name, url, expect, raw_json=None):
    """A POST of {"callbackUrl": url} by an account without a webhook."""
    body = raw_json if raw_json is not None else jbody(url)
    row(name, expect, b"POST", key="fresh", body=body,
        ctype=b"application/json")


def put_row(name, body, expect, ctype=b"application/json", **kw):
    """A PUT by an account that has a webhook: 200 when the body is good."""
    row(name, expect, b"PUT", key="hooked", body=body, ctype=ctype, **kw)


def url_is(want):
    def chk(obj, r):
        check(obj.get("callbackUrl") == want, "callbackUrl %r, want %r"
              % (obj.get("callbackUrl"), want))
    return chk


def url_unchanged(obj, r):
    """The callbackUrl is the one the row sent."""
    sent = json.loads(r.body.decode("utf-8"))["callbackUrl"]
    url_is(sent)(obj, r)


GOOD = jbody(HOOK)


def padded(size, url=HOOK):
    core = jbody(url)
    return b"{" + b" " * (size - len(core)) + core[1:]


# 1. X-API-Key ----------------------------------------------------------------

row("key missing", P(401))
row("key empty", P(401), key=b"")
row("key whitespace only", P(401), key=b"    ")
row("key duplicated, two wrong values", P(401),
    headers=[(b"X-API-Key", b"dlr_aaaa"), (b"X-API-Key", b"dlr_bbbb")])
row("key duplicated, the same valid key twice", P(401),
    key="fresh", headers=[(b"X-API-Key", b"{KEY}")])
row("key duplicated, valid then wrong", P(401), key="fresh",
    headers=[(b"X-API-Key", b"dlr_wrong")])
row("key 257 bytes", P(401), key=b"k" * 257)
row("key 4 KiB", P(401), key=b"k" * 4096)
row("key 8 KiB (over the servers' header field limit)",
    {"apache": S(400), "lighttpd": S(431)}, key=b"k" * 8192)
row("key with Latin-1 and invalid UTF-8 bytes", P(401), key=b"\xe9\xff\xfe")
row("key with SQL in it", P(401), key=b"' OR 1=1; --")
row("key with a bare CR", S(400), key=b"dlr_a\rb")
row("key with a NUL byte", S(400), key=b"dlr_a\x00b")
row("key folded over two lines (obs-fold)", P(401),
    headers=[(b"X-API-Key", b"dlr_a\r\n b")])
row("key header with space before the colon", S(400),
    raw=lambda p, k: b"GET %s%s HTTP/1.1\r\nHost: x\r\nX-API-Key : dlr_x"
    b"\r\nConnection: close\r\n\r\n" % (p, RESOURCE.encode()))
row("valid key with surrounding whitespace (OWS is trimmed)", P(404),
    key="fresh", raw=lambda p, k: b"GET %s%s HTTP/1.1\r\nHost: x\r\n"
    b"X-API-Key: \t %s \t\r\nConnection: close\r\n\r\n"
    % (p, RESOURCE.encode(), k))
row("valid key, header name in lower case", P(404), key="fresh",
    raw=lambda p, k: b"GET %s%s HTTP/1.1\r\nHost: x\r\nx-api-key: %s\r\n"
    b"Connection: close\r\n\r\n" % (p, RESOURCE.encode(), k))
# CGI maps both "X-API-Key" and "X_API_KEY" to HTTP_X_API_KEY. Apache drops
# header names with underscores; lighttpd passes them (docs/SECURITY.md).
row("valid key in an X_API_KEY header (underscores)",
    {"apache": P(401), "lighttpd": P(404)}, key="fresh",
    raw=lambda p, k: b"GET %s%s HTTP/1.1\r\nHost: x\r\nX_API_KEY: %s\r\n"
    b"Connection: close\r\n\r\n" % (p, RESOURCE.encode(), k))
row("valid key as Authorization: Bearer", P(401), key="fresh",
    raw=lambda p, k: b"GET %s%s HTTP/1.1\r\nHost: x\r\nAuthorization: "
    b"Bearer %s\r\nConnection: close\r\n\r\n" % (p, RESOURCE.encode(), k))
row("valid key in the query string", P(401), key="fresh",
    raw=lambda p, k: b"GET %s%s?X-API-Key=%s&api_key=%s HTTP/1.1\r\n"
    b"Host: x\r\nConnection: close\r\n\r\n" % (p, RESOURCE.encode(), k, k))

# 2. every method on each route (no key: allowed methods say 401) -----------

METHODS = [b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS",
           b"TRACE", b"CONNECT", b"PROPFIND", b"get"]
for path in (RESOURCE, SECRET, ROTATE):
    allowed = ALLOW[path].encode().split(b", ")
    for m in METHODS:
        if m in allowed:
            exp = P(401)
        elif m == b"CONNECT":
            exp = {"apache": S(400), "lighttpd": P(405)}
        elif m == b"get":
            # Methods are case-sensitive: "get" is not GET.
            exp = {"apache": P(405), "lighttpd": S(501)}
        else:
            exp = P(405)
        row("%s %s" % (m.decode(), path), exp, m, path)

# 3. paths: unknown, traversal, encodings, queries ----------------------------

row("unknown path", P(404), path="/webhooks/nope")
row("the mount itself", P(404), path="/webhooks")
row("the mount with a slash", P(404), path="/webhooks/")
row("resource with a trailing slash", P(404), path=RESOURCE + "/")
row("resource in another case", P(404), path="/webhooks/Delivery-Status")
row("traversal out of the resource (/../x)", P(404), path=RESOURCE + "/../x")
row("traversal encoded (%2e%2e)", P(404), path=RESOURCE + "/%2e%2e/x")
row("traversal back into the resource", P(401),
    path="/webhooks/x/../delivery-status")
row("dot segment (/.)", P(404), path=RESOURCE + "/.")
row("traversal out of the mount",
    {"apache": S(400), "lighttpd": S(404)}, path="/webhooks/../../etc/passwd")
row("traversal out of the mount, encoded",
    {"apache": S(400), "lighttpd": S(404)},
    path="/webhooks/%2e%2e/%2e%2e/etc/passwd")
row("traversal with encoded slashes (..%2f)",
    {"apache": P(404), "lighttpd": S(404)},
    path="/webhooks/..%2f..%2fetc%2fpasswd")
row("double slash before the mount", P(401), path="/" + RESOURCE)
row("double slash inside the mount", P(401), path="/webhooks//delivery-status")
# Apache keeps %2F encoded (AllowEncodedSlashes NoDecode): no route has it.
# lighttpd decodes it, so the path is the secret route (still keyed).
row("encoded slash to the secret route",
    {"apache": P(404), "lighttpd": P(401)}, path=RESOURCE + "%2Fsecret")
row("encoded slash to nowhere", P(404), path=RESOURCE + "%2Fx")
row("percent-encoded unreserved character", P(401),
    path="/webhooks/delivery%2Dstatus")
row("path parameter (;x=1)", P(404), path=RESOURCE + ";x=1")
row("encoded NUL in the path", {"apache": S(404), "lighttpd": S(400)},
    path=RESOURCE + "%00")
row("backslash for slash (outside the mount)", S(404),
    path="/webhooks\\delivery-status")
row("fragment in the request target",
    {"apache": S(400), "lighttpd": P(401)}, path=RESOURCE + "#x")
row("query string on the resource", P(401), query=b"?x=1&y=2")
row("encoded NUL in the query", {"apache": P(401), "lighttpd": S(400)},
    query=b"?x=%00")
row("query string with traversal", P(401), path=SECRET,
    query=b"?../../rotate")
row("query string keeps the route (valid key)", P(200), key="hooked",
    query=b"?callbackUrl=https://evil.example/")
row("9 KiB query string", {"apache": S(414), "lighttpd": S(431)},
    query=b"?" + b"a" * 9000)
row("absolute-form request target", P(401),
    raw=lambda p, k: b"GET http://x%s%s HTTP/1.1\r\nHost: x\r\n"
    b"Connection: close\r\n\r\n" % (p, RESOURCE.encode()))
row("the program's file name", S(404), path="/webhooks.fcgi")
row("the error documents directly", {"apache": S(403), "lighttpd": S(404)},
    path="/.dlrhook-errors/413.html")

# 4. request line and framing (mostly the web server's) ----------------------

row("HTTP/0.9 request line", {"apache": H09(401), "lighttpd": S(400)},
    raw=lambda p, k: b"GET %s%s\r\n\r\n" % (p, RESOURCE.encode()))
row("bare LF line endings", S(400),
    raw=lambda p, k: b"GET %s%s HTTP/1.1\nHost: x\nConnection: close\n\n"
    % (p, RESOURCE.encode()))
row("space inside the path", {"apache": S(400), "lighttpd": P(404)},
    raw=lambda p, k: b"GET %s/webhooks/delivery status HTTP/1.1\r\n"
    b"Host: x\r\nConnection: close\r\n\r\n" % p)
row("HTTP/1.1 without Host", S(400),
    raw=lambda p, k: b"GET %s%s HTTP/1.1\r\nConnection: close\r\n\r\n"
    % (p, RESOURCE.encode()))
row("HTTP/1.0 without Host", P(401),
    raw=lambda p, k: b"GET %s%s HTTP/1.0\r\n\r\n" % (p, RESOURCE.encode()))
row("HTTP/1.2", {"apache": P(401), "lighttpd": S(505)},
    raw=lambda p, k: b"GET %s%s HTTP/1.2\r\nHost: x\r\nConnection: close"
    b"\r\n\r\n" % (p, RESOURCE.encode()))
row("negative Content-Length", S(400), b"PUT", key="hooked",
    ctype=b"application/json",
    raw=lambda p, k: b"PUT %s%s HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\n"
    b"Content-Type: application/json\r\nContent-Length: -1\r\n"
    b"Connection: close\r\n\r\n%s" % (p, RESOURCE.encode(), k, GOOD))
row("Content-Length twice, same value", S(400), b"PUT", key="hooked",
    body=GOOD, ctype=b"application/json",
    headers=[(b"Content-Length", b"%d" % len(GOOD))])
row("Content-Length twice, different values", S(400), b"PUT", key="hooked",
    body=GOOD, ctype=b"application/json", headers=[(b"Content-Length", b"3")])
row("Content-Length shorter than the body", P(400), b"PUT", key="hooked",
    raw=lambda p, k: b"PUT %s%s HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\n"
    b"Content-Type: application/json\r\nContent-Length: 10\r\n"
    b"Connection: close\r\n\r\n%s" % (p, RESOURCE.encode(), k, GOOD))
# Request smuggling shape: Apache goes by Transfer-Encoding (RFC 9112),
# lighttpd refuses the pair.
row("Transfer-Encoding and Content-Length together",
    {"apache": P(200, url_is(HOOK)), "lighttpd": S(400)}, b"PUT",
    key="hooked",
    raw=lambda p, k: b"PUT %s%s HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\n"
    b"Content-Type: application/json\r\nContent-Length: 5\r\n"
    b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    b"%x\r\n%s\r\n0\r\n\r\n" % (p, RESOURCE.encode(), k, len(GOOD), GOOD))
row("chunked body", P(200, url_is(HOOK)), b"PUT", key="hooked",
    raw=lambda p, k: b"PUT %s%s HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\n"
    b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
    b"Connection: close\r\n\r\n5\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n"
    % (p, RESOURCE.encode(), k, GOOD[:5], len(GOOD) - 5, GOOD[5:]))
row("unknown Transfer-Encoding", {"apache": S(400), "lighttpd": S(501)},
    b"PUT", key="hooked", body=GOOD, ctype=b"application/json",
    headers=[(b"Transfer-Encoding", b"gzip")])
row("Expect: 100-continue", P(200, url_is(HOOK)), b"PUT", key="hooked",
    body=GOOD, ctype=b"application/json",
    headers=[(b"Expect", b"100-continue")])
row("Expect: something unknown",
    {"apache": S(417), "lighttpd": P(200, url_is(HOOK))}, b"PUT",
    key="hooked", body=GOOD, ctype=b"application/json",
    headers=[(b"Expect", b"something")])

# 5. Content-Type (PUT of a good body by an account with a webhook) ----------

CT_OK = P(200, url_is(HOOK))
for label, ct, exp in [
        ("missing", None, P(415)),
        ("empty", b"", P(415)),
        ("text/plain", b"text/plain", P(415)),
        ("application/json; charset=utf-8", b"application/json; charset=utf-8",
         CT_OK),
        ("application/json;charset=UTF-8", b"application/json;charset=UTF-8",
         CT_OK),
        # Parameters are ignored; the body must be UTF-8 JSON all the same.
        ("charset=iso-8859-1", b"application/json; charset=iso-8859-1", CT_OK),
        ("odd parameters", b'application/json; foo=bar; q="x;y"', CT_OK),
        ("trailing semicolon", b"application/json;", CT_OK),
        ("space before the semicolon", b"application/json ; charset=utf-8",
         CT_OK),
        ("tab before the semicolon", b"application/json\t;charset=utf-8",
         CT_OK),
        ("surrounding whitespace", b"   application/json   ", CT_OK),
        ("upper case", b"APPLICATION/JSON", CT_OK),
        ("mixed case with parameter", b"Application/Json; Charset=UTF-8",
         CT_OK),
        ("space inside the type", b"application/ json", P(415)),
        ("multipart/form-data", b"multipart/form-data; boundary=x", P(415)),
        ("form-urlencoded", b"application/x-www-form-urlencoded", P(415)),
        ("application/json-patch+json", b"application/json-patch+json",
         P(415)),
        ("application/merge-patch+json", b"application/merge-patch+json",
         P(415)),
        ("application/problem+json", b"application/problem+json", P(415)),
        ("application/jsonx", b"application/jsonx", P(415)),
        ("text/json", b"text/json", P(415)),
        ("a list of two types", b"application/json, text/plain", P(415))]:
    put_row("Content-Type %s" % label, GOOD, exp, ctype=ct)
# Duplicated Content-Type: Apache joins the values ("a, b": not JSON);
# lighttpd refuses differing ones and merges identical ones.
put_row("Content-Type twice: text/plain, application/json", GOOD,
        {"apache": P(415), "lighttpd": S(400)}, ctype=b"text/plain",
        headers=[(b"Content-Type", b"application/json")])
put_row("Content-Type twice: application/json, application/json", GOOD,
        {"apache": P(415), "lighttpd": P(200, url_is(HOOK))},
        headers=[(b"Content-Type", b"application/json")])
put_row("multipart body with a callbackUrl part",
        b'--x\r\nContent-Disposition: form-data; name="callbackUrl"\r\n\r\n'
        + HOOK.encode() + b"\r\n--x--\r\n", P(415),
        ctype=b"multipart/form-data; boundary=x")

# 6. bodies ------------------------------------------------------------------

for label, body, exp in [
        ("empty body", b"", P(400)),
        ("whitespace body", b" \r\n\t ", P(400)),
        ("byte order mark", b"\xef\xbb\xbf" + GOOD, P(400)),
        ("UTF-16LE body", GOOD.decode().encode("utf-16-le"), P(400)),
        ("invalid UTF-8 byte", jbody("X")[:-2] + b'\xff"}', P(400)),
        ("overlong UTF-8 (C0 AF)",
         b'{"callbackUrl":"https://example.com/\xc0\xaf"}', P(400)),
        ("overlong UTF-8 (E0 80 AF)",
         b'{"callbackUrl":"https://example.com/\xe0\x80\xaf"}', P(400)),
        ("UTF-8 encoded surrogate (ED A0 80)",
         b'{"callbackUrl":"https://example.com/\xed\xa0\x80"}', P(400)),
        ("UTF-8 past U+10FFFF (F4 90 80 80)",
         b'{"callbackUrl":"https://example.com/\xf4\x90\x80\x80"}', P(400)),
        ("lone surrogate escape (becomes U+FFFD)",
         b'{"callbackUrl":"https://example.com/\\ud800"}',
         P(200, url_is("https://example.com/\ufffd"))),
        ("10000 nested arrays", b"[" * 10000 + b"]" * 10000, P(400)),
        ("10000 nested objects", b'{"a":' * 10000 + b"1" + b"}" * 10000,
         P(400)),
        ("top-level array", b'["%s"]' % HOOK.encode(), P(400)),
        ("top-level string", b'"%s"' % HOOK.encode(), P(400)),
        ("top-level number", b"42", P(400)),
        ("top-level null", b"null", P(400)),
        ("top-level true", b"true", P(400)),
        ("callbackUrl is a number", b'{"callbackUrl":1e3}', P(400)),
        ("callbackUrl is null", b'{"callbackUrl":null}', P(400)),
        ("callbackUrl is false", b'{"callbackUrl":false}', P(400)),
        ("callbackUrl is an array", b'{"callbackUrl":["%s"]}' % HOOK.encode(),
         P(400)),
        ("callbackUrl is an object", b'{"callbackUrl":{"u":"%s"}}'
         % HOOK.encode(), P(400)),
        ("callbackUrl is NaN", b'{"callbackUrl":NaN}', P(400)),
        ("callbackUrl is Infinity", b'{"callbackUrl":Infinity}', P(400)),
        ("empty object", b"{}", P(400)),
        ("key in another case", b'{"callbackURL":"%s"}' % HOOK.encode(),
         P(400)),
        ("an unknown field besides", b'{"callbackUrl":"%s","secret":"x"}'
         % HOOK.encode(), P(400)),
        ("key spelled with an escape", b'{"callback\\u0055rl":"%s"}'
         % HOOK.encode(), P(200, url_is(HOOK))),
        ("duplicate key: first invalid, last valid",
         b'{"callbackUrl":"http://x/","callbackUrl":"%s"}' % HOOK.encode(),
         P(200, url_is(HOOK))),
        ("duplicate key: first valid, last invalid",
         b'{"callbackUrl":"%s","callbackUrl":42}' % HOOK.encode(), P(400)),
        ("trailing garbage", GOOD + b" x", P(400)),
        ("a second object", GOOD + b"{}", P(400)),
        ("trailing NUL", GOOD + b"\x00", P(400)),
        ("trailing whitespace", GOOD + b" \r\n", P(200, url_is(HOOK))),
        ("single quotes", b"{'callbackUrl':'%s'}" % HOOK.encode(), P(400)),
        ("a comment", b'{/*x*/"callbackUrl":"%s"}' % HOOK.encode(), P(400)),
        ("a trailing comma", b'{"callbackUrl":"%s",}' % HOOK.encode(),
         P(400)),
        ("truncated", GOOD[:-3], P(400)),
        ("exactly 65536 bytes", padded(BODY_MAX), P(200, url_is(HOOK))),
        ("65537 bytes", padded(BODY_MAX + 1), P(413))]:
    put_row("body: " + label, body, exp)
row("duplicate key: POST gives 201 with the last value",
    P(201, url_is("https://example.com/second")), b"POST", key="fresh",
    ctype=b"application/json",
    body=b'{"callbackUrl":"https://example.com/first",'
    b'"callbackUrl":"https://example.com/second"}')
row("POST of exactly 65536 bytes", P(201, url_is(HOOK)), b"POST", key="fresh",
    ctype=b"application/json", body=padded(BODY_MAX))


def post_via(target):
    """A good POST whose request target is target % (prefix, resource)."""
    return lambda p, k: (b"POST " + target % (p, RESOURCE.encode()) +
                         b" HTTP/1.1\r\nHost: x\r\nX-API-Key: " + k +
                         b"\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n"
                         % len(GOOD) + GOOD)


# Location is built from the path the client sent: it must still name this
# host's resource (judge() checks every 201's Location).
row("POST through //host/.. keeps Location on this host", P(201),
    b"POST", key="fresh", raw=post_via(b"//evil.example/..%s%s"))
row("POST through /(backslash)host/.. keeps Location on this host",
    P(201), b"POST", key="fresh",
    raw=post_via(b"/\\evil.example/..%s%s"))
row("POST through a double slash keeps Location on this host", P(201),
    b"POST", key="fresh", raw=post_via(b"/%s/%s"))
row("POST through dot segments keeps Location on this host", P(201),
    b"POST", key="fresh", raw=post_via(b"%s/x/..%s"))
row("65537 bytes with a wrong key is 401 first", P(401), b"PUT",
    key=b"dlr_wrong", ctype=b"application/json", body=padded(BODY_MAX + 1))
row("65537 bytes of text/plain is 415 first", P(415), b"PUT", key="hooked",
    ctype=b"text/plain", body=padded(BODY_MAX + 1))
row("bad JSON with no key is 401 first", P(401), b"POST",
    ctype=b"application/json", body=b"[" * 10000)

# 7. callbackUrl (POST by an account without a webhook) -----------------------

C201 = P(201, url_unchanged)
for label, url, exp in [
        ("IDN host in UTF-8", "https://bücher.example/dlr", C201),
        ("IDN host in punycode", "https://xn--bcher-kva.example/dlr", C201),
        ("public IPv4 literal", "https://93.184.216.34/dlr", C201),
        ("public IPv6 literal", "https://[2606:4700:4700::1111]:8443/dlr",
         C201),
        ("IPv6 loopback [::1]", "https://[::1]/dlr", priv(201)),
        ("IPv6 unique local [fd00::1]", "https://[fd00::1]/dlr", priv(201)),
        ("IPv6 link-local with a zone", "https://[fe80::1%25eth0]/dlr",
         priv(201)),
        ("IPv6 unspecified [::]", "https://[::]/dlr", priv(201)),
        ("IPv4-mapped loopback in hex", "https://[::ffff:7f00:1]/dlr",
         priv(201)),
        ("6to4 of 192.168.1.1", "https://[2002:c0a8:101::1]/dlr", priv(201)),
        ("NAT64 of 10.0.0.1", "https://[64:ff9b::a00:1]/dlr", priv(201)),
        ("invalid IPv6 literal", "https://[::g]/dlr", P(400)),
        ("IPv6 literal without brackets", "https://::1/dlr", P(400)),
        ("loopback 127.0.0.1", "https://127.0.0.1/dlr", priv(201)),
        ("loopback short form 127.1", "https://127.1/dlr", priv(201)),
        ("loopback as a decimal integer", "https://2130706433/dlr",
         priv(201)),
        ("loopback in hex", "https://0x7f000001/dlr", priv(201)),
        ("loopback in octal", "https://0177.0.0.1/dlr", priv(201)),
        ("10.0.0.1 as a decimal integer", "https://167772161/dlr", priv(201)),
        ("percent-encoded loopback host", "https://%31%32%37.0.0.1/dlr",
         priv(201)),
        ("localhost", "https://localhost/dlr", priv(201)),
        ("localhost with a trailing dot", "https://localhost./dlr",
         priv(201)),
        ("a name under .localhost", "https://api.localhost/dlr", priv(201)),
        ("private 10/8", "https://10.1.2.3/dlr", priv(201)),
        ("private 172.16/12", "https://172.31.255.255/dlr", priv(201)),
        ("private 192.168/16", "https://192.168.0.1/dlr", priv(201)),
        ("cloud metadata 169.254.169.254", "https://169.254.169.254/latest",
         priv(201)),
        ("CGNAT 100.64/10", "https://100.127.0.1/dlr", priv(201)),
        ("this network 0.0.0.0", "https://0.0.0.0/dlr", priv(201)),
        ("benchmarking 198.18/15", "https://198.19.0.1/dlr", priv(201)),
        ("multicast 224/4", "https://239.1.1.1/dlr", priv(201)),
        ("reserved 240/4", "https://240.0.0.1/dlr", priv(201)),
        ("percent-encoding in path and query",
         "https://example.com/a%20b/%E2%82%AC?q=%2F", C201),
        ("invalid percent-encoding is passed through",
         "https://example.com/a%zz", C201),
        ("space in the path", "https://example.com/a b", P(400)),
        ("space in the host", "https://exa mple.com/", P(400)),
        ("CR LF header injection", "https://example.com/\r\nX-Evil: 1",
         P(400)),
        ("tab", "https://example.com/\t", P(400)),
        ("DEL character", "https://example.com/\x7f", P(400)),
        ("NUL character", "https://example.com/\x00", P(400)),
        ("user and password", "https://user:pw@example.com/dlr", P(400)),
        ("user only", "https://user@example.com/dlr", P(400)),
        ("empty userinfo", "https://@example.com/dlr", P(400)),
        ("backslash-at host confusion", "https://example.com\\@10.0.0.1/",
         P(400)),
        ("@ in the path only", "https://example.com/a@b", C201),
        ("fragment", "https://example.com/dlr#frag", P(400)),
        ("empty fragment", "https://example.com/dlr#", P(400)),
        ("port 0", "https://example.com:0/dlr", P(400)),
        ("port 1", "https://example.com:1/dlr", C201),
        ("port 65535", "https://example.com:65535/dlr", C201),
        ("port 65536", "https://example.com:65536/dlr", P(400)),
        ("port -1", "https://example.com:-1/dlr", P(400)),
        ("port with 20 digits", "https://example.com:99999999999999999999/",
         P(400)),
        ("port with leading zeros", "https://example.com:00443/dlr", C201),
        ("exactly 2048 bytes", "https://example.com/" + "a" * 2028, C201),
        ("2049 bytes", "https://example.com/" + "a" * 2029, P(400)),
        ("http scheme", "http://example.com/dlr", P(400)),
        ("javascript: scheme", "javascript:alert(1)", P(400)),
        ("file scheme", "file:///etc/passwd", P(400)),
        ("gopher scheme", "gopher://example.com/", P(400)),
        ("scheme in upper case (stored in lower case)",
         "HTTPS://EXAMPLE.COM/dlr", P(201, url_is("https://EXAMPLE.COM/dlr"))),
        ("one slash after the scheme", "https:/example.com/dlr", P(400)),
        ("no slash after the scheme", "https:example.com/dlr", P(400)),
        # libcurl reads "https:///h" as host h, and so does the sender.
        ("three slashes after the scheme", "https:///example.com/dlr", C201),
        ("four slashes after the scheme", "https:////example.com/dlr",
         P(400)),
        ("scheme-relative", "//example.com/dlr", P(400)),
        ("relative path", "/dlr", P(400)),
        ("empty string", "", P(400)),
        ("scheme only", "https://", P(400))]:
    url_row("callbackUrl: " + label, url, exp)


# --- sending and reading -----------------------------------------------------

def exchange(data):
    """Sends data on a fresh connection; returns everything read until EOF."""
    s = socket.create_connection((CONFIG.host, CONFIG.port), timeout=TIMEOUT)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass    # answered before reading it all: read what it said
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    except socket.timeout:
        fail("no complete answer within %.0f s" % TIMEOUT)
    finally:
        s.close()


def dechunk(data):
    out, i = [], 0
    while True:
        j = data.find(b"\r\n", i)
        check(j >= 0, "truncated chunked body")
        size = int(data[i:j].split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(data[j + 2:j + 2 + size])
        i = j + 2 + size + 2


def parse(method, target, data, elapsed):
    """A dlrtest.Response from raw bytes; status 0 for an HTTP/0.9 answer."""
    while True:
        if not data.startswith(b"HTTP/"):
            return Response(method, target, 0, [], data, elapsed)
        head, sep, rest = data.partition(b"\r\n\r\n")
        check(sep, "no end of headers in %r" % data[:200])
        lines = head.split(b"\r\n")
        m = re.match(rb"HTTP/\d\.\d (\d{3})", lines[0])
        check(m, "bad status line %r" % lines[0])
        status = int(m.group(1))
        if 100 <= status < 200:
            data = rest     # 100 Continue: the real answer follows
            continue
        headers = []
        for ln in lines[1:]:
            k, _, v = ln.partition(b":")
            headers.append((k.decode("latin-1").strip(),
                            v.decode("latin-1").strip()))
        r = Response(method, target, status, headers, rest, elapsed)
        if (r.header("Transfer-Encoding") or "").lower() == "chunked":
            r.body = dechunk(rest)
        elif r.header("Content-Length") is not None and method != "HEAD":
            r.body = rest[:int(r.header("Content-Length"))]
        return r


# --- accounts ----------------------------------------------------------------

_pool = {}


def make_pool():
    """An account per keyed row, in two psql calls."""
    if _pool.get("done"):
        return
    keyed = [r for r in ROWS if r.key in ("fresh", "hooked")]
    accts = db.accounts("badinput", len(keyed))
    hooked = []
    for r, a in zip(keyed, accts):
        r.account = a
        if r.key == "hooked":
            hooked.append(a.id)
    if hooked:
        db.psql(
            "INSERT INTO dlrhook.webhooks (account_id, callback_url, "
            "signing_secret) SELECT id, %s, 'whsec_' || encode("
            "uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()), "
            "'base64') FROM unnest(ARRAY[%s]::bigint[]) AS id"
            % (sql_literal("https://example.com/before"),
               ",".join(str(i) for i in hooked)))
    _pool["done"] = True


# --- checking one row --------------------------------------------------------

def expect_location(resp):
    """Location names this host's resource, for RFC 3986 and for browsers
    (which read a backslash as a slash)."""
    loc = resp.header("Location") or ""
    check(loc and not re.match(r"^[/\\]{2}|^[A-Za-z][A-Za-z0-9+.-]*:", loc),
          "Location %r is not a path on this host" % loc)
    got = urllib.parse.urlsplit(urllib.parse.urljoin(
        api.url(RESOURCE), loc.replace("\\", "/")))
    want = urllib.parse.urlsplit(api.url(RESOURCE))
    path = re.sub(r"/+", "/", got.path)     # "a//b" is the server's "a/b"
    check((got.netloc, path) == (want.netloc, want.path),
          "Location %r resolves to %s%s, want %s%s"
          % (loc, got.netloc, got.path, want.netloc, want.path))


def judge(r, resp, exp):
    """Raises Failure unless resp meets exp."""
    if isinstance(exp, H09):
        check(resp.status == 0, "want an HTTP/0.9 answer, got %s"
              % resp.describe())
        try:
            p = json.loads(resp.body.decode("utf-8"))
        except ValueError:
            fail("HTTP/0.9 answer is not the program's problem: %r"
                 % resp.body[:200])
        check(p.get("status") == exp.status, "HTTP/0.9 problem status %r, "
              "want %d" % (p.get("status"), exp.status))
        return
    check(resp.status != 500, "500: %s" % resp.describe())
    check(resp.status == exp.status, "want %r, got %s"
          % (exp, resp.describe()))
    if isinstance(exp, S):
        return
    cc = (resp.header("Cache-Control") or "").lower()
    check("no-store" in cc, "%s: Cache-Control %r, want no-store"
          % (resp.describe(), cc))
    if exp.status == 405:
        check(resp.header("Allow") == ALLOW.get(r.path),
              "%s: Allow %r, want %r" % (resp.describe(),
                                         resp.header("Allow"),
                                         ALLOW.get(r.path)))
    if r.method == b"HEAD":
        check(resp.body == b"", "HEAD answer with a body")
        return
    if exp.status >= 400:
        expect_problem(resp, exp.status)
        return
    if exp.status == 201:
        expect_location(resp)
    if exp.status in (200, 201) and r.path == RESOURCE and \
            r.method in (b"GET", b"POST", b"PUT"):
        obj = resp.json()
        expect_webhook(obj, resp, secret=(exp.status == 201))
        if exp.check is not None:
            exp.check(obj, r)


def run_row(r):
    make_pool()
    data = r.build()
    method = data.split(b" ", 1)[0].decode("latin-1")
    target = data.split(b" ", 2)[1][:120].decode("latin-1") \
        if data.count(b" ") >= 2 else "?"
    t0 = time.monotonic()
    resp = parse(method, target, exchange(data), time.monotonic() - t0)
    exps = r.expectation()
    errors = []
    for exp in exps:
        try:
            judge(r, resp, exp)
            return
        except Failure as e:
            errors.append(str(e))
    fail(" / or: ".join(errors))


def slug(name):
    s = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower()
    return s or "row"


def register():
    seen = set()
    for r in ROWS:
        name = slug(r.name)
        n, i = name, 2
        while n in seen:
            n, i = "%s_%d" % (name, i), i + 1
        seen.add(n)

        def fn(r=r):
            run_row(r)
        fn.__name__ = n
        test(fn)


register()

if __name__ == "__main__":
    try:
        sys.exit(run(sys.argv[1:], api, db))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
