"""faulttest: what the fault-injection suite (test_faults.py) drives on top of
deltest: bulk events and their payload digests, the misbehaving receiver
(tests/chaos_receiver.py), the FastCGI processes of the web server, a load
generator for the API, and a runner whose line per test carries what was
measured.

Stdlib only.
"""

import collections
import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dlrtest  # noqa: E402
from deltest import (Failure, check, free_port, one, psql,  # noqa: E402
                     wait_for)

CHAOS = os.path.join(os.path.dirname(HERE), "chaos_receiver.py")


# --- certificates -------------------------------------------------------------

def make_ec_certs(d):
    """
    A throwaway CA and a server certificate for 127.0.0.1, on P-256 keys:
    a receiver that sees thousands of TLS handshakes (resets, kills) spends
    far less CPU on them than with RSA.
    """
    def ossl(*args):
        p = subprocess.run(["openssl"] + list(args), cwd=d,
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError("openssl %s: %s" % (args[0], p.stderr))
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")
    ossl("req", "-x509", *ec, "-nodes", "-days", "2", "-keyout", "ca.key",
         "-out", "ca.pem", "-subj", "/CN=dlrhook fault test CA")
    ossl("req", *ec, "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
         "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    ossl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", "2", "-out", "srv.pem",
         "-extfile", "ext.cnf")
    return (os.path.join(d, "ca.pem"), os.path.join(d, "srv.pem"),
            os.path.join(d, "srv.key"))


# --- the misbehaving receiver -------------------------------------------------

class ChaosReceiver:
    """tests/chaos_receiver.py in its own process (its own GIL)."""

    def __init__(self, workdir, seed=None):
        self.ca, cert, key = make_ec_certs(workdir)
        self.port = free_port()
        self.base = "https://127.0.0.1:%d" % self.port
        self.log = open(os.path.join(workdir, "chaos-receiver.log"), "w")
        argv = [sys.executable, CHAOS, "--port", str(self.port),
                "--cert", cert, "--key", key]
        if seed is not None:
            argv += ["--seed", str(seed)]
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log)
        self.ctx = ssl.create_default_context(cafile=self.ca)
        self.conn = None            # kept alive: tests poll /_count often
        self.lock = threading.Lock()
        wait_for("the chaos receiver to answer", self._healthy, timeout=10)

    def _healthy(self):
        if self.proc.poll() is not None:
            raise Failure("the chaos receiver exited with %s"
                          % self.proc.returncode)
        try:
            return self._get("/_health")["ok"]
        except (OSError, http.client.HTTPException):
            return False

    def _get(self, path, timeout=30):
        with self.lock:
            for retry in (False, True):
                try:
                    if self.conn is None:
                        self.conn = http.client.HTTPSConnection(
                            "127.0.0.1", self.port, timeout=timeout,
                            context=self.ctx)
                    self.conn.request("GET", path)
                    r = self.conn.getresponse()
                    body = r.read()
                    if r.status != 200:
                        raise OSError("receiver %s: HTTP %d" % (path,
                                                                 r.status))
                    return json.loads(body)
                except (OSError, http.client.HTTPException):
                    if self.conn is not None:
                        self.conn.close()
                    self.conn = None
                    if retry:
                        raise

    def alive(self):
        return self.proc.poll() is None

    def url(self, path):
        return self.base + path

    def records(self, prefix):
        """[(path, webhook-id, body sha256, done, arrived)] under prefix."""
        doc = self._get("/_log?prefix=" + urllib.parse.quote(prefix))
        return [tuple(r) for r in doc["records"]]

    def count(self, prefix, done="204"):
        return self._get("/_count?prefix=%s&done=%s"
                         % (urllib.parse.quote(prefix), done))["count"]

    def tls_errors(self):
        return self._get("/_tls_errors")["tls_errors"]

    def stop(self):
        if self.conn is not None:
            self.conn.close()
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# --- events in bulk -----------------------------------------------------------

