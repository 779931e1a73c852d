#!/usr/bin/env python3
"""test_secrets_in_logs: no API key and no signing secret in any log or
error body.

Usage: python3 tests/integration/test_secrets_in_logs.py [-k substring] [--list] [name...]

Runs one scenario through the real stack, with PostgreSQL's statement log
turned on for its duration (log_min_duration_statement = 0, so every
statement and its bind parameters would be logged if allowed):
  - two customers create webhooks (one with "HTTPS://" in upper case, which
    used to fail in the database and log the new secret), read them, read
    and rotate the secret twice, PUT, and send bad requests (400, 405, 409,
    413, 415, unknown path) with their valid keys;
  - requests with wrong keys: near misses of a real key (one character
    changed, truncated, extended), a revoked key, a random key (401);
  - a failing statement on a webhook row, called as dlrhook_api directly
    (the table's CHECK refuses it; PostgreSQL must not log the row);
  - events recorded, then the sender run twice (--once, DLRHOOK_DEBUG=1)
    against tests/receiver.py: a 500, a redirect, a 410 Gone, then TLS
    failures (the receiver's CA not trusted);
then searches, for every key (whole and its hex part) and every secret seen
(whole, its base64 part, and the key bytes in hex):
  - every HTTP response, headers and body, except the three kinds that are
    there to show a secret (201, GET secret, rotation), which must show only
    their own;
  - the sender's stderr;
  - every file in DLRHOOK_LOG_FILES (web server error and access logs,
    PostgreSQL's log);
  - what the receiver was sent (headers and body);
  - the attempts log and the error columns in the database.
A failure lists each place a needle was found (file and line).

Environment:
  DLRHOOK_URL               API base (private callback URLs allowed or not:
                            when refused, the test points the webhooks at
                            the receiver with psql instead)
  PGHOST PGPORT PGDATABASE PGUSER
                            a superuser connection to the same database
                            (dlrhook_api must be able to log in the same way)
  DLRHOOK_SEND              the sender binary (src/dlrhook-send)
  DLRHOOK_SENDER_DATABASE   the sender's conninfo (role dlrhook_sender)
  DLRHOOK_LOG_FILES         colon-separated paths of every log to search:
                            the web servers' error (and access) logs and
                            PostgreSQL's log
  DLRHOOK_SECRETS_STATEMENT_LOG=0
                            leave PostgreSQL's statement logging alone
                            (default: on during the scenario, via ALTER
                            SYSTEM, and reset afterwards)

No other sender may work on the database meanwhile (as for the delivery
suite). Prints one line per test and "N passed, N failed".
"""

import base64
import binascii
import hashlib
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import traceback

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import dlrtest  # noqa: E402
from dlrtest import (BODY_MAX, RESOURCE, ROTATE, SECRET, Failure,  # noqa: E402
                     callback_body, check, padded_body)
from deltest import (Receiver, Sender, one, psql, rmtree,  # noqa: E402
                     unique)

API_ROLE = "dlrhook_api"
STATEMENT_LOG = os.environ.get("DLRHOOK_SECRETS_STATEMENT_LOG", "1") != "0"


class Ctx:
    def __init__(self):
        self.api = dlrtest.Api(dlrtest.CONFIG)
        self.workdir = None     # made by the scenario, not at import
        self.rcv = None
        self.send = None
        self.accounts = []
        self.keys = {}          # label -> API key (or submitted key material)
        self.secrets = {}       # label -> whsec_ secret
        self.responses = []     # (label, Response, allowed secret or None)
        self.stderr = []        # (label, text)
        self.paths = []         # receiver path prefixes used
        self.log_files = [p for p in os.environ.get(
            "DLRHOOK_LOG_FILES", "").split(":") if p]
        self.log_sizes = {}
        self.statement_log = False
        self.done = False
        self.check_violation_logged = None
        self.mismatches = []    # unexpected statuses of the soft steps


CTX = Ctx()


