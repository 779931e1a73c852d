"""dlrtest: HTTP client, psql helpers, checks and a tiny runner for the API tests.

Stdlib only. The test file registers functions with @test; run() executes
them in order (the ones marked last=True at the end), prints one line per
test and a final "N passed, N failed" line, and returns the exit status.
"""

import base64
import binascii
import concurrent.futures
import datetime
import http.client
import itertools
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse

RESOURCE = "/webhooks/delivery-status"
SECRET = RESOURCE + "/secret"
ROTATE = SECRET + "/rotate"

BODY_MAX = 64 * 1024
HTTP_TIMEOUT = 10.0


class Failure(AssertionError):
    """A test expectation that did not hold; the message is the reason."""


def fail(msg):
    raise Failure(msg)


def check(cond, msg):
    if not cond:
        raise Failure(msg)


# --- configuration -----------------------------------------------------------

class Config:
    """What the environment says about the server under test."""

    def __init__(self, env):
        self.url = env.get("DLRHOOK_URL", "").strip()
        self.server = env.get("DLRHOOK_SERVER_NAME", "").strip() or "server"
        self.pg_stop = env.get("DLRHOOK_PG_STOP", "").strip()
        self.pg_start = env.get("DLRHOOK_PG_START", "").strip()
        self.debug = env.get("DLRHOOK_TEST_DEBUG", "") not in ("", "0")
        # The servers under test refuse private callback URLs unless they run
        # with DLRHOOK_ALLOW_PRIVATE=1; dev/test passes the same value here.
        self.allow_private = env.get("DLRHOOK_ALLOW_PRIVATE", "") == "1"
        self.error = None
        self.scheme = self.host = self.base_path = None
        self.port = None
        if not self.url:
            self.error = ("DLRHOOK_URL is not set (source .run/env, or run "
                          "dev/test)")
            return
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.error = ("DLRHOOK_URL=%r is not an http(s) URL with a host"
                          % self.url)
            return
        self.scheme = parts.scheme
        self.host = parts.hostname
        try:
            self.port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            self.error = "DLRHOOK_URL=%r has a bad port" % self.url
            return
        self.base_path = parts.path.rstrip("/")


CONFIG = Config(os.environ)


# --- HTTP --------------------------------------------------------------------

class Response:
    """One HTTP exchange: what was asked and what came back."""

    def __init__(self, method, target, status, headers, body, elapsed):
        self.method = method
        self.target = target
        self.status = status
        self._headers = headers  # list of (name, value)
        self.body = body
        self.elapsed = elapsed

    def header(self, name):
        """All values of a header joined with ", ", or None if absent."""
        vals = [v for k, v in self._headers if k.lower() == name.lower()]
        return ", ".join(vals) if vals else None

    def media_type(self):
        ct = self.header("Content-Type")
        if ct is None:
            return None
        return ct.split(";", 1)[0].strip().lower()

    def describe(self):
        snippet = self.body[:300].decode("utf-8", "replace")
        if len(self.body) > 300:
            snippet += "..."
        return "%s %s -> %d (%s) %r" % (self.method, self.target, self.status,
                                        self.header("Content-Type") or
                                        "no Content-Type", snippet)

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            fail("%s: body is not JSON (%s)" % (self.describe(), e))


