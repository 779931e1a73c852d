#!/usr/bin/env python3
"""test_delivery.py: the delivery pipeline end to end.

Events are recorded with record_delivery_status (as the platform would),
webhooks are managed through the API (as a customer would), the real
sender binary delivers them to tests/receiver.py over HTTPS, and the
receiver's log and the attempts table show what happened.

Environment:
  DLRHOOK_URL               API base; $DLRHOOK_URL/webhooks/delivery-status
                            (the API must run with DLRHOOK_ALLOW_PRIVATE=1)
  PGHOST PGPORT PGDATABASE PGUSER
                            a superuser connection to the same database
  DLRHOOK_SEND              the sender binary (src/dlrhook-send)
  DLRHOOK_SENDER_DATABASE   the conninfo the sender uses (role dlrhook_sender)

No other sender may work on the database meanwhile. Arguments, if any,
select the tests whose names contain one of them. Prints one line per test
and "N passed, N failed"; exits non-zero when a test failed.
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deltest import (Api, Customer, Failure, Receiver, Sender, SqlError,  # noqa: E402
                     attempts_of, check, free_port, notification, one, psql,
                     rmtree, run, stderr_of, stop, test, unique, wait_for)
from receiver import QUOTED_BODY  # noqa: E402

KEY_ORDER = ["eventId", "eventType", "messageId", "customerMessageId",
             "channel", "status", "channelStatus", "timestamp", "destination",
             "error"]
JITTER = 0.2
SLACK = 0.7     # seconds a retry may start late: finish, wake-up, claim


class Ctx:
    def __init__(self):
        self.workdir = tempfile.mkdtemp(prefix="deltest-")
        self.api = Api(os.environ.get("DLRHOOK_URL", ""))
        self.rcv = None
        self.customers = []

    def customer(self, name):
        c = Customer(self.api, name)
        self.customers.append(c)
        return c

    def hook(self, kind, name, query=""):
        """A customer whose webhook points at receiver path /kind/<unique>."""
        c = self.customer(name)
        path = "/%s/%s" % (kind, unique(name))
        c.create(self.rcv.url(path + ("?" + query if query else "")))
        return c, path


def setup():
    missing = [v for v in ("DLRHOOK_URL", "PGDATABASE") if not os.environ.get(v)]
    if missing:
        raise Failure("%s not set" % ", ".join(missing))
    ctx = Ctx()
    one("SELECT 1")
    ctx.rcv = Receiver(ctx.workdir)
    ctx.send = Sender(os.environ.get("DLRHOOK_SEND", ""),
                      os.environ.get("DLRHOOK_SENDER_DATABASE", ""),
                      ctx.rcv.ca)
    return ctx


def teardown(ctx):
    if ctx is None:
        return
    if ctx.rcv is not None:
        ctx.rcv.stop()
    rmtree(ctx.workdir)


def body_of(req):
    """The JSON body as a list of (key, value) pairs, in the order sent."""
    try:
        return json.loads(req["body"].decode("utf-8"), object_pairs_hook=list)
    except ValueError as e:
        raise Failure("body is not JSON (%s): %r" % (e, req["body"][:200]))


def ids_of(reqs):
    return [r["headers"].get("webhook-id") for r in reqs]


def wait_due(event_id, timeout=10):
    wait_for("notification %s to be due" % event_id,
             lambda: notification(event_id)["due_in"] <= 0, timeout)


def only_attempt(event_id):
    a = attempts_of(event_id)
    check(len(a) == 1, "want one attempt of %s, got %r" % (event_id, a))
    return a[0]


def pending_retry(event_id, low, high):
    """The notification is pending with its next attempt in [low, high] s."""
    n = notification(event_id)
    check(n is not None and n["state"] == "pending",
          "want %s pending for a retry, got %r" % (event_id, n))
    check(low <= n["due_in"] <= high,
          "next attempt of %s in %.1f s, want %.0f..%.0f s"
          % (event_id, n["due_in"], low, high))


# --- the database alone ------------------------------------------------------

@test
def no_other_sender_uses_this_database(ctx):
    n = int(one("""SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database()
            AND application_name = 'dlrhook-send'"""))
    check(n == 0, "%d dlrhook-send connection(s) on this database would "
          "take the tests' notifications: stop that sender" % n)


@test
def record_rejects_bad_input_with_clear_errors(ctx):
    c = ctx.customer("badinput")
    cases = [
        ("'sms', 'SENT', now()", "22023", "unknown channel"),
        ("'FAX', 'SENT', now()", "22023", "unknown channel"),
        ("'SMS', 'OPENED', now()", "22023", "unknown status"),
        ("'SMS', 'READ', now()", "22023", "READ does not exist for channel SMS"),
        ("'SMS', 'SENT', NULL", "22004", "occurred_at is NULL"),
    ]
    for args, code, text in cases:
        try:
            psql("\\set VERBOSITY verbose\nSELECT dlrhook.record_delivery_status("
                 ":a, 'm1', %s)" % args, a=c.account)
        except SqlError as e:
            check(code in e.stderr and text in e.stderr,
                  "(%s): want %s %r, got %s" % (args, code, text, e.stderr))
        else:
            raise Failure("record_delivery_status(%s) was accepted" % args)
    for mid in ("NULL", "''"):
        try:
            psql("SELECT dlrhook.record_delivery_status(:a, %s, 'SMS', 'SENT', "
                 "now())" % mid, a=c.account)
        except SqlError as e:
            check("message id" in e.stderr, "message id %s: %s" % (mid, e.stderr))
        else:
            raise Failure("message id %s was accepted" % mid)


@test
def concurrent_claims_are_disjoint_and_stale_finishes_change_nothing(ctx):
    c, _ = ctx.hook("ok", "claims")
    events = {c.record("claim-%d" % i) for i in range(4)}
    claim = ("SELECT notification_id FROM dlrhook.sender_claim(%d, 60) "
             "WHERE notification_id = ANY (:'ids'::uuid[])")
    ids = "{%s}" % ",".join(events)
    # Session A holds its claim open while B claims.
    a = subprocess.Popen(
        ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-v", "ids=" + ids],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    a.stdin.write("SET ROLE dlrhook_sender;\nBEGIN;\n" + claim % 2 +
                  ";\nSELECT pg_sleep(2);\nCOMMIT;\n")
    a.stdin.flush()
    wait_for("session A to hold its claim", lambda: int(one(
        "SELECT count(*) FROM pg_locks l JOIN pg_class r ON r.oid = l.relation "
        "WHERE r.relname = 'notifications' AND l.mode = 'RowShareLock' "
        "AND l.pid <> pg_backend_pid()")) > 0, timeout=5)
    got_b = {r[0] for r in psql(claim % 10, role="dlrhook_sender", ids=ids)}
    out, err = a.communicate(timeout=20)     # closes stdin: A ends
    check(a.returncode == 0, "session A failed: %s" % err)
    got_a = set(out.split())
    check(len(got_a) == 2 and len(got_b) == 2,
          "A claimed %d, B %d of 4 (want 2 and 2)" % (len(got_a), len(got_b)))
    check(not got_a & got_b, "both sessions claimed %s" % (got_a & got_b))

    # Fencing: the lease of one runs out, it is claimed again (attempt 2);
    # the first claimant's late "delivered" must change nothing.
    eid = sorted(got_a)[0]
    psql("UPDATE dlrhook.notifications SET next_attempt_at = now() "
         "WHERE id = :'id'", id=eid)
    again = psql(claim % 10, role="dlrhook_sender",
                 ids="{%s}" % eid)
    check(again == [[eid]], "the expired lease was not claimed again: %r" % again)
    finish = ("SELECT dlrhook.sender_finish(ARRAY[:'id'::uuid], ARRAY[:n::int], "
              "'{delivered}', '{NULL}', '{204}', '{NULL}', '{NULL}', '{5}', "
              "ARRAY[clock_timestamp()], ARRAY['https://x.invalid/'])")
    applied = one(finish, id=eid, n=1)
    n = notification(eid)
    check(applied == "0" and n is not None and n["attempts"] == 2,
          "a finish of stale attempt 1 applied %s, row now %r" % (applied, n))
    applied = one(finish, id=eid, n=2)
    check(applied == "1" and notification(eid) is None,
          "the finish of attempt 2 applied %s; row %r" % (applied, notification(eid)))
    try:
        psql("SELECT count(*) FROM dlrhook.notifications", role="dlrhook_sender")
    except SqlError:
        pass
    else:
        raise Failure("dlrhook_sender can read the notifications table")


@test
def a_claim_passes_over_the_webhooks_it_is_told_to_skip(ctx):
    # The sender names the webhooks of hosts at their --per-host cap; their
    # rows must stay as they were (no attempt counted, no lease) while the
    # others are claimed, and a later claim without them takes them.
    slow, _ = ctx.hook("ok", "skip-slow")
    fast, _ = ctx.hook("ok", "skip-fast")
    held = {slow.record("skip-s-%d" % i) for i in range(3)}
    taken = {fast.record("skip-f-%d" % i) for i in range(3)}
    skip = one("SELECT id FROM dlrhook.webhooks WHERE account_id = :a",
               a=slow.account)
    claim = ("SELECT notification_id FROM dlrhook.sender_claim(100, 60, "
             ":'skip'::text[]) WHERE notification_id = ANY (:'ids'::uuid[])")
    ids = "{%s}" % ",".join(held | taken)
    got = {r[0] for r in psql(claim, role="dlrhook_sender", ids=ids,
                              skip="{%s}" % skip)}
    check(got == taken, "claimed %r, want only the other webhook's %r"
          % (got, taken))
    for e in held:
        n = notification(e)
        check(n is not None and n["state"] == "pending" and
              n["attempts"] == 0 and n["due_in"] <= 0,
              "skipped %s is %r (want untouched: pending, 0 attempts, due)"
              % (e, n))
    got = {r[0] for r in psql(claim, role="dlrhook_sender", ids=ids,
                              skip="{}")}
    check(got == held, "without the skip list, claimed %r, want %r"
          % (got, held))
    # Leased, never to be sent: out of the way of the tests after this one.
    psql("DELETE FROM dlrhook.notifications WHERE id = ANY (:'ids'::uuid[])",
         ids=ids)


@test
def a_claim_caps_rows_per_webhook_and_a_release_gives_them_back(ctx):
    # The sender claims ahead of its slots, at most its --per-host cap of
    # one webhook per claim; what it claimed and never sent (a stop) it
    # gives back: due again at once, the attempt not counted, no attempt
    # logged, and a stale release (another claim took it since) is ignored.
    big, _ = ctx.hook("ok", "cap-big")
    small, _ = ctx.hook("ok", "cap-small")
    many = [big.record("cap-b-%d" % i) for i in range(5)]
    few = [small.record("cap-s-%d" % i) for i in range(2)]
    ids = "{%s}" % ",".join(many + few)
    got = psql("SELECT notification_id, attempt FROM dlrhook.sender_claim("
               "100, 60, '{}', 2) WHERE notification_id = ANY (:'ids'::uuid[])",
               role="dlrhook_sender", ids=ids)
    claimed = {r[0]: int(r[1]) for r in got}
    check(len(set(many) & set(claimed)) == 2 and set(few) <= set(claimed)
          and len(claimed) == 4,
          "claimed %r: want 2 of the 5 of one webhook and both of the other"
          % sorted(claimed))
    check(set(many[:2]) <= set(claimed),
          "the cap took %r, not the first due" % sorted(claimed))
    for e in many[2:]:
        n = notification(e)
        check(n["attempts"] == 0 and n["due_in"] <= 0,
              "%s over the cap is %r (want untouched)" % (e, n))
    release = ("SELECT dlrhook.sender_release(:'ids'::uuid[], :'att'::int[])")
    back = one(release, role="dlrhook_sender",
               ids="{%s}" % ",".join(claimed),
               att="{%s}" % ",".join(str(a) for a in claimed.values()))
    check(back == "4", "released %s of 4" % back)
    for e in claimed:
        n = notification(e)
        check(n["state"] == "pending" and n["attempts"] == 0 and
              n["due_in"] <= 0, "released %s is %r (want due, 0 attempts)"
              % (e, n))
    logged = one("SELECT count(*) FROM dlrhook.attempts "
                 "WHERE notification_id = ANY (:'ids'::uuid[])", ids=ids)
    check(logged == "0", "%s attempts logged for released rows" % logged)
    # Fenced: a release of attempt 1 after the row was claimed again (now
    # attempt 2 by a claim after an expired lease) changes nothing.
    e = many[0]
    psql("UPDATE dlrhook.notifications SET attempts = 1 WHERE id = :'id'",
         id=e)
    again = psql("SELECT attempt FROM dlrhook.sender_claim(100, 60, '{}', 5) "
                 "WHERE notification_id = :'id'", role="dlrhook_sender", id=e)
    check(again == [["2"]], "claimed again as %r, want attempt 2" % again)
    back = one(release, role="dlrhook_sender", ids="{%s}" % e, att="{1}")
    n = notification(e)
    check(back == "0" and n["attempts"] == 2 and n["due_in"] > 30,
          "a stale release gave back %s; row %r" % (back, n))
    try:
        psql("SELECT dlrhook.sender_claim(10, 60, '{}', 0)",
             role="dlrhook_sender")
    except SqlError as err:
        check("must be positive" in err.stderr, err.stderr)
    else:
        raise Failure("a claim with 0 rows per webhook was accepted")
    psql("DELETE FROM dlrhook.notifications WHERE id = ANY (:'ids'::uuid[])",
         ids=ids)


@test
def a_claim_returns_its_rows_in_due_order_across_webhooks(ctx):
    # The sender starts jobs in claim order. Grouped by webhook (as the
    # per-webhook cap's window left them before 007), its slots went to a
    # few hosts at a time, each up to its cap, and a sender spread over 19
    # hosts needed more connections than it keeps: a TLS handshake for one
    # request in three (docs/BENCHMARKS.md, finding 17). Events of two
    # webhooks recorded in turn come back in the order they were due, with
    # a per-webhook cap and without one.
    a, _ = ctx.hook("ok", "order-a")
    b, _ = ctx.hook("ok", "order-b")
    skip = one("SELECT coalesce(array_agg(id), '{}') FROM dlrhook.webhooks "
               "WHERE account_id NOT IN (:a, :b)", a=a.account, b=b.account)
    for cap in ("8", "NULL"):
        due = []
        for i in range(4):
            due.append(a.record("order-a-%s-%d" % (cap, i)))
            due.append(b.record("order-b-%s-%d" % (cap, i)))
        ids = "{%s}" % ",".join(due)
        got = [r[0] for r in psql(
            "SELECT notification_id FROM dlrhook.sender_claim(100, 60, "
            ":'skip'::text[], %s) WHERE notification_id = ANY (:'ids'::uuid[])"
            % cap, role="dlrhook_sender", ids=ids, skip=skip)]
        check(got == due, "cap %s: claimed in the order %r, want the order "
              "they were due %r" % (cap, [due.index(e) for e in got],
                                    list(range(len(due)))))
        psql("DELETE FROM dlrhook.notifications "
             "WHERE id = ANY (:'ids'::uuid[])", ids=ids)


# --- delivery ----------------------------------------------------------------

@test
def events_of_all_channels_arrive_signed_with_the_expected_fields(ctx):
    c, path = ctx.hook("ok", "fields")
    ctx.rcv.expect_secrets(path, [c.secret()])
    want = {}
    e = c.record("m-sms-1", channel="SMS", status="DELIVERED",
                 occurred_at="2026-04-09T10:30:00Z", channel_status="DELIVRD",
                 destination="+4915112345678")
    want[e] = {"eventId": e, "eventType": "DELIVERY_STATUS",
               "messageId": "m-sms-1", "customerMessageId": None,
               "channel": "SMS", "status": "DELIVERED",
               "channelStatus": "DELIVRD",
               "timestamp": "2026-04-09T10:30:00.000Z",
               "destination": "+4915112345678", "error": None}
    e = c.record("m-rcs-2", channel="RCS", status="READ",
                 occurred_at="2026-04-09T12:30:00.123456+02:00",
                 customer_message_id="order-42")
    want[e] = {"eventId": e, "eventType": "DELIVERY_STATUS",
               "messageId": "m-rcs-2", "customerMessageId": "order-42",
               "channel": "RCS", "status": "READ", "channelStatus": None,
               "timestamp": "2026-04-09T10:30:00.123Z", "destination": None,
               "error": None}
    e = c.record("m-wa-3", channel="WHATSAPP", status="FAILED",
                 occurred_at="2026-04-09 10:30:00.5+00", error_code="131026",
                 error_description="Nachricht nicht zustellbar: \"Grüße\"",
                 channel_status="failed")
    want[e] = {"eventId": e, "eventType": "DELIVERY_STATUS",
               "messageId": "m-wa-3", "customerMessageId": None,
               "channel": "WHATSAPP", "status": "FAILED",
               "channelStatus": "failed",
               "timestamp": "2026-04-09T10:30:00.500Z", "destination": None,
               "error": {"code": "131026",
                         "description": "Nachricht nicht zustellbar: \"Grüße\""}}
    ctx.send.once()
    reqs = ctx.rcv.requests(path)
    check(sorted(ids_of(reqs)) == sorted(want),
          "webhook-ids received %r, want %r" % (ids_of(reqs), sorted(want)))
    for r in reqs:
        h = r["headers"]
        eid = h["webhook-id"]
        check(r["method"] == "POST", "method %s" % r["method"])
        check((h.get("content-type") or "").startswith("application/json"),
              "Content-Type %r" % h.get("content-type"))
        check((h.get("user-agent") or "").startswith("dlrhook/"),
              "User-Agent %r" % h.get("user-agent"))
        ts = h.get("webhook-timestamp", "")
        check(ts.isdigit() and abs(int(ts) - r["arrived"]) < 60,
              "webhook-timestamp %r is not now in unix seconds" % ts)
        check(r["verified"] == [0], "signature %r does not verify with the "
              "secret from GET .../secret" % h.get("webhook-signature"))
        pairs = body_of(r)
        check([k for k, _ in pairs] == KEY_ORDER,
              "key order %r" % [k for k, _ in pairs])
        doc = json.loads(r["body"])
        check(doc == want[eid], "body %r, want %r" % (doc, want[eid]))
        check(notification(eid) is None, "delivered %s is still queued" % eid)
        a = only_attempt(eid)
        check(a["http_status"] == 204 and a["error"] is None and
              a["url"] == ctx.rcv.url(path),
              "attempts row %r, want 204 to %s" % (a, ctx.rcv.url(path)))


@test
def a_retry_sends_identical_bytes_with_a_stable_webhook_id(ctx):
    c, path = ctx.hook("flaky", "retry-bytes", "fail=2")
    ctx.rcv.expect_secrets(path, [c.secret()])
    eid = c.record("m-retry", channel="RCS", status="DELIVERED")
    for _ in range(3):
        ctx.send.once("--retry-schedule", "1s,1s,1s")
        if notification(eid) is None:
            break
        wait_due(eid)
    reqs = ctx.rcv.requests(path)
    check(len(reqs) == 3, "want 3 requests (2 failed, 1 ok), got %d" % len(reqs))
    check(set(ids_of(reqs)) == {eid}, "webhook-ids %r, want %s" % (ids_of(reqs), eid))
    check(len({r["body"] for r in reqs}) == 1,
          "the body changed between attempts: %r" % [r["body"] for r in reqs])
    check(all(r["verified"] == [0] for r in reqs),
          "a retry's signature does not verify: %r" % [r["verified"] for r in reqs])
    a = attempts_of(eid)
    check([(x["attempt"], x["http_status"]) for x in a] ==
          [(1, 500), (2, 500), (3, 204)], "attempts %r" % a)
    check(notification(eid) is None, "delivered %s is still queued" % eid)


@test
def a_failing_endpoint_follows_the_schedule_then_dead_letters(ctx):
    c, path = ctx.hook("fail", "schedule")
    eid = c.record("m-sched")
    err = ""
    for _ in range(3):
        # A --once run as soon as the retry is due, as cron would if it
        # ran all the time: the gaps are the sender's schedule.
        err += ctx.send.once("--retry-schedule", "1s,2s")
        if notification(eid)["state"] == "dead":
            break
        wait_due(eid)
    a = attempts_of(eid)
    check([(x["attempt"], x["http_status"]) for x in a] ==
          [(1, 500), (2, 500), (3, 500)], "attempts %r" % a)
    check(all(x["error"] and "500" in x["error"] for x in a),
          "error texts %r" % [x["error"] for x in a])
    for i, sched in ((1, 1.0), (2, 2.0)):
        gap = a[i]["started"] - a[i - 1]["started"]
        check(sched * (1 - JITTER) - 0.05 <= gap <= sched * (1 + JITTER) + SLACK,
              "attempt %d came %.2f s after attempt %d; schedule %.0f s +-20%%"
              % (i + 1, gap, i, sched))
    check(len(ctx.rcv.requests(path)) == 3, "the receiver got %d requests, want 3"
          % len(ctx.rcv.requests(path)))
    dead = psql("SELECT last_error, webhook_status FROM dlrhook.dead_letters "
                "WHERE notification_id = :'id'", id=eid)
    check(dead and "500" in (dead[0][0] or "") and dead[0][1] == "ACTIVE",
          "dead_letters shows %r" % dead)
    check(c.get()["status"] == "ACTIVE", "plain failures disabled the webhook")
    lines = [ln for ln in err.splitlines() if eid in ln]
    check(len(lines) == 3, "stderr has %d lines about %s, want one per failed "
          "attempt:\n%s" % (len(lines), eid, err[-1500:]))


@test
def a_timeout_is_a_failed_attempt(ctx):
    c, path = ctx.hook("slow", "timeout", "s=4")
    eid = c.record("m-timeout")
    t0 = time.monotonic()
    # No --connect-timeout: its default (5 s) must follow a shorter --timeout.
    ctx.send.once("--timeout", "1", "--lease", "10", "--retry-schedule", "1h")
    took = time.monotonic() - t0
    check(took < 3.5, "the run took %.1f s with --timeout 1" % took)
    check(len(ctx.rcv.requests(path)) == 1, "the request never arrived")
    a = only_attempt(eid)
    check(a["http_status"] is None and a["error"] and
          re.search(r"time", a["error"], re.I),
          "attempts row %r, want no status and a timeout error" % a)
    check(700 <= a["duration_ms"] <= 3000, "duration %s ms" % a["duration_ms"])
    pending_retry(eid, 3600 * 0.8 - 60, 3600 * 1.2)


@test
def a_refused_connection_is_a_failed_attempt(ctx):
    c = ctx.customer("refused")
    url = "https://127.0.0.1:%d/ok/%s" % (free_port(), unique("refused"))
    c.create(url)
    eid = c.record("m-refused")
    ctx.send.once("--retry-schedule", "1h")
    a = only_attempt(eid)
    check(a["http_status"] is None and a["error"] and a["url"] == url,
          "attempts row %r, want no status and an error" % a)
    check(re.search(r"connect|refused", a["error"], re.I),
          "the error %r does not say the connection failed" % a["error"])
    pending_retry(eid, 3600 * 0.8 - 60, 3600 * 1.2)


@test
def an_untrusted_certificate_is_a_failed_attempt(ctx):
    c, path = ctx.hook("ok", "untrusted")
    eid = c.record("m-tls")
    before = ctx.rcv.tls_errors()
    ctx.send.once("--retry-schedule", "1s", ca=False)
    check(ctx.rcv.requests(path) == [], "a request was sent over an unverified "
          "TLS connection")
    a = only_attempt(eid)
    check(a["http_status"] is None and a["error"] and
          re.search(r"certif|ssl|tls|verif", a["error"], re.I),
          "attempts row %r, want a certificate error" % a)
    check(ctx.rcv.tls_errors() > before, "the receiver saw no failed handshake")
    # The same CA given by the environment instead makes it go through.
    wait_due(eid)
    ctx.send.once("--retry-schedule", "1s", ca=False,
                  extra_env={"DLRHOOK_CA_FILE": ctx.rcv.ca})
    check(ids_of(ctx.rcv.requests(path)) == [eid],
          "with DLRHOOK_CA_FILE the event did not arrive")
    check(notification(eid) is None, "%s is still queued" % eid)


@test
def a_redirect_is_a_failed_attempt_and_not_followed(ctx):
    c, path = ctx.hook("redirect", "redirect")
    eid = c.record("m-302")
    ctx.send.once("--retry-schedule", "1h")
    target = path.replace("/redirect/", "/ok/", 1)
    check(len(ctx.rcv.requests(path)) == 1, "the 302 URL got %d requests"
          % len(ctx.rcv.requests(path)))
    check(ctx.rcv.requests(target) == [], "the redirect was followed")
    a = only_attempt(eid)
    check(a["http_status"] == 302 and a["error"] and "302" in a["error"],
          "attempts row %r, want 302 with an error" % a)
    pending_retry(eid, 3600 * 0.8 - 60, 3600 * 1.2)


@test
def an_answer_with_quotes_and_backslashes_is_recorded_as_it_came(ctx):
    # The results travel to sender_finish as array literals: every byte
    # that has a meaning there must arrive as itself.
    c, path = ctx.hook("quoted", "quoted", "q=a,b")
    eid = c.record("m-quoted")
    ctx.send.once("--retry-schedule", "1h")
    row = psql("SELECT response_excerpt, url, http_status, error "
               "FROM dlrhook.attempts WHERE notification_id = :'id'", id=eid)
    want_url = ctx.rcv.url(path + "?q=a,b")
    check(row == [[QUOTED_BODY, want_url, "500", "HTTP 500"]],
          "attempts row %r, want the body %r, the URL %r, 500" %
          (row, QUOTED_BODY, want_url))


@test
def gone_disables_the_webhook_and_dead_letters_until_put_and_replay(ctx):
    c, path = ctx.hook("gone", "gone")
    e1 = c.record("m-gone-1")
    e2 = c.record("m-gone-2")
    ctx.send.once("--retry-schedule", "1s,1s")
    got = len(ctx.rcv.requests(path))
    check(1 <= got <= 2, "the receiver got %d requests" % got)
    wh = c.get()
    check(wh["status"] == "DISABLED", "GET after a 410 shows %r" % wh["status"])
    for e in (e1, e2):
        n = notification(e)
        check(n is not None and n["state"] == "dead", "%s is %r, want dead" % (e, n))
    a = [x for e in (e1, e2) for x in attempts_of(e)]
    check(a and all(x["http_status"] == 410 for x in a), "attempts %r" % a)
    check(c.record("m-gone-3") is None, "an event was queued for a DISABLED webhook")
    time.sleep(1.3)
    ctx.send.once("--retry-schedule", "1s,1s")
    check(len(ctx.rcv.requests(path)) == got, "a DISABLED webhook was called")

    new = path.replace("/gone/", "/ok/", 1)
    check(c.put(ctx.rcv.url(new))["status"] == "ACTIVE", "PUT did not re-enable")
    e4 = c.record("m-gone-4")
    check(e4 is not None, "no event queued after PUT made the webhook ACTIVE")
    replayed = one("SELECT dlrhook.replay_failed(:a, now() - interval '1 hour')",
                   a=c.account)
    check(replayed == "2", "replay_failed gave %s, want 2" % replayed)
    ctx.send.once("--retry-schedule", "1s,1s")
    check(sorted(ids_of(ctx.rcv.requests(new))) == sorted([e1, e2, e4]),
          "after PUT and replay the new URL got %r" % ids_of(ctx.rcv.requests(new)))


@test
def five_days_of_failures_disable_the_webhook(ctx):
    c, path = ctx.hook("fail", "five-days")
    e1 = c.record("m-5d-1")
    ctx.send.once("--retry-schedule", "1h")
    check(one("SELECT failing_since IS NOT NULL FROM dlrhook.webhooks "
              "WHERE account_id = :a", a=c.account) == "t",
          "a failure did not set failing_since")
    check(c.get()["status"] == "ACTIVE", "one failure disabled the webhook")
    psql("UPDATE dlrhook.webhooks SET failing_since = now() - "
         "interval '5 days 1 hour' WHERE account_id = :a", a=c.account)
    e2 = c.record("m-5d-2")
    ctx.send.once("--retry-schedule", "1h")
    check(c.get()["status"] == "DISABLED", "5 days of failures left it ACTIVE")
    for e in (e1, e2):
        n = notification(e)
        check(n is not None and n["state"] == "dead", "%s is %r, want dead" % (e, n))
    check("webhook disabled" in (notification(e1)["last_error"] or ""),
          "the waiting notification's last_error is %r"
          % notification(e1)["last_error"])
    c.put(ctx.rcv.url(path.replace("/fail/", "/ok/", 1)))
    check(one("SELECT failing_since IS NULL FROM dlrhook.webhooks "
              "WHERE account_id = :a", a=c.account) == "t",
          "PUT did not clear failing_since")


@test
def retry_after_is_honoured_up_to_twice_the_schedule(ctx):
    c, path = ctx.hook("ratelimit", "retry-after", "fail=1&after=30")
    eid = c.record("m-429")
    ctx.send.once("--retry-schedule", "2s")
    gap = float(one("""SELECT extract(epoch FROM n.next_attempt_at - a.started_at)
            - a.duration_ms / 1000.0
        FROM dlrhook.notifications n JOIN dlrhook.attempts a
            ON a.notification_id = n.id
        WHERE n.id = :'id'""", id=eid))
    # Schedule 2 s: plain jitter gives 1.6..2.4 s, Retry-After: 30 capped at
    # twice the (jittered) schedule gives 3.2..4.8 s.
    check(3.2 - 0.05 <= gap <= 4.8 + SLACK,
          "next attempt %.2f s after the 429, want 3.2..4.8 s" % gap)
    check(only_attempt(eid)["http_status"] == 429, "no 429 logged")


@test
def a_short_retry_after_does_not_shorten_the_schedule(ctx):
    c, path = ctx.hook("ratelimit", "retry-after-0", "fail=1&after=0")
    eid = c.record("m-429-0")
    ctx.send.once("--retry-schedule", "2s")
    gap = float(one("""SELECT extract(epoch FROM n.next_attempt_at - a.started_at)
            - a.duration_ms / 1000.0
        FROM dlrhook.notifications n JOIN dlrhook.attempts a
            ON a.notification_id = n.id
        WHERE n.id = :'id'""", id=eid))
    check(1.6 - 0.05 <= gap <= 2.4 + SLACK,
          "next attempt %.2f s after a 429 with Retry-After: 0, want the "
          "schedule's 1.6..2.4 s" % gap)


@test
def connections_are_kept_alive_and_reused(ctx):
    c, path = ctx.hook("ok", "keepalive")
    events = [c.record("m-ka-%d" % i) for i in range(12)]
    ctx.send.once("--concurrency", "2")
    reqs = ctx.rcv.requests(path)
    check(sorted(ids_of(reqs)) == sorted(events), "received %r" % ids_of(reqs))
    conns = {r["client"] for r in reqs}
    check(len(conns) <= 4, "12 requests with --concurrency 2 came over %d "
          "connections" % len(conns))


@test
def put_sends_pending_notifications_to_the_new_url(ctx):
    c, path = ctx.hook("fail", "put")
    eid = c.record("m-put")
    ctx.send.once("--retry-schedule", "1s,1s")
    new = path.replace("/fail/", "/ok/", 1)
    c.put(ctx.rcv.url(new))
    wait_due(eid)
    ctx.send.once("--retry-schedule", "1s,1s")
    check(ids_of(ctx.rcv.requests(path)) == [eid], "old URL: %r"
          % ids_of(ctx.rcv.requests(path)))
    check(ids_of(ctx.rcv.requests(new)) == [eid], "new URL: %r"
          % ids_of(ctx.rcv.requests(new)))
    a = attempts_of(eid)
    check([(x["attempt"], x["url"]) for x in a] ==
          [(1, ctx.rcv.url(path)), (2, ctx.rcv.url(new))], "attempts %r" % a)
    check(notification(eid) is None, "%s is still queued" % eid)


@test
def delete_cancels_pending_notifications(ctx):
    c, path = ctx.hook("fail", "delete")
    events = [c.record("m-del-%d" % i) for i in range(2)]
    ctx.send.once("--retry-schedule", "1s,1s")
    check(len(ctx.rcv.requests(path)) == 2, "want 2 failed deliveries first")
    c.delete()
    left = one("SELECT count(*) FROM dlrhook.notifications "
               "WHERE id = ANY (:'ids'::uuid[])", ids="{%s}" % ",".join(events))
    check(left == "0", "%s notifications survived the DELETE" % left)
    time.sleep(1.5)
    ctx.send.once("--retry-schedule", "1s,1s")
    check(len(ctx.rcv.requests(path)) == 2, "a notification arrived after DELETE")
    check(c.record("m-del-late") is None, "an event was queued after DELETE")


def held_then(ctx, name, change):
    """
    Starts a --once run at --per-host 1 on 4 events for a receiver that
    answers after 2 s, waits until one attempt is in flight and one more
    event is claimed, held for the host's slot with the URL and secrets of
    its claim, then calls change(customer) (a PUT, a DELETE) and lets the
    run end. The old path, the event ids, the run's stderr.
    """
    c, path = ctx.hook("slow", name, "s=2")
    events = [c.record("m-%s-%d" % (name, i)) for i in range(4)]
    ids = "{%s}" % ",".join(events)
    p = ctx.send.start("--once", "--per-host", "1", "--timeout", "10",
                       "--retry-schedule", "1h")
    try:
        wait_for("an attempt in flight and one more event claimed",
                 lambda: len(ctx.rcv.requests(path)) == 1 and int(one(
                     "SELECT count(*) FROM dlrhook.notifications "
                     "WHERE id = ANY (:'ids'::uuid[]) AND attempts > 0",
                     ids=ids)) >= 2, timeout=10)
        change(c)
        p.wait(60)
    finally:
        stop(p)
    err = stderr_of(p)
    check(p.returncode == 0, "dlrhook-send exited %s: %s"
          % (p.returncode, err[-1000:]))
    return path, events, err


@test
def a_put_reaches_events_claimed_but_not_yet_sent(ctx):
    # Only the attempt in flight may still go to the old URL: the held one
    # is given back when 009's trigger announces the change, and claimed
    # again with the new URL.
    new = {}

    def put(c):
        new["path"] = "/ok/%s" % unique("put-held-new")
        c.put(ctx.rcv.url(new["path"]))
    path, events, err = held_then(ctx, "put-held", put)
    old = ids_of(ctx.rcv.requests(path))
    check(len(old) == 1, "after the PUT the old URL got %d more: %r"
          % (len(old) - 1, old))
    got = ids_of(ctx.rcv.requests(new["path"]))
    check(sorted(got) == sorted(set(events) - set(old)),
          "the new URL got %r, want the other 3 of %r" % (got, events))


@test
def a_delete_reaches_events_claimed_but_not_yet_sent(ctx):
    path, events, err = held_then(ctx, "delete-held", lambda c: c.delete())
    old = ids_of(ctx.rcv.requests(path))
    check(len(old) == 1, "after the DELETE the old URL got %d more: %r"
          % (len(old) - 1, old))
    left = one("SELECT count(*) FROM dlrhook.notifications "
               "WHERE id = ANY (:'ids'::uuid[])", ids="{%s}" % ",".join(events))
    check(left == "0", "%s notifications survived the DELETE" % left)


@test
def a_blocked_destination_is_never_contacted(ctx):
    c, path = ctx.hook("ok", "blocked")
    eid = c.record("m-blocked")
    before = ctx.rcv.tls_errors()
    ctx.send.once("--retry-schedule", "1h", private=False)
    check(ctx.rcv.requests(path) == [] and ctx.rcv.tls_errors() == before,
          "the sender contacted 127.0.0.1 without DLRHOOK_ALLOW_PRIVATE")
    a = only_attempt(eid)
    check(a["http_status"] is None and a["error"] and
          re.search(r"private|blocked|not allowed|forbidden|loopback|"
                    r"internal|reserved|refus", a["error"], re.I),
          "attempts row %r, want an error saying the address is blocked" % a)
    pending_retry(eid, 3600 * 0.8 - 60, 3600 * 1.2)


@test
def kill_9_mid_batch_then_the_expired_lease_redelivers_everything(ctx):
    c, path = ctx.hook("slow", "kill", "s=2")
    events = {c.record("m-kill-%d" % i) for i in range(5)}
    args = ("--timeout", "3", "--connect-timeout", "2", "--lease", "8",
            "--concurrency", "10", "--per-host", "10",
            "--retry-schedule", "1h")
    p = ctx.send.start("--once", *args)
    try:
        wait_for("all 5 requests in flight",
                 lambda: len(ctx.rcv.requests(path)) >= 5, timeout=10)
    finally:
        stop(p, signal.SIGKILL)
    first = set(ids_of(ctx.rcv.requests(path)))
    check(first == events, "in flight %r, want %r" % (first, events))
    for e in events:
        n = notification(e)
        check(n is not None and n["state"] == "pending" and n["attempts"] == 1
              and n["due_in"] > 0, "after kill -9, %s is %r (want leased)" % (e, n))
    for e in events:
        wait_due(e, timeout=12)
    ctx.send.once(*args)
    reqs = ctx.rcv.requests(path)
    check(set(ids_of(reqs)) == events, "webhook-ids %r" % set(ids_of(reqs)))
    for e in events:
        check(ids_of(reqs).count(e) >= 2, "%s was not sent again" % e)
        check(notification(e) is None, "%s is still queued" % e)
        a = attempts_of(e)
        check([(x["attempt"], x["http_status"]) for x in a] == [(2, 204)],
              "attempts of %s: %r" % (e, a))


@test
def a_run_that_stops_gives_back_what_it_claimed_and_never_sent(ctx):
    # With --concurrency 2 the sender keeps two more claimed, ready for a
    # slot. A run that ends (--max-seconds) while those still wait gives
    # them back: due at once, no attempt counted or logged, instead of
    # leased for a minute with a step of their retry schedule used up.
    c, path = ctx.hook("slow", "giveback", "s=2")
    events = [c.record("m-giveback-%d" % i) for i in range(6)]
    err = ctx.send.once("--concurrency", "2", "--per-host", "2",
                        "--max-seconds", "1", "--timeout", "5",
                        "--lease", "60", "--retry-schedule", "1h")
    m = re.search(r"(\d+) claimed notifications were waiting for a slot "
                  r"and are not sent now; they are given back", err)
    check(m is not None and int(m.group(1)) >= 1,
          "the run gave nothing back: %s" % err[-1000:])
    sent = ids_of(ctx.rcv.requests(path))
    check(len(sent) == 2 and len(set(sent)) == 2,
          "want the 2 attempts in flight sent once each, got %r" % sent)
    for e in events:
        n = notification(e)
        a = attempts_of(e)
        if e in sent:
            check(n is None, "%s was delivered but is still queued: %r" % (e, n))
            check([(x["attempt"], x["http_status"]) for x in a] == [(1, 204)],
                  "attempts of %s: %r" % (e, a))
            continue
        check(n is not None and n["state"] == "pending" and
              n["attempts"] == 0 and n["due_in"] <= 0,
              "%s after the run: %r (want pending, 0 attempts, due now)"
              % (e, n))
        check(a == [], "%s was never sent but has attempts %r" % (e, a))


@test
def overlapping_runs_never_send_the_same_attempt_twice(ctx):
    c, path = ctx.hook("slow", "overlap", "s=0.2")
    events = [c.record("m-overlap-%d" % i) for i in range(40)]
    args = ("--once", "--batch", "4", "--concurrency", "4",
            "--retry-schedule", "1h")
    runs = [ctx.send.start(*args), ctx.send.start(*args)]
    for p in runs:
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            stop(p, signal.SIGKILL)
        check(p.returncode == 0, "a run exited %s: %s"
              % (p.returncode, stderr_of(p)[-1000:]))
    # Both runs took part (when they print the summary line).
    done = [re.findall(r"delivered=(\d+)", stderr_of(p)) for p in runs]
    if all(done):
        check(all(int(d[-1]) > 0 for d in done),
              "one run delivered nothing, so they did not overlap: %r" % done)
    reqs = ids_of(ctx.rcv.requests(path))
    ids = "{%s}" % ",".join(events)
    rows = psql("SELECT notification_id, attempt FROM dlrhook.attempts "
                "WHERE notification_id = ANY (:'ids'::uuid[])", ids=ids)
    check(len(rows) == len({tuple(r) for r in rows}),
          "an attempt was recorded twice")
    for e in events:
        sent = reqs.count(e)
        logged = sum(1 for r in rows if r[0] == e)
        check(sent == logged == 1, "%s: sent %d times, %d attempts logged"
              % (e, sent, logged))
    left = one("SELECT count(*) FROM dlrhook.notifications "
               "WHERE id = ANY (:'ids'::uuid[])", ids=ids)
    check(left == "0", "%s notifications are still queued" % left)


@test
def both_signatures_are_sent_during_a_rotation(ctx):
    c, path = ctx.hook("ok", "rotation")
    old = c.secret()
    new = c.rotate()
    check(new != old and c.secret() == new, "rotation did not give a new secret")
    ctx.rcv.expect_secrets(path, [old, new])
    eid = c.record("m-rotate")
    ctx.send.once()
    reqs = ctx.rcv.requests(path)
    check(ids_of(reqs) == [eid], "received %r" % ids_of(reqs))
    sigs = reqs[0]["headers"].get("webhook-signature", "").split()
    check(len(sigs) == 2 and all(s.startswith("v1,") for s in sigs),
          "webhook-signature %r, want two v1 signatures" % sigs)
    check(reqs[0]["verified"] == [0, 1],
          "verified with %r of [old, new]" % reqs[0]["verified"])


@test
def events_while_no_webhook_is_configured_are_never_delivered(ctx):
    c = ctx.customer("no-webhook")
    check(c.record("m-before") is None,
          "record_delivery_status queued an event with no webhook")
    path = "/ok/" + unique("no-webhook")
    c.create(ctx.rcv.url(path))
    eid = c.record("m-after")
    ctx.send.once()
    check(ids_of(ctx.rcv.requests(path)) == [eid],
          "received %r, want only %s" % (ids_of(ctx.rcv.requests(path)), eid))


@test
def follow_mode_delivers_a_new_event_within_a_second(ctx):
    c, path = ctx.hook("ok", "follow")
    p = ctx.send.start("--follow")
    try:
        wait_for("the sender to connect", lambda: int(one(
            """SELECT count(*) FROM pg_stat_activity
               WHERE datname = current_database()
                   AND application_name = 'dlrhook-send'""")) > 0, timeout=10)
        time.sleep(0.5)     # let it LISTEN and find the queue empty
        # The event and when its transaction began (its created_at): the
        # sender may have delivered and deleted it before another query.
        eid, created = psql(
            "SELECT dlrhook.record_delivery_status(:a, 'm-follow', 'SMS', "
            "'SENT', now()), extract(epoch FROM now())", a=c.account)[0]
        created = float(created)
        reqs = wait_for("the event to arrive",
                        lambda: ctx.rcv.requests(path), timeout=5)
    finally:
        rc = stop(p)
    check(ids_of(reqs) == [eid], "received %r" % ids_of(reqs))
    lag = reqs[0]["arrived"] - created
    check(lag < 1.0, "arrived %.2f s after it was recorded" % lag)
    check(rc == 0, "--follow exited %s on SIGTERM: %s" % (rc, stderr_of(p)[-500:]))



@test
def follow_mode_retries_at_the_scheduled_time(ctx):
    c, path = ctx.hook("flaky", "follow-retry", "fail=1")
    p = ctx.send.start("--follow", "--retry-schedule", "1s")
    try:
        eid = c.record("m-follow-retry")
        reqs = wait_for("the retry to arrive",
                        lambda: len(ctx.rcv.requests(path)) >= 2 and
                        ctx.rcv.requests(path), timeout=8)
    finally:
        rc = stop(p)
    check(ids_of(reqs) == [eid, eid], "received %r" % ids_of(reqs))
    gap = reqs[1]["arrived"] - reqs[0]["arrived"]
    check(1 - JITTER - 0.05 <= gap <= 1 + JITTER + SLACK,
          "the retry came %.2f s after the failure; schedule 1 s +-20%%" % gap)
    check(rc == 0, "--follow exited %s on SIGTERM: %s" % (rc, stderr_of(p)[-500:]))


if __name__ == "__main__":
    sys.exit(run(setup, teardown, sys.argv[1:]))