# --- needles -----------------------------------------------------------------

def needles(ctx):
    """(label, text) for everything that must not show up."""
    out = []
    for label, key in ctx.keys.items():
        out.append(("API key %s" % label, key))
        if key.startswith("dlr_") and len(key) > 20:
            out.append(("hex part of API key %s" % label, key[4:]))
    for label, s in ctx.secrets.items():
        b64 = s[len("whsec_"):]
        out.append(("signing secret %s" % label, s))
        out.append(("base64 part of signing secret %s" % label,
                    b64.rstrip("=")))
        try:
            raw = base64.b64decode(b64, validate=True)
            out.append(("HMAC key of signing secret %s in hex" % label,
                        raw.hex()))
        except (binascii.Error, ValueError):
            pass
    return out


def search(ctx, where, text, exclude=()):
    """Places where a needle occurs in text: ["needle in where:line"]."""
    found = []
    for label, n in needles(ctx):
        if label in exclude or not n:
            continue
        start = 0
        while True:
            i = text.find(n, start)
            if i < 0:
                break
            line = text.count("\n", 0, i) + 1
            found.append("%s in %s:%d" % (label, where, line))
            start = i + len(n)
            if len(found) > 50:
                return found
    return found


# --- the scenario ------------------------------------------------------------

def new_customer(ctx, label):
    a = dlrtest.Db().account("secrets-" + label)
    ctx.accounts.append(a.id)
    ctx.keys[label] = a.key
    return a


def http(ctx, label, method, path, key, body=None, ctype=None, allowed=None,
         want=None, soft=False):
    """One request, kept for the searches. A soft step notes a wrong
    status and goes on (so the searches still see what it caused)."""
    r = ctx.api.request(method, path, body=body, key=key, ctype=ctype)
    ctx.responses.append((label, r, allowed))
    if want is not None and r.status != want:
        msg = "%s: want %d, got %s" % (label, want, r.describe())
        if not soft:
            raise Failure(msg)
        ctx.mismatches.append(msg)
    return r


def point_at(ctx, acct, label, path):
    """The webhook of acct goes to the receiver's path: by PUT when the API
    accepts loopback URLs, else directly in the database."""
    url = ctx.rcv.url(path)
    r = http(ctx, "PUT %s to the receiver" % label, "PUT", RESOURCE,
             acct.key, body=callback_body(url), ctype="application/json")
    if r.status == 400:
        psql("UPDATE dlrhook.webhooks SET callback_url = :'u' "
             "WHERE account_id = :a", u=url, a=acct.id)
    else:
        check(r.status == 200, "PUT to the receiver: %s" % r.describe())
    ctx.paths.append(path)


def set_statement_log(on):
    if on:
        psql("ALTER SYSTEM SET log_min_duration_statement = 0")
    else:
        psql("ALTER SYSTEM RESET log_min_duration_statement")
    psql("SELECT pg_reload_conf()")
    time.sleep(0.3)     # backends take the new setting at their next command


def run_sender(ctx, label, **kw):
    rc, err = ctx.send.run("--once", "--retry-schedule", "1h",
                           "--timeout", "5", "--connect-timeout", "3",
                           "--max-seconds", "20",
                           extra_env={"DLRHOOK_DEBUG": "1"}, **kw)
    ctx.stderr.append((label, err))
    check(rc == 0, "%s exited %d: %s" % (label, rc, err[-1000:]))
    return err


