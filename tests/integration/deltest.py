"""deltest: what the delivery tests drive: psql, the API, the test receiver,
the sender binary, and a tiny runner.

Stdlib only. test_delivery.py registers functions with @test; run() executes
them in order, prints one line per test and a final "N passed, N failed"
line, and returns the exit status.
"""

import base64
import csv
import io
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import receiver  # noqa: E402  (tests/receiver.py)
import dlrtest  # noqa: E402  (its test selection)

RESOURCE = "/webhooks/delivery-status"
NULL = "\\N"


class Failure(AssertionError):
    """A test expectation that did not hold; the message is the reason."""


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def wait_for(what, cond, timeout=10.0, step=0.05):
    """Polls cond() until it returns something true; fails after timeout."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise Failure("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(step)


# --- PostgreSQL --------------------------------------------------------------

class SqlError(Exception):
    def __init__(self, stderr):
        super().__init__(stderr.strip())
        self.stderr = stderr


def psql(sql, role=None, **params):
    """
    Runs sql through psql as the superuser of the PG* environment (or SET
    ROLE role), with each keyword argument as a psql variable (:'name').
    Returns the rows of the last statement as lists of str, None for NULL.
    """
    args = ["psql", "-X", "-q", "--csv", "-t", "-v", "ON_ERROR_STOP=1",
            "-P", "null=" + NULL]
    for k, v in params.items():
        args += ["-v", "%s=%s" % (k, "" if v is None else v)]
    if role:
        sql = "SET ROLE %s;\n%s" % (role, sql)
    p = subprocess.run(args, input=sql, capture_output=True, text=True,
                       timeout=60)
    if p.returncode != 0:
        raise SqlError(p.stderr)
    rows = []
    for row in csv.reader(io.StringIO(p.stdout)):
        rows.append([None if c == NULL else c for c in row])
    return rows


def one(sql, **params):
    """The single value of a one-row, one-column result."""
    rows = psql(sql, **params)
    check(len(rows) == 1 and len(rows[0]) == 1,
          "expected one value from %r, got %r" % (sql.strip()[:80], rows))
    return rows[0][0]


def record(account, message_id, channel="SMS", status="DELIVERED",
           occurred_at="now", error_code=None, error_description=None,
           customer_message_id=None, destination=None, channel_status=None):
    """record_delivery_status as the platform calls it; the event id or None."""
    sql = ("SELECT dlrhook.record_delivery_status(:acct, :'mid', :'ch', "
           ":'st', :'at'::timestamptz, "
           "nullif(:'ec', ''), nullif(:'ed', ''), nullif(:'cm', ''), "
           "nullif(:'ds', ''), nullif(:'cs', ''))")
    return one(sql, acct=account, mid=message_id, ch=channel, st=status,
               at=occurred_at, ec=error_code or "", ed=error_description or "",
               cm=customer_message_id or "", ds=destination or "",
               cs=channel_status or "")


def attempts_of(event_id):
    """The attempts log of one notification, oldest first, as dicts."""
    rows = psql("""
        SELECT attempt, http_status, error, url, duration_ms,
            extract(epoch FROM started_at)::float8
        FROM dlrhook.attempts WHERE notification_id = :'id'
        ORDER BY started_at, attempt""", id=event_id)
    return [{"attempt": int(r[0]),
             "http_status": int(r[1]) if r[1] is not None else None,
             "error": r[2], "url": r[3],
             "duration_ms": int(r[4]) if r[4] is not None else None,
             "started": float(r[5])} for r in rows]


def notification(event_id):
    """(state, attempts, seconds until next_attempt_at, last_error) or None."""
    rows = psql("""
        SELECT state, attempts,
            extract(epoch FROM next_attempt_at - clock_timestamp())::float8,
            last_error
        FROM dlrhook.notifications WHERE id = :'id'""", id=event_id)
    if not rows:
        return None
    r = rows[0]
    return {"state": r[0], "attempts": int(r[1]), "due_in": float(r[2]),
            "last_error": r[3]}


# --- the API -----------------------------------------------------------------

class Api:
    """The delivery-status resource, used as a customer would."""

    def __init__(self, base):
        self.base = base.rstrip("/")

    def call(self, method, path, key, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("X-API-Key", key)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=15) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        except OSError as e:
            raise Failure("%s %s%s: %s" % (method, self.base, path, e))
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = raw
        return status, doc

    def expect(self, want, method, path, key, body=None):
        status, doc = self.call(method, path, key, body)
        check(status == want, "%s %s: want %d, got %d %r"
              % (method, path, want, status, doc))
        return doc


# --- certificates and the receiver --------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_certs(d):
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost."""
    def ossl(*args):
        p = subprocess.run(["openssl"] + list(args), cwd=d,
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError("openssl %s: %s" % (args[0], p.stderr))
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=dlrhook test CA")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key",
         "-out", "srv.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    ossl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", "2", "-out", "srv.pem",
         "-extfile", "ext.cnf")
    return (os.path.join(d, "ca.pem"), os.path.join(d, "srv.pem"),
            os.path.join(d, "srv.key"))