class Api:
    """Sends requests to $DLRHOOK_URL + path over a fresh connection each."""

    def __init__(self, cfg):
        self.cfg = cfg

    def url(self, path):
        return self.cfg.url.rstrip("/") + path

    def connect(self, timeout=HTTP_TIMEOUT):
        """An open connection, for callers that want to connect early."""
        if self.cfg.scheme == "https":
            ctx = ssl._create_unverified_context()
            conn = http.client.HTTPSConnection(self.cfg.host, self.cfg.port,
                                               timeout=timeout, context=ctx)
        else:
            conn = http.client.HTTPConnection(self.cfg.host, self.cfg.port,
                                              timeout=timeout)
        conn.connect()
        return conn

    def request(self, method, path, body=None, key=None, ctype=None,
                headers=None, timeout=HTTP_TIMEOUT, conn=None, chunked=False,
                absolute_form=False):
        """
        Sends one request and returns the Response. key/ctype None means the
        header is not sent at all. A POST or PUT without a body carries
        Content-Length: 0. chunked sends the body with Transfer-Encoding:
        chunked in 16 KiB chunks instead. absolute_form sends the target as
        a client sends it to a proxy (scheme://host:port/path). Transport
        errors become Failures with a clear message, never a traceback.
        """
        target = self.cfg.base_path + path
        if absolute_form:
            target = "%s://%s:%d%s" % (self.cfg.scheme, self.cfg.host,
                                       self.cfg.port, target)
        t0 = time.monotonic()
        try:
            if conn is None:
                conn = self.connect(timeout)
            if isinstance(body, str):
                body = body.encode("utf-8")
            conn.putrequest(method, target, skip_accept_encoding=True)
            if key is not None:
                conn.putheader("X-API-Key", key)
            if ctype is not None:
                conn.putheader("Content-Type", ctype)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            if chunked:
                conn.putheader("Transfer-Encoding", "chunked")
                body = b"".join(b"%x\r\n%s\r\n" % (len(c), c)
                                for c in _chunks(body or b"", 16384)) + \
                    b"0\r\n\r\n"
            elif body is not None:
                conn.putheader("Content-Length", str(len(body)))
            elif method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", "0")
            conn.endheaders()
            if body:
                try:
                    conn.send(body)
                except (BrokenPipeError, ConnectionResetError):
                    # The server answered before reading it all; read what
                    # it said.
                    pass
            resp = conn.getresponse()
            data = resp.read()
            return Response(method, target, resp.status, resp.getheaders(),
                            data, time.monotonic() - t0)
        except socket.timeout:
            fail("%s %s: no response within %.1f s (server hangs?)"
                 % (method, target, timeout))
        except (OSError, http.client.HTTPException) as e:
            fail("%s %s: %s: %s" % (method, target, type(e).__name__, e))
        finally:
            if conn is not None:
                conn.close()

    # Shorthands for the common calls.
    def get(self, key, path=RESOURCE, **kw):
        return self.request("GET", path, key=key, **kw)

    def delete(self, key, path=RESOURCE, **kw):
        return self.request("DELETE", path, key=key, **kw)

    def post(self, key, url, ctype="application/json", **kw):
        return self.request("POST", RESOURCE, body=callback_body(url),
                            key=key, ctype=ctype, **kw)

    def put(self, key, url, ctype="application/json", **kw):
        return self.request("PUT", RESOURCE, body=callback_body(url),
                            key=key, ctype=ctype, **kw)

    def rotate(self, key, **kw):
        return self.request("POST", ROTATE, key=key, **kw)

    def secret(self, key, **kw):
        return self.request("GET", SECRET, key=key, **kw)

    def create(self, key, url):
        """POSTs a webhook and returns the 201 object (with signingSecret)."""
        r = self.post(key, url)
        obj = expect_json(r, 201)
        expect_webhook(obj, r, secret=True, url=url)
        return obj

    def current(self, key):
        """GETs the webhook, which must exist, and returns the object."""
        r = self.get(key)
        obj = expect_json(r, 200)
        expect_webhook(obj, r, secret=False)
        return obj

    def current_secret(self, key):
        r = self.secret(key)
        obj = expect_json(r, 200)
        check(set(obj) == {"signingSecret"},
              "%s: expected exactly {signingSecret}" % r.describe())
        expect_secret(obj["signingSecret"], r)
        return obj["signingSecret"]


def _chunks(data, size):
    return [data[i:i + size] for i in range(0, len(data), size)]


def callback_body(url):
    return json.dumps({"callbackUrl": url}).encode("utf-8")