def scenario(ctx):
    missing = [v for v in ("DLRHOOK_URL", "PGDATABASE", "DLRHOOK_SEND",
                           "DLRHOOK_SENDER_DATABASE") if not os.environ.get(v)]
    check(not missing, "%s not set" % ", ".join(missing))
    check(dlrtest.CONFIG.error is None, dlrtest.CONFIG.error or "")
    ctx.workdir = tempfile.mkdtemp(prefix="secrets-")
    ctx.rcv = Receiver(ctx.workdir)
    ctx.send = Sender(os.environ["DLRHOOK_SEND"],
                      os.environ["DLRHOOK_SENDER_DATABASE"], ctx.rcv.ca)
    why = ctx.send.problem()
    check(why is None, why or "")

    a = new_customer(ctx, "A")
    b = new_customer(ctx, "B")
    a2 = dlrtest.Db().new_key(a.id)
    ctx.keys["A (second, revoked)"] = a2
    # Revoked by hash, so that the plaintext is in no SQL text.
    psql("UPDATE dlrhook.api_keys SET revoked_at = now() "
         "WHERE key_hash = decode(:'h', 'hex')",
         h=hashlib.sha256(a2.encode()).hexdigest())

    if STATEMENT_LOG:
        set_statement_log(True)
        ctx.statement_log = True

    # A: the whole life of a webhook, with its valid key.
    r = http(ctx, "POST A", "POST", RESOURCE, a.key,
             body=callback_body("https://example.com/a"),
             ctype="application/json", want=201)
    ctx.secrets["A1"] = r.json()["signingSecret"]
    ctx.responses[-1] = ("POST A", r, "A1")
    http(ctx, "GET A", "GET", RESOURCE, a.key, want=200)
    r = http(ctx, "GET secret A", "GET", SECRET, a.key, want=200,
             allowed="A1")
    check(r.json().get("signingSecret") == ctx.secrets["A1"],
          "GET secret gave %r" % r.body)
    for n in (2, 3):
        r = http(ctx, "rotate A #%d" % (n - 1), "POST", ROTATE, a.key,
                 want=200)
        ctx.secrets["A%d" % n] = r.json()["signingSecret"]
        ctx.responses[-1] = ("rotate A #%d" % (n - 1), r, "A%d" % n)
    http(ctx, "GET secret A after rotations", "GET", SECRET, a.key, want=200,
         allowed="A3")
    http(ctx, "POST A again (409)", "POST", RESOURCE, a.key,
         body=callback_body("https://example.com/a2"),
         ctype="application/json", want=409)
    http(ctx, "PUT A with a bad URL (400)", "PUT", RESOURCE, a.key,
         body=callback_body("http://example.com/"), ctype="application/json",
         want=400)
    http(ctx, "PUT A with bad JSON (400)", "PUT", RESOURCE, a.key,
         body=b'{"callbackUrl":', ctype="application/json", want=400)
    http(ctx, "PUT A as text/plain (415)", "PUT", RESOURCE, a.key,
         body=callback_body("https://example.com/a"), ctype="text/plain",
         want=415)
    http(ctx, "PUT A 65537 bytes (413)", "PUT", RESOURCE, a.key,
         body=padded_body("https://example.com/a", BODY_MAX + 1),
         ctype="application/json", want=413)
    http(ctx, "PATCH A (405)", "PATCH", RESOURCE, a.key, want=405)
    http(ctx, "GET an unknown path with A's key (404)", "GET",
         "/webhooks/nope", a.key, want=404)

    r = http(ctx, "POST B", "POST", RESOURCE, b.key,
             body=callback_body("https://example.com/b"),
             ctype="application/json", want=201)
    ctx.secrets["B1"] = r.json()["signingSecret"]
    ctx.responses[-1] = ("POST B", r, "B1")

    # D: an upper-case scheme, then URLs the database refuses. Before the
    # fix (src/url.c, src/body.c) these were 500s, and PostgreSQL logged
    # the failing row, the new or current secret in it.
    d = new_customer(ctx, "D")
    r = http(ctx, "POST D with HTTPS:// in upper case", "POST", RESOURCE,
             d.key, body=callback_body("HTTPS://EXAMPLE.COM/d"),
             ctype="application/json", want=201, soft=True)
    if r.status == 201:
        ctx.secrets["D1"] = r.json()["signingSecret"]
        ctx.responses[-1] = ("POST D", r, "D1")
    else:
        http(ctx, "POST D", "POST", RESOURCE, d.key,
             body=callback_body("https://example.com/d"),
             ctype="application/json", want=201)
        ctx.secrets["D1"] = ctx.responses[-1][1].json()["signingSecret"]
        ctx.responses[-1] = ("POST D", ctx.responses[-1][1], "D1")
    http(ctx, "PUT D https:/ with one slash (400)", "PUT", RESOURCE, d.key,
         body=callback_body("https:/example.com/d"),
         ctype="application/json", want=400, soft=True)
    http(ctx, "PUT D overlong UTF-8 (400)", "PUT", RESOURCE, d.key,
         body=b'{"callbackUrl":"https://example.com/\xc0\xaf"}',
         ctype="application/json", want=400, soft=True)

    # Wrong keys: near misses of A's key, the revoked key, a random one.
    k = a.key
    wrong = {"A with one character changed":
             k[:-1] + ("0" if k[-1] != "0" else "1"),
             "A truncated": k[:-1], "A extended": k + "0",
             "A in upper case": k.upper(),
             "random": "dlr_" + secrets.token_hex(32)}
    for label, key in wrong.items():
        ctx.keys["submitted: " + label] = key
    for label, key in list(wrong.items()) + [("A (revoked)", a2)]:
        for method, path, body in (("GET", RESOURCE, None),
                                   ("GET", SECRET, None),
                                   ("POST", ROTATE, None),
                                   ("PUT", RESOURCE, callback_body(
                                       "https://example.com/x"))):
            http(ctx, "%s %s with key %s" % (method, path, label), method,
                 path, key, body=body,
                 ctype="application/json" if body else None, want=401)

    # A failing statement on A's webhook row, as the API role directly:
    # the failing row holds A3 and A2; PostgreSQL must not log it.
    env = dict(os.environ, PGUSER=API_ROLE)
    p = subprocess.run(
        ["psql", "-X", "-q", "-At", "-c",
         "SELECT outcome FROM dlrhook.api_webhook_replace(decode('%s', "
         "'hex'), 'http://not-https.example/')"
         % hashlib.sha256(a.key.encode()).hexdigest()],
        capture_output=True, text=True, env=env, timeout=30)
    check(p.returncode != 0 and "webhooks_callback_url_check" in p.stderr,
          "want the CHECK to refuse it: exit %d %s" % (p.returncode,
                                                     p.stderr.strip()))
    ctx.check_violation_logged = "webhooks_callback_url_check"

    # Delivery: A fails with 500, B gets a redirect, C says 410 Gone.
    c = new_customer(ctx, "C")
    r = http(ctx, "POST C", "POST", RESOURCE, c.key,
             body=callback_body("https://example.com/c"),
             ctype="application/json", want=201)
    ctx.secrets["C1"] = r.json()["signingSecret"]
    ctx.responses[-1] = ("POST C", r, "C1")
    point_at(ctx, a, "A", "/fail/" + unique("secrets-a"))
    point_at(ctx, b, "B", "/redirect/" + unique("secrets-b"))
    point_at(ctx, c, "C", "/gone/" + unique("secrets-c"))
    events = []
    for acct, n in ((a, 2), (b, 1), (c, 1)):
        for i in range(n):
            events.append(one(
                "SELECT dlrhook.record_delivery_status(:a, :'m', 'SMS', "
                "'DELIVERED', now(), p_error_code => 'E1', "
                "p_error_description => 'secret-looking text')",
                a=acct.id, m="secrets-%d" % i))
    check(all(events), "record_delivery_status gave %r" % events)
    run_sender(ctx, "sender run 1 (CA trusted)")
    got = {r["path"]: r["status"] for r in ctx.rcv.requests("/")}
    for path, want in ((ctx.paths[0], 500), (ctx.paths[1], 302),
                       (ctx.paths[2], 410)):
        check(got.get(path) == want, "the receiver did not answer %s %d "
              "(saw %r)" % (path, want, got))
    # Again, now without the receiver's CA: TLS verification fails.
    psql("UPDATE dlrhook.notifications SET next_attempt_at = now() "
         "WHERE account_id IN (:a, :b) AND state = 'pending'",
         a=a.id, b=b.id)
    run_sender(ctx, "sender run 2 (CA not trusted)", ca=False)
    n = int(one("SELECT count(*) FROM dlrhook.attempts WHERE account_id IN "
                "(:a, :b, :c)", a=a.id, b=b.id, c=c.id))
    check(n >= 6, "want at least 6 attempts logged, got %d" % n)
    check(not ctx.mismatches, "; ".join(ctx.mismatches))
    ctx.done = True