class Receiver:
    """tests/receiver.py in its own process, and its control endpoints."""

    def __init__(self, workdir):
        self.ca, cert, key = make_certs(workdir)
        self.port = free_port()
        self.base = "https://127.0.0.1:%d" % self.port
        self.log = open(os.path.join(workdir, "receiver.log"), "w")
        self.proc = subprocess.Popen(
            [sys.executable, receiver.__file__, "--port", str(self.port),
             "--cert", cert, "--key", key], stdout=self.log, stderr=self.log)
        self.ctx = ssl.create_default_context(cafile=self.ca)
        wait_for("the receiver to answer", self._healthy, timeout=10)

    def _healthy(self):
        if self.proc.poll() is not None:
            raise Failure("the receiver exited with %s" % self.proc.returncode)
        try:
            return self._get("/_health")["ok"]
        except OSError:
            return False

    def _get(self, path):
        with urllib.request.urlopen(self.base + path, timeout=10,
                                    context=self.ctx) as r:
            return json.loads(r.read())

    def _post(self, path, doc):
        req = urllib.request.Request(self.base + path, method="POST",
                                     data=json.dumps(doc).encode())
        with urllib.request.urlopen(req, timeout=10, context=self.ctx) as r:
            r.read()

    def url(self, path):
        return self.base + path

    def requests(self, prefix):
        """Requests whose path starts with prefix, with body and signature."""
        recs = self._get("/_requests?prefix=" + urllib.parse.quote(prefix))
        for r in recs:
            r["body"] = base64.b64decode(r["body_b64"])
        return recs

    def expect_secrets(self, prefix, secrets):
        self._post("/_secrets", {"prefix": prefix, "secrets": secrets})

    def tls_errors(self):
        return self._get("/_tls_errors")["tls_errors"]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


# --- the sender --------------------------------------------------------------