def padded_body(url, size):
    """{"callbackUrl":url} padded with inner whitespace to exactly size bytes."""
    core = callback_body(url)
    pad = size - len(core)
    check(pad >= 0, "padded_body: %d bytes is too small" % size)
    return b"{" + b" " * pad + core[1:]


def parallel(fn, n, timeout=60):
    """
    Runs fn(i) for i in range(n) in n threads and returns the results in
    order; an exception in a thread becomes its result, so one failure does
    not hide the others.
    """
    def wrap(i):
        try:
            return fn(i)
        except Exception as e:  # reported by the caller, per thread
            return e
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as ex:
        return list(ex.map(wrap, range(n), timeout=timeout))


# --- checks ------------------------------------------------------------------

_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
WEBHOOK_KEYS = {"id", "callbackUrl", "status", "createdAt", "updatedAt"}

# Text that must never reach a client: SQL, libpq, libcurl, json-c or C
# internals.
_LEAKS = [
    re.compile(r"\bSELECT\b|\bINSERT\s+INTO\b|\bUPDATE\s+\S+\s+SET\b|"
               r"\bDELETE\s+FROM\b|\bWHERE\b|\bRETURNING\b|\bERROR:"),
    re.compile(r"(?i)sqlstate|duplicate key|violates|syntax error|"
               r"relation \"|pgres_|libpq|could not connect|"
               r"connection to server|\.s\.pgsql|server closed the connection|"
               r"dlrhook\.\w+\(|curlue_|json_tokener|\(null\)|"
               r"segmentation|assert"),
]


def expect_status(r, *codes):
    check(r.status in codes, "expected %s, got %s"
          % (" or ".join(map(str, codes)), r.describe()))


def expect_no_store(r):
    cc = r.header("Cache-Control")
    toks = [t.strip().lower() for t in (cc or "").split(",")]
    check("no-store" in toks, "%s: Cache-Control is %r, want no-store"
          % (r.describe(), cc))


def expect_problem(r, status):
    """An RFC 9457 problem with the given status; returns the object."""
    expect_status(r, status)
    check(r.media_type() == "application/problem+json",
          "%s: Content-Type must be application/problem+json"
          % r.describe())
    p = r.json()
    check(isinstance(p, dict), "%s: problem is not a JSON object"
          % r.describe())
    for k in ("type", "title", "detail"):
        check(isinstance(p.get(k), str) and p[k].strip(),
              "%s: problem %r must be a non-empty string" % (r.describe(), k))
    st = p.get("status")
    check(type(st) is int and st == status,
          "%s: problem status is %r, want %d" % (r.describe(), st, status))
    detail = p["detail"].strip()
    check(len(detail) >= 8 and re.search(r"[A-Za-z]{3}", detail),
          "%s: detail %r is not a sentence" % (r.describe(), detail))
    for rx in _LEAKS:
        m = rx.search(detail) or rx.search(p["title"])
        check(m is None, "%s: problem leaks internal text %r"
              % (r.describe(), m and m.group(0)))
    return p


def expect_json(r, status):
    """A JSON object response with the given status; returns the object."""
    expect_status(r, status)
    check(r.media_type() == "application/json",
          "%s: Content-Type must be application/json" % r.describe())
    obj = r.json()
    check(isinstance(obj, dict), "%s: body is not a JSON object"
          % r.describe())
    return obj


def expect_secret(s, r=None):
    where = r.describe() if r else "signingSecret"
    check(isinstance(s, str) and s.startswith("whsec_"),
          "%s: signingSecret %r must start with whsec_" % (where, s))
    try:
        raw = base64.b64decode(s[len("whsec_"):], validate=True)
    except (binascii.Error, ValueError) as e:
        fail("%s: signingSecret is not base64 (%s)" % (where, e))
    check(len(raw) == 32, "%s: signingSecret decodes to %d bytes, want 32"
          % (where, len(raw)))