# --- the searches ------------------------------------------------------------

def test_scenario(ctx):
    scenario(ctx)


def test_no_key_or_secret_in_error_and_webhook_responses(ctx):
    check(ctx.responses, "no responses (the scenario did not run)")
    found = []
    for label, r, allowed in ctx.responses:
        if allowed is not None:
            continue
        text = "%s\n%s" % ("\n".join("%s: %s" % kv for kv in r._headers),
                           r.body.decode("utf-8", "replace"))
        found += search(ctx, "response to %s" % label, text)
    check(not found, "; ".join(found))


def test_secret_responses_show_only_their_own_secret(ctx):
    found = []
    n = 0
    for label, r, allowed in ctx.responses:
        if allowed is None:
            continue
        n += 1
        own = ctx.secrets[allowed]
        body = r.body.decode("utf-8", "replace")
        check(own in body, "%s does not show its secret" % label)
        exclude = {"signing secret %s" % allowed,
                   "base64 part of signing secret %s" % allowed}
        text = "%s\n%s" % ("\n".join("%s: %s" % kv for kv in r._headers),
                           body)
        found += search(ctx, "response to %s" % label, text, exclude)
    check(n >= 6, "only %d secret-bearing responses" % n)
    check(not found, "; ".join(found))


def test_no_key_or_secret_in_sender_stderr(ctx):
    check(ctx.stderr, "the sender did not run")
    found = []
    for label, text in ctx.stderr:
        found += search(ctx, label, text)
    check(not found, "; ".join(found))
    joined = "\n".join(t for _, t in ctx.stderr)
    check(re.search(r"failed: HTTP 500", joined),
          "the sender's stderr does not mention the 500: is this the log?")