class Sender:
    """Runs src/dlrhook-send with a controlled environment."""

    def __init__(self, binary, conninfo, ca):
        self.binary = binary
        self.conninfo = conninfo
        self.ca = ca

    def problem(self):
        """Why the sender cannot run, or None."""
        if not self.binary:
            return "DLRHOOK_SEND is not set"
        if not os.access(self.binary, os.X_OK):
            return "DLRHOOK_SEND=%s is not an executable (build it)" % self.binary
        if not self.conninfo:
            return "DLRHOOK_SENDER_DATABASE is not set"
        return None

    def env(self, private=True, extra=None):
        # Only what the test says: no DLRHOOK_* leaks in from outside.
        e = {k: v for k, v in os.environ.items() if not k.startswith("DLRHOOK_")}
        e["DLRHOOK_DATABASE"] = self.conninfo
        if private:
            e["DLRHOOK_ALLOW_PRIVATE"] = "1"
        e.update(extra or {})
        return e

    def argv(self, args, ca):
        argv = [self.binary] + list(args)
        if ca:
            argv += ["--cacert", self.ca]
        return argv

    def run(self, *args, ca=True, private=True, extra_env=None, timeout=60):
        """Runs to completion; (exit status, stderr)."""
        why = self.problem()
        if why:
            raise Failure(why)
        p = subprocess.run(self.argv(args, ca), env=self.env(private, extra_env),
                           capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stderr

    def once(self, *args, **kw):
        """A --once run that must exit 0; its stderr."""
        rc, err = self.run("--once", *args, **kw)
        check(rc == 0, "dlrhook-send --once exited %d: %s" % (rc, err[-2000:]))
        return err

    def start(self, *args, ca=True, private=True, extra_env=None):
        """Starts it in the background; the Popen (stderr to a temp file)."""
        why = self.problem()
        if why:
            raise Failure(why)
        errf = tempfile.TemporaryFile(mode="w+")
        p = subprocess.Popen(self.argv(args, ca),
                             env=self.env(private, extra_env),
                             stdout=subprocess.DEVNULL, stderr=errf)
        p.errf = errf
        return p


def stderr_of(proc):
    proc.errf.seek(0)
    return proc.errf.read()


def stop(proc, sig=signal.SIGTERM, timeout=15):
    """Signals proc and waits; its exit status (negative for a signal)."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise Failure("the sender did not stop within %d s of signal %d"
                          % (timeout, sig))
    return proc.returncode


# --- accounts ----------------------------------------------------------------

class Customer:
    """An account with an API key, and (optionally) its webhook."""

    def __init__(self, api, name):
        self.api = api
        self.account = int(one("SELECT dlrhook.create_account(:'n')",
                               n="deltest " + name))
        self.key = one("SELECT dlrhook.create_api_key(:a)", a=self.account)

    def create(self, url):
        status, doc = self.api.call("POST", RESOURCE, self.key,
                                    {"callbackUrl": url})
        check(not (status == 400 and "127.0.0.1" in url),
              "POST refused %s: is the API running with "
              "DLRHOOK_ALLOW_PRIVATE=1? %r" % (url, doc))
        check(status == 201, "POST %s: want 201, got %d %r" % (url, status, doc))
        check(doc.get("signingSecret", "").startswith("whsec_"),
              "POST gave no signingSecret: %r" % doc)
        return doc

    def get(self):
        return self.api.expect(200, "GET", RESOURCE, self.key)

    def put(self, url):
        return self.api.expect(200, "PUT", RESOURCE, self.key,
                               {"callbackUrl": url})

    def delete(self):
        self.api.expect(204, "DELETE", RESOURCE, self.key)

    def secret(self):
        doc = self.api.expect(200, "GET", RESOURCE + "/secret", self.key)
        return doc["signingSecret"]

    def rotate(self):
        doc = self.api.expect(200, "POST", RESOURCE + "/secret/rotate",
                              self.key)
        return doc["signingSecret"]

    def record(self, message_id, **kw):
        return record(self.account, message_id, **kw)

    def cleanup(self):
        """Removes the webhook (and so every notification) directly."""
        psql("DELETE FROM dlrhook.webhooks WHERE account_id = :a",
             a=self.account)


# --- runner ------------------------------------------------------------------

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def unique(name):
    return "%s-%s" % (name.replace("_", "-"), uuid.uuid4().hex[:8])


def run(setup, teardown, argv=()):
    """
    Runs the tests argv selects (dlrtest.pick: --list, -k SUBSTRING,
    names); prints one line each and the totals; returns the exit status.
    """
    tests = dlrtest.pick(argv, TESTS)
    passed = failed = 0
    ctx = None
    try:
        ctx = setup()
    except Exception as e:  # noqa: BLE001 - reported as the reason
        print("not ok - setup: %s" % e)
        print("0 passed, %d failed" % (len(tests) + 1))
        return 1
    try:
        for fn in tests:
            t0 = time.monotonic()
            try:
                fn(ctx)
                passed += 1
                print("ok - %s (%.1f s)" % (fn.__name__, time.monotonic() - t0),
                      flush=True)
            except Failure as e:
                failed += 1
                print("not ok - %s: %s" % (fn.__name__, e), flush=True)
            except Exception:  # noqa: BLE001 - a broken test is a failure
                failed += 1
                print("not ok - %s: %s" % (fn.__name__, traceback.format_exc()
                                           .strip().replace("\n", "\n    ")),
                      flush=True)
            finally:
                for c in ctx.customers:
                    try:
                        c.cleanup()
                    except Exception:  # noqa: BLE001
                        pass
                ctx.customers = []
    finally:
        teardown(ctx)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


def rmtree(d):
    shutil.rmtree(d, ignore_errors=True)