def parse_ts(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)


def expect_webhook(obj, r, secret=False, url=None):
    """The webhook object shape; url, if given, must be the callbackUrl."""
    want = WEBHOOK_KEYS | ({"signingSecret"} if secret else set())
    check(set(obj) == want, "%s: fields %s, want %s"
          % (r.describe(), sorted(obj), sorted(want)))
    check(isinstance(obj["id"], str) and obj["id"].startswith("wh_")
          and len(obj["id"]) > 3, "%s: id must be wh_..." % r.describe())
    check(obj["status"] in ("ACTIVE", "DISABLED"),
          "%s: status %r" % (r.describe(), obj["status"]))
    if url is not None:
        check(obj["callbackUrl"] == url, "%s: callbackUrl %r, want %r"
              % (r.describe(), obj["callbackUrl"], url))
    now = datetime.datetime.now(datetime.timezone.utc)
    for k in ("createdAt", "updatedAt"):
        v = obj[k]
        check(isinstance(v, str) and _TS.match(v),
              "%s: %s %r is not YYYY-MM-DDTHH:MM:SS.mmmZ"
              % (r.describe(), k, v))
        skew = abs((parse_ts(v) - now).total_seconds())
        check(skew < 600, "%s: %s %s is %.0f s away from now (UTC?)"
              % (r.describe(), k, v, skew))
    check(obj["updatedAt"] >= obj["createdAt"],
          "%s: updatedAt before createdAt" % r.describe())
    if secret:
        expect_secret(obj["signingSecret"], r)


def expect_allow(r, methods):
    allow = r.header("Allow")
    check(allow is not None, "%s: 405 without an Allow header" % r.describe())
    got = {m.strip().upper() for m in allow.split(",") if m.strip()}
    check(got == set(methods), "%s: Allow is %r, want %r"
          % (r.describe(), allow, ", ".join(methods)))


# --- PostgreSQL --------------------------------------------------------------

class Account:
    def __init__(self, id_, key):
        self.id = id_
        self.key = key


def sql_literal(s):
    return "'" + s.replace("'", "''") + "'"


class Db:
    """Admin access through psql, as the operator would do it."""

    _seq = itertools.count(1)
    _lock = threading.Lock()

    def psql(self, sql, timeout=30):
        cmd = ["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-F", "\t",
               "-c", sql]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True,
                               timeout=timeout)
        except FileNotFoundError:
            fail("psql is not installed or not on PATH")
        except subprocess.TimeoutExpired:
            fail("psql did not finish within %d s: %s" % (timeout, sql))
        if p.returncode != 0:
            fail("psql failed (exit %d): %s [SQL: %s]"
                 % (p.returncode, p.stderr.strip(), sql))
        return p.stdout.strip()

    def _name(self, label):
        with self._lock:
            n = next(self._seq)
        return "it-%s-%d-%d-%s" % (label, os.getpid(), n, secrets.token_hex(3))

    def accounts(self, label, n):
        """n new accounts, each with one API key, made in one psql call."""
        names = ",".join(sql_literal(self._name(label)) for _ in range(n))
        out = self.psql(
            "SELECT id, dlrhook.create_api_key(id) FROM ("
            "SELECT dlrhook.create_account(nm) AS id "
            "FROM unnest(ARRAY[%s]::text[]) WITH ORDINALITY AS u(nm, o) "
            "ORDER BY o) s" % names)
        rows = [line.split("\t") for line in out.splitlines() if line]
        check(len(rows) == n and all(len(x) == 2 and x[1] for x in rows),
              "create_account/create_api_key returned %r" % out)
        return [Account(int(a), k) for a, k in rows]

    def account(self, label):
        return self.accounts(label, 1)[0]

    def new_key(self, account_id):
        key = self.psql("SELECT dlrhook.create_api_key(%d)" % account_id)
        check(key, "create_api_key returned nothing")
        return key

    def revoke(self, key):
        self.psql("SELECT dlrhook.revoke_api_key(%s)" % sql_literal(key))