def test_no_key_or_secret_in_log_files(ctx):
    check(ctx.log_files, "DLRHOOK_LOG_FILES is empty: dev/test must list the "
          "web servers' error logs and PostgreSQL's log")
    found, missing, seen_error = [], [], False
    for path in ctx.log_files:
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError as e:
            missing.append("%s (%s)" % (path, e.strerror))
            continue
        found += search(ctx, path, text)
        if ctx.check_violation_logged and \
                ctx.check_violation_logged in text:
            seen_error = True
    check(not missing, "cannot read %s" % ", ".join(missing))
    check(not found, "; ".join(found))
    if ctx.check_violation_logged:
        check(seen_error, "no log file has the CHECK violation the scenario "
              "caused: is PostgreSQL's log in DLRHOOK_LOG_FILES?")


def test_statement_log_was_on_and_shows_no_parameters(ctx):
    if not STATEMENT_LOG:
        print("# DLRHOOK_SECRETS_STATEMENT_LOG=0: not checked",
              file=sys.stderr)
        return
    check(ctx.statement_log, "statement logging was not turned on")
    hits = 0
    for path in ctx.log_files:
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        hits += len(re.findall(r"duration: .*api_secret_rotate", text))
    check(hits >= 2, "PostgreSQL's log shows %d timed api_secret_rotate "
          "statements, want 2 or more: the searched logs did not cover the "
          "statement log" % hits)