def record_many(account, n, tag):
    """
    n events for account in one transaction (as a busy platform would
    commit them), spread over the three channels; their ids in order.
    """
    rows = psql("""
        SELECT dlrhook.record_delivery_status(:acct, :'tag' || '-' || i,
            (ARRAY['SMS', 'RCS', 'WHATSAPP'])[1 + i % 3],
            (ARRAY['SENT', 'DELIVERED', 'FAILED', 'EXPIRED'])[1 + i % 4],
            now() - make_interval(secs => i / 1000.0),
            CASE WHEN i % 4 = 2 THEN 'E' || i END,
            CASE WHEN i % 4 = 2 THEN 'failed "' || i || '" ✓' END,
            'cm-' || i, '+49151' || lpad(i::text, 8, '0'),
            'raw-' || i)
        FROM generate_series(1, :n) AS i ORDER BY i""",
                acct=account, tag=tag, n=n)
    ids = [r[0] for r in rows]
    check(len(ids) == n and all(ids), "recorded %d of %d events (a NULL "
          "means the webhook was not ACTIVE)" % (len([i for i in ids if i]), n))
    return ids


def webhook_id(account):
    return one("SELECT id FROM dlrhook.webhooks WHERE account_id = :a",
               a=account)


def payload_digests(webhook):
    """{event id: sha256 of its payload} of what webhook has queued."""
    rows = psql("""
        SELECT id, encode(sha256(convert_to(payload, 'UTF8')), 'hex')
        FROM dlrhook.notifications WHERE webhook_id = :'w'""", w=webhook)
    return dict((r[0], r[1]) for r in rows)


def queued(webhook):
    """(pending, dead) notifications of webhook."""
    r = psql("""SELECT count(*) FILTER (WHERE state = 'pending'),
                       count(*) FILTER (WHERE state = 'dead')
                FROM dlrhook.notifications WHERE webhook_id = :'w'""",
             w=webhook)[0]
    return int(r[0]), int(r[1])


def due_now(webhook):
    """Pending notifications of webhook that a claim would take now."""
    return int(one("""SELECT count(*) FROM dlrhook.notifications
        WHERE webhook_id = :'w' AND state = 'pending'
            AND next_attempt_at <= now()""", w=webhook))


def wait_drained(webhook, timeout, sender=None, what="the queue to drain"):
    """Waits until webhook has nothing pending; seconds it took."""
    t0 = time.monotonic()

    def drained():
        if sender is not None and sender.poll() is not None:
            raise Failure("the sender exited (%s) before %s"
                          % (sender.returncode, what))
        return queued(webhook)[0] == 0
    try:
        wait_for(what, drained, timeout=timeout, step=0.25)
    except Failure:
        p, d = queued(webhook)
        raise Failure("%d notifications still pending (%d dead) %.0f s "
                      "later: not drained" % (p, d, timeout))
    return time.monotonic() - t0


def _uuid_list(ids):
    for i in ids:
        uuid.UUID(i)        # only well-formed ids are pasted into SQL
    return ",".join("('%s')" % i for i in ids)


def fates(ids):
    """
    {event id: (state or None when delivered, attempts claimed,
    [(attempt, http_status or None, started epoch, duration_ms), ...])}
    with the attempts log oldest first.
    """
    rows = psql("""
        CREATE TEMP TABLE ev (id uuid PRIMARY KEY);
        INSERT INTO ev VALUES %s;
        SELECT e.id, n.state, n.attempts,
            coalesce(string_agg(a.attempt || ':' ||
                coalesce(a.http_status::text, '-') || ':' ||
                extract(epoch FROM a.started_at)::float8 || ':' ||
                coalesce(a.duration_ms, 0), ' '
                ORDER BY a.started_at, a.attempt), '')
        FROM ev e
        LEFT JOIN dlrhook.notifications n ON n.id = e.id
        LEFT JOIN dlrhook.attempts a ON a.notification_id = e.id
        GROUP BY e.id, n.state, n.attempts""" % _uuid_list(ids))
    out = {}
    for eid, state, attempts, log in rows:
        tries = []
        for a in log.split():
            n, st, started, ms = a.split(":")
            tries.append((int(n), None if st == "-" else int(st),
                          float(started), int(ms)))
        out[eid] = (state, int(attempts) if attempts else None, tries)
    return out


# --- the web server's FastCGI processes ---------------------------------------

def fcgi_pids(url):
    """
    The set of dlrhook.fcgi pids serving url: from DLRHOOK_FCGI_PIDS_CMD (a
    shell command printing them) when set, else those descending from
    whoever listens on url's port (dlrtest.fcgi_pids). None when unknown.
    """
    cmd = os.environ.get("DLRHOOK_FCGI_PIDS_CMD", "").strip()
    if cmd:
        p = subprocess.run(cmd, shell=True, capture_output=True, text=True,
                           timeout=30)
        pids = {int(x) for x in p.stdout.split() if x.isdigit()}
        return pids or None
    return dlrtest.fcgi_pids(urllib.parse.urlsplit(url).port or 80)