# --- processes ---------------------------------------------------------------

def _listening_inodes(port):
    inodes = set()
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(f) as fh:
                lines = fh.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            p = line.split()
            if len(p) > 9 and p[3] == "0A" and \
                    int(p[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(p[9])
    return inodes


def _proc_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def _pids_holding(inodes):
    want = {"socket:[%s]" % i for i in inodes}
    pids = set()
    for pid in _proc_pids():
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)) in want:
                    pids.add(pid)
                    break
        except OSError:
            continue
    return pids


def _children_map():
    kids = {}
    for pid in _proc_pids():
        try:
            with open("/proc/%d/stat" % pid) as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(pid)
    return kids


def fcgi_pids(port):
    """
    The dlrhook.fcgi processes (pgrep -f dlrhook.fcgi) that descend from the
    web server listening on port, so that other servers running on the same
    machine do not count. None when that cannot be worked out.
    """
    if shutil.which("pgrep") is None:
        return None
    p = subprocess.run(["pgrep", "-f", "dlrhook.fcgi"], capture_output=True,
                       text=True)
    found = {int(x) for x in p.stdout.split() if x.isdigit()}
    roots = _pids_holding(_listening_inodes(port))
    if not roots:
        return None
    kids = _children_map()
    seen, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        todo.extend(kids.get(pid, []))
    mine = found & seen
    return mine or None