def test_no_key_or_secret_in_what_the_receiver_got(ctx):
    check(ctx.rcv is not None and ctx.paths, "no receiver")
    found, n = [], 0
    for path in ctx.paths:
        for req in ctx.rcv.requests(path):
            n += 1
            text = "%s %s?%s\n%s\n%s" % (
                req["method"], req["path"], req["query"],
                "\n".join("%s: %s" % kv for kv in req["headers"].items()),
                req["body"].decode("utf-8", "replace"))
            found += search(ctx, "request to the receiver at %s" % path, text)
            check(req["headers"].get("webhook-signature", "").startswith(
                "v1,"), "a delivery without a v1 signature: %r"
                % req["headers"])
    check(n >= 4, "the receiver got %d requests, want 4 or more" % n)
    check(not found, "; ".join(found))


def test_no_key_or_secret_in_the_database_logs(ctx):
    ids = ",".join(str(i) for i in ctx.accounts) or "0"
    rows = psql("SELECT 'attempts', coalesce(error, '') || ' ' || "
                "coalesce(response_excerpt, '') || ' ' || coalesce(url, '') "
                "FROM dlrhook.attempts WHERE account_id IN (%s) "
                "UNION ALL SELECT 'notifications.last_error', "
                "coalesce(last_error, '') FROM dlrhook.notifications "
                "WHERE account_id IN (%s) UNION ALL SELECT "
                "'webhooks.disabled_reason', coalesce(disabled_reason, '') "
                "FROM dlrhook.webhooks WHERE account_id IN (%s)"
                % (ids, ids, ids))
    check(rows, "nothing logged in the database for the scenario")
    found = []
    for where, text in rows:
        found += search(ctx, "dlrhook." + where, text or "")
    check(not found, "; ".join(found))


TESTS = [test_scenario,
         test_no_key_or_secret_in_error_and_webhook_responses,
         test_secret_responses_show_only_their_own_secret,
         test_no_key_or_secret_in_sender_stderr,
         test_no_key_or_secret_in_log_files,
         test_statement_log_was_on_and_shows_no_parameters,
         test_no_key_or_secret_in_what_the_receiver_got,
         test_no_key_or_secret_in_the_database_logs]


def cleanup(ctx):
    errors = []
    if ctx.statement_log:
        try:
            set_statement_log(False)
        except Exception as e:  # noqa: BLE001 - reported
            errors.append("resetting log_min_duration_statement: %s" % e)
    if ctx.accounts:
        try:
            ids = ",".join(str(i) for i in ctx.accounts)
            psql("DELETE FROM dlrhook.attempts WHERE account_id IN (%s);"
                 "DELETE FROM dlrhook.accounts WHERE id IN (%s)" % (ids, ids))
        except Exception as e:  # noqa: BLE001
            errors.append("deleting the accounts: %s" % e)
    if ctx.rcv is not None:
        ctx.rcv.stop()
    if ctx.workdir is not None:
        rmtree(ctx.workdir)
    return errors


def main(argv):
    chosen = dlrtest.pick(argv, TESTS, lambda fn: fn.__name__[len("test_"):])
    # The others search what the scenario left.
    if test_scenario not in chosen:
        chosen.insert(0, test_scenario)
    passed = failed = 0
    t0 = time.monotonic()
    try:
        for fn in chosen:
            name = fn.__name__[len("test_"):]
            try:
                fn(CTX)
            except Failure as e:
                print("FAIL %s: %s" % (name, e), flush=True)
                failed += 1
            except Exception as e:  # a broken test is a failure
                print("FAIL %s: unexpected %s: %s\n%s"
                      % (name, type(e).__name__, e,
                         traceback.format_exc()), flush=True)
                failed += 1
            else:
                print("ok %s" % name, flush=True)
                passed += 1
    finally:
        for e in cleanup(CTX):
            print("FAIL cleanup: %s" % e, flush=True)
            failed += 1
    print("# %.1f s" % (time.monotonic() - t0), file=sys.stderr)
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