def proc_usage(pid):
    """(VmRSS in KiB, open descriptors) of pid, or None if it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            rss = next(int(line.split()[1]) for line in f
                       if line.startswith("VmRSS:"))
        fds = len(os.listdir("/proc/%d/fd" % pid))
    except (OSError, StopIteration, ValueError):
        return None
    return rss, fds


# --- the operator's commands --------------------------------------------------

def shell(cmd, what, timeout=90):
    """Runs an operator command (DLRHOOK_PG_STOP/START); Failure if it fails."""
    try:
        p = subprocess.run(cmd, shell=True, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Failure("%s (%s) did not finish within %d s"
                      % (what, cmd, timeout))
    if p.returncode != 0:
        raise Failure("%s (%s) failed with exit %d: %s"
                      % (what, cmd, p.returncode,
                         (p.stderr or p.stdout).strip()))


# --- the API under load -------------------------------------------------------

class Sample:
    __slots__ = ("t0", "t1", "method", "status", "ctype", "error", "thread")

    def __init__(self, t0, t1, method, status, ctype, error, thread):
        self.t0, self.t1 = t0, t1
        self.method, self.status, self.ctype = method, status, ctype
        self.error, self.thread = error, thread

    @property
    def elapsed(self):
        return self.t1 - self.t0


class ApiLoad:
    """
    Threads that alternate GET and PUT (between two callback URLs) on one
    account's webhook over keep-alive connections, recording every answer
    with its timing, until stopped.
    """

    def __init__(self, base, key, urls, threads=4, timeout=5.0):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port or 80
        self.path = u.path.rstrip("/") + "/webhooks/delivery-status"
        self.key = key
        self.bodies = [json.dumps({"callbackUrl": x}).encode() for x in urls]
        self.timeout = timeout
        self.samples = []
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,),
                                         daemon=True) for i in range(threads)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.halt.set()
        for t in self.threads:
            t.join(self.timeout + 5)
        check(not any(t.is_alive() for t in self.threads),
              "an API load thread did not stop")

    def _run(self, ti):
        conn = None
        i = ti
        while not self.halt.is_set():
            i += 1
            put = i % 2 == 0
            method = "PUT" if put else "GET"
            headers = {"X-API-Key": self.key}
            body = None
            if put:
                body = self.bodies[(i // 2) % len(self.bodies)]
                headers["Content-Type"] = "application/json"
            t0 = time.monotonic()
            status = ctype = error = None
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port,
                                                      timeout=self.timeout)
                conn.request(method, self.path, body=body, headers=headers)
                r = conn.getresponse()
                r.read()
                status, ctype = r.status, r.getheader("Content-Type", "")
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                error = "%s: %s" % (type(e).__name__, e)
                if conn is not None:
                    conn.close()
                conn = None
            s = Sample(t0, time.monotonic(), method, status, ctype, error, ti)
            with self.lock:
                self.samples.append(s)
            if error:
                time.sleep(0.05)
        if conn is not None:
            conn.close()

    def since(self, t):
        with self.lock:
            return [s for s in self.samples if s.t0 >= t]

    def ok_after(self, t):
        """Threads that have had a 2xx to a request sent after t."""
        with self.lock:
            return {s.thread for s in self.samples
                    if s.t0 >= t and s.status is not None and
                    200 <= s.status < 300}


def burst_get(base, key, n, timeout=5.0):
    """n concurrent GETs on fresh connections (so every process is reached)."""
    u = urllib.parse.urlsplit(base)
    path = u.path.rstrip("/") + "/webhooks/delivery-status"
    out = [None] * n

    def one_get(i):
        try:
            c = http.client.HTTPConnection(u.hostname, u.port or 80,
                                           timeout=timeout)
            c.request("GET", path, headers={"X-API-Key": key})
            r = c.getresponse()
            r.read()
            out[i] = r.status
            c.close()
        except (OSError, http.client.HTTPException) as e:
            out[i] = "%s: %s" % (type(e).__name__, e)
    ts = [threading.Thread(target=one_get, args=(i,), daemon=True)
          for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout + 2)
    return out


# --- the soak: many requests, wrk when installed ------------------------------

WRK_SCRIPT = r"""
-- Written by faulttest.py: a fixed mix of API requests, a quota per thread,
-- and a count of answers by status.
local keys = { %(keys)s }
local bodies = { %(bodies)s }
local path = %(path)s
local quota = %(quota)d
local badkey = "dlr_" .. string.rep("0", 64)
local marker = %(marker)s
local i, n = 0, 0
counts = {}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function request()
  i = i + 1
  local k = keys[(i %% #keys) + 1]
  local m = i %% 10
  if m == 1 or m == 5 then
    return wrk.format("PUT", path, { ["X-API-Key"] = k,
      ["Content-Type"] = "application/json" },
      bodies[(math.floor(i / 10) %% 2) + 1])
  elseif m == 3 then
    return wrk.format("GET", path, { ["X-API-Key"] = badkey })
  elseif m == 7 then
    return wrk.format("GET", path, {})
  end
  return wrk.format("GET", path, { ["X-API-Key"] = k })
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
  n = n + 1
  if n == quota then
    -- wrk itself runs for its -d seconds: a file tells faulttest that this
    -- thread is done, and it interrupts wrk once all are.
    local f = io.open(marker .. id, "w")
    if f then f:close() end
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for s, c in pairs(t:get("counts")) do total[s] = (total[s] or 0) + c end
  end
  for s, c in pairs(total) do
    io.write(string.format("STATUS %%d %%d\n", s, c))
  end
  io.write(string.format("LATENCY_MAX_US %%d\n", latency.max))
  io.write(string.format("ERRORS %%d %%d %%d %%d %%d\n", summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.status,
    summary.errors.timeout))
end
"""


def lua_string(s):
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def soak_wrk(base, keys, urls, total, connections, workdir, limit):
    """
    total requests of the mix through wrk (2 threads); returns
    (Counter of statuses, seconds, {kind: socket errors}, max latency in s).
    Read errors are connections the server closed between requests
    (Apache's event MPM drops idle keep-alive connections when its workers
    are all busy); wrk opens another and goes on.
    """
    u = urllib.parse.urlsplit(base)
    path = u.path.rstrip("/") + "/webhooks/delivery-status"
    threads = 2
    script = os.path.join(workdir, "soak.lua")
    marker = os.path.join(workdir, "soak-%s-done-" % uuid.uuid4().hex[:8])
    with open(script, "w") as f:
        f.write(WRK_SCRIPT % {
            "keys": ", ".join(lua_string(k) for k in keys),
            "bodies": ", ".join(lua_string(json.dumps({"callbackUrl": x}))
                                for x in urls),
            "path": lua_string(path),
            "marker": lua_string(marker),
            "quota": (total + threads - 1) // threads})
    marks = [marker + str(k) for k in range(1, threads + 1)]
    out = tempfile.TemporaryFile(mode="w+")
    t0 = time.monotonic()
    p = subprocess.Popen(["wrk", "-t", str(threads), "-c", str(connections),
                          "-d", "%ds" % limit, "--timeout", "10s",
                          "-s", script, "%s://%s" % (u.scheme, u.netloc)],
                         stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        while p.poll() is None and not all(os.path.exists(m) for m in marks):
            if time.monotonic() - t0 > limit + 30:
                raise Failure("wrk did not finish within %d s" % (limit + 30))
            time.sleep(0.05)
        took = time.monotonic() - t0
        if p.poll() is None:
            p.send_signal(signal.SIGINT)    # wrk reports and exits
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            raise Failure("wrk did not exit within 30 s of SIGINT")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        for m in marks:
            if os.path.exists(m):
                os.unlink(m)
    out.seek(0)
    text = out.read()
    out.close()
    check(p.returncode == 0,
          "wrk failed (%d): %s" % (p.returncode, text[-500:]))
    counts = collections.Counter()
    errors = {}
    lat = 0.0
    for line in text.splitlines():
        w = line.split()
        if w[:1] == ["STATUS"]:
            counts[int(w[1])] += int(w[2])
        elif w[:1] == ["ERRORS"]:
            errors = dict(zip(("connect", "read", "write", "status",
                               "timeout"), (int(x) for x in w[1:6])))
            del errors["status"]    # statuses are counted one by one
        elif w[:1] == ["LATENCY_MAX_US"]:
            lat = int(w[1]) / 1e6
    check(counts, "wrk reported no answers: %s" % text[-500:])
    return counts, took, errors, lat


def soak_python(base, keys, urls, total, connections, limit):
    """The same mix from Python threads with keep-alive connections."""
    u = urllib.parse.urlsplit(base)
    path = u.path.rstrip("/") + "/webhooks/delivery-status"
    bodies = [json.dumps({"callbackUrl": x}).encode() for x in urls]
    counts = collections.Counter()
    errors = collections.Counter()
    lat = [0.0]
    lock = threading.Lock()
    per = (total + connections - 1) // connections
    deadline = time.monotonic() + limit

    def worker(wi):
        mine, err, worst = collections.Counter(), collections.Counter(), 0.0
        conn = None
        for i in range(wi, wi + per):
            if time.monotonic() > deadline:
                break
            m = i % 10
            k = keys[i % len(keys)]
            headers, body, method = {"X-API-Key": k}, None, "GET"
            if m in (1, 5):
                method, body = "PUT", bodies[(i // 10) % 2]
                headers["Content-Type"] = "application/json"
            elif m == 3:
                headers["X-API-Key"] = "dlr_" + "0" * 64
            elif m == 7:
                headers = {}
            t0 = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(u.hostname, u.port or 80,
                                                      timeout=10)
                conn.request(method, path, body=body, headers=headers)
                r = conn.getresponse()
                r.read()
                mine[r.status] += 1
            except (OSError, http.client.HTTPException) as e:
                err["timeout" if isinstance(e, TimeoutError) else "read"] += 1
                if conn is not None:
                    conn.close()
                conn = None
            worst = max(worst, time.monotonic() - t0)
        if conn is not None:
            conn.close()
        with lock:
            counts.update(mine)
            errors.update(err)
            lat[0] = max(lat[0], worst)
    t0 = time.monotonic()
    ts = [threading.Thread(target=worker, args=(w * per,), daemon=True)
          for w in range(connections)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(max(1.0, deadline - time.monotonic() + 15))
    return counts, time.monotonic() - t0, dict(errors), lat[0]


# --- runner -------------------------------------------------------------------

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Notes:
    """What a test measured, printed on its line."""

    def __init__(self):
        self.items = []

    def __call__(self, fmt, *args):
        self.items.append(fmt % args if args else fmt)

    def text(self):
        return "; ".join(self.items)


def unique(name):
    return "%s-%s" % (name.replace("_", "-"), uuid.uuid4().hex[:8])


def run(setup, teardown, argv=()):
    """
    Runs the tests argv selects (dlrtest.pick: --list, -k SUBSTRING,
    names): one line each, "ok - name (secs): notes" or "not ok - name
    (secs): reason [notes]", then "N passed, N failed". Returns the exit
    status.
    """
    tests = dlrtest.pick(argv, TESTS)
    passed = failed = 0
    try:
        ctx = setup()
    except Exception as e:  # noqa: BLE001 - reported as the reason
        print("not ok - setup: %s" % e, flush=True)
        print("0 passed, %d failed" % (len(tests) + 1))
        return 1
    try:
        for fn in tests:
            t0 = time.monotonic()
            notes = Notes()
            ctx.note = notes
            try:
                fn(ctx)
                passed += 1
                line = "ok - %s (%.1f s)" % (fn.__name__,
                                             time.monotonic() - t0)
                if notes.items:
                    line += ": " + notes.text()
            except Failure as e:
                failed += 1
                line = "not ok - %s (%.1f s): %s" % (
                    fn.__name__, time.monotonic() - t0, e)
                if notes.items:
                    line += " [measured: %s]" % notes.text()
            except Exception:  # noqa: BLE001 - a broken test is a failure
                failed += 1
                line = "not ok - %s (%.1f s): %s" % (
                    fn.__name__, time.monotonic() - t0,
                    traceback.format_exc().strip().replace("\n", "\n    "))
            finally:
                ctx.cleanup()
            print(line, flush=True)
    finally:
        teardown(ctx)
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 0 if failed == 0 else 1


def kill_if_running(proc):
    """SIGKILLs a Popen we started if it still runs, and reaps it."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            pass


def sender_log_lines(text, pattern):
    return [ln for ln in text.splitlines() if re.search(pattern, ln)]