def shell(cmd, what, timeout=60):
    """Runs an operator command (DLRHOOK_PG_STOP/START); Failure if it fails."""
    try:
        p = subprocess.run(cmd, shell=True, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        fail("%s (%s) did not finish within %d s" % (what, cmd, timeout))
    if p.returncode != 0:
        fail("%s (%s) failed with exit %d: %s"
             % (what, cmd, p.returncode, (p.stderr or p.stdout).strip()))


# --- runner ------------------------------------------------------------------

_TESTS = []


def test(fn=None, last=False):
    """Registers a test; last=True ones run after all the others."""
    def reg(f):
        _TESTS.append((f.__name__, f, last))
        return f
    return reg(fn) if fn is not None else reg


def plain_suite():
    """A list of plain tests for run_plain, and the decorator that adds a
    function to it."""
    tests = []

    def add(fn):
        tests.append(fn)
        return fn
    return tests, add


def pick(argv, tests, name=lambda t: t.__name__):
    """The tests argv selects, in their order: those named (all when none
    are), of those the ones with -k SUBSTRING in their name. Like argparse,
    it exits instead: 0 after --list printed every test's name, 2 with the
    reason when argv names an unknown test, -k lacks its argument, or
    nothing is selected (a run of no tests must not pass). name(t) is a
    test's name."""
    names = [name(t) for t in tests]
    if "--list" in argv:
        for n in names:
            print(n)
        sys.exit(0)
    args = list(argv)
    pattern = None
    if "-k" in args:
        i = args.index("-k")
        if i + 1 >= len(args):
            print("usage: %s [-k substring] [--list] [name...]"
                  % os.path.basename(sys.argv[0]), file=sys.stderr)
            sys.exit(2)
        pattern = args[i + 1]
        del args[i:i + 2]
    unknown = set(args) - set(names)
    if unknown:
        print("unknown test(s): %s" % ", ".join(sorted(unknown)),
              file=sys.stderr)
        sys.exit(2)
    chosen = [t for t, n in zip(tests, names) if (not args or n in args)
              and (pattern is None or pattern in n)]
    if not chosen:
        print("no test matches -k %s" % pattern, file=sys.stderr)
        sys.exit(2)
    return chosen


def run_plain(argv, tests, banner, precheck=None, cleanup=None):
    """Runs plain test functions (no arguments), as run() does for the API
    suites: --list, -k SUBSTRING, names (pick); one line per test and "N
    passed, N failed"; the exit status. precheck() says why none can run,
    or None; cleanup() runs after them when they could (its failure is
    printed, not counted)."""
    chosen = pick(argv, tests)
    print(banner, file=sys.stderr)
    passed = failed = 0
    try:
        why = precheck() if precheck else None
    except Failure as e:
        why = str(e)
    t0 = time.monotonic()
    try:
        for fn in chosen:
            if why:
                print("FAIL %s: not run: %s" % (fn.__name__, why), flush=True)
                failed += 1
                continue
            try:
                fn()
            except Failure as e:
                print("FAIL %s: %s" % (fn.__name__, e), flush=True)
                failed += 1
            except Exception as e:  # a broken test is a failure
                print("FAIL %s: unexpected %s: %s\n%s"
                      % (fn.__name__, type(e).__name__, e,
                         traceback.format_exc()), flush=True)
                failed += 1
            else:
                print("ok %s" % fn.__name__, flush=True)
                passed += 1
    finally:
        if cleanup and not why:
            try:
                cleanup()
            except Failure as e:
                print("# cleanup failed: %s" % e, file=sys.stderr)
    print("# %.1f s" % (time.monotonic() - t0), file=sys.stderr)
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


def main_of(run):
    """Exits with run(argv)'s status; 130 when interrupted."""
    try:
        sys.exit(run(sys.argv[1:]))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def _preflight(cfg, api, db):
    """None when the server and the database answer, else why not."""
    if cfg.error:
        return cfg.error
    try:
        api.request("GET", RESOURCE, timeout=5)
    except Failure as e:
        return ("cannot reach the %s API at %s (%s); is the server running?"
                % (cfg.server, api.url(RESOURCE),
                   str(e).split(": ", 1)[-1]))
    try:
        ok = db.psql("SELECT to_regproc('dlrhook.create_api_key') IS NOT NULL",
                     timeout=15)
    except Failure as e:
        return "cannot use the database with psql: %s" % e
    if ok != "t":
        return "the database has no dlrhook schema (migrations not applied?)"
    return None


def _one_line(s):
    return " | ".join(x.strip() for x in str(s).splitlines() if x.strip())


def run(argv, api, db):
    """Runs the selected tests; returns the process exit status."""
    chosen = pick(argv, _TESTS, lambda t: t[0])
    chosen = [t for t in chosen if not t[2]] + [t for t in chosen if t[2]]

    cfg = api.cfg
    print("# dlrhook API tests: %s at %s" % (cfg.server, cfg.url or "?"),
          file=sys.stderr)
    t0 = time.monotonic()
    why = _preflight(cfg, api, db)
    if why:
        print("# cannot run: " + _one_line(why), file=sys.stderr)
    passed = failed = 0
    for name, fn, _ in chosen:
        if why:
            # The whole reason on the first line, a pointer on the others.
            print("FAIL %s: not run: %s" % (name, _one_line(why)), flush=True)
            why = "preflight failed (see the first FAIL line)"
            failed += 1
            continue
        start = time.monotonic()
        try:
            fn()
        except Failure as e:
            print("FAIL %s: [%s] %s" % (name, cfg.server, _one_line(e)),
                  flush=True)
            failed += 1
        except Exception as e:
            print("FAIL %s: [%s] unexpected %s: %s"
                  % (name, cfg.server, type(e).__name__, _one_line(e)),
                  flush=True)
            if cfg.debug:
                traceback.print_exc()
            failed += 1
        else:
            print("ok %s" % name, flush=True)
            passed += 1
        spent = time.monotonic() - start
        if spent > 10 or cfg.debug:
            print("# %s took %.2f s" % (name, spent), file=sys.stderr)
    print("# %.1f s" % (time.monotonic() - t0), file=sys.stderr)
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


def note(msg):
    """A remark that does not change the outcome, on stderr."""
    print("# " + msg, file=sys.stderr, flush=True)
