#!/usr/bin/env python3
"""test_faults.py: hardening under faults (issue 5).

1. PostgreSQL stopped and started again while the API is under load and the
   sender (--follow) drains 3 000 events: fast 500 problem+json during the
   outage, recovery in the same FastCGI processes, nothing lost.
2. kill -9 of the sender 20 times during a 10 000-event drain, then a final
   run: every event delivered at least once, duplicates counted, each with
   the same webhook-id and the same body bytes.
3. A chaotic receiver (500s, connection resets, stalls past --timeout) for
   10 000 events with a short retry schedule: each event delivered or
   dead-lettered after exactly the schedule's attempts, none lost or left.
4. A slow database: every sender_finish held up a second by a trigger,
   10 000 events to a receiver that answers at once, lease 6 s: each event
   sent once, its result recorded within its lease.
5. Soak: DLRHOOK_SOAK_REQUESTS (default 200 000) API requests through the web
   server while the FastCGI processes' RSS and open descriptors are watched.

Environment (as test_delivery.py, plus):
  DLRHOOK_URL               API base; the API must run with
                            DLRHOOK_ALLOW_PRIVATE=1
  PGHOST PGPORT PGDATABASE PGUSER
                            a superuser connection to the same database
  DLRHOOK_SEND              the sender binary (src/dlrhook-send)
  DLRHOOK_SENDER_DATABASE   the conninfo the sender uses (role dlrhook_sender)
  DLRHOOK_PG_STOP, DLRHOOK_PG_START
                            shell commands stopping and starting PostgreSQL;
                            start returns once it accepts connections
  DLRHOOK_FCGI_PIDS_CMD     optional: a shell command printing the pids of
                            the API's dlrhook.fcgi processes (default: those
                            descending from whoever listens on DLRHOOK_URL's
                            port; reading /proc of the web server's user
                            needs root or that user)
  DLRHOOK_SOAK_REQUESTS     requests of the soak (default 200000)
  DLRHOOK_SOAK_URL          API base the soak runs through (default
                            DLRHOOK_URL); private URLs are not needed there
  DLRHOOK_SOAK_CLIENT       wrk or python (default: wrk when installed;
                            Python's keep-alive threads are slower)
  DLRHOOK_FAULT_SEED        seed of the random choices (default: random,
                            printed on the first line)

No other sender may work on the database meanwhile. Arguments, if any,
select the tests whose names contain one of them. Prints one line per test
with what it measured and "N passed, N failed"; exits non-zero when a test
failed. Every wait is bounded.
"""

import collections
import os
import random
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deltest import (Api, Customer, Failure, Sender, check, one,  # noqa: E402
                     psql, rmtree, stderr_of, stop, wait_for)
from faulttest import (ApiLoad, ChaosReceiver, burst_get,  # noqa: E402
                       due_now, fates, fcgi_pids, kill_if_running,
                       payload_digests, proc_usage, queued, record_many, run,
                       sender_log_lines, shell, soak_python, soak_wrk, test,
                       unique, wait_drained, webhook_id)

PROBLEM = "application/problem+json"


class Ctx:
    def __init__(self):
        self.workdir = tempfile.mkdtemp(prefix="faulttest-")
        self.url = os.environ.get("DLRHOOK_URL", "").rstrip("/")
        self.api = Api(self.url)
        self.pg_stop = os.environ.get("DLRHOOK_PG_STOP", "").strip()
        self.pg_start = os.environ.get("DLRHOOK_PG_START", "").strip()
        seed = os.environ.get("DLRHOOK_FAULT_SEED", "").strip()
        self.seed = int(seed) if seed.isdigit() else random.randrange(1 << 30)
        self.rng = random.Random(self.seed)
        self.rcv = None
        self.send = None
        self.customers = []
        self.procs = []
        self.pg_down = False
        self.note = None

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

    def sender(self, *args):
        p = self.send.start(*args)
        self.procs.append(p)
        return p

    def stop_pg(self):
        self.pg_down = True
        shell(self.pg_stop, "DLRHOOK_PG_STOP")

    def start_pg(self):
        shell(self.pg_start, "DLRHOOK_PG_START")
        self.pg_down = False

    def cleanup(self):
        """After each test: no sender left, PostgreSQL up, customers gone."""
        for p in self.procs:
            kill_if_running(p)
        self.procs = []
        if self.pg_down:
            try:
                self.start_pg()
            except Failure as e:
                print("# could not start PostgreSQL again: %s" % e, flush=True)
        for c in self.customers:
            try:
                c.cleanup()
            except Exception:  # noqa: BLE001
                pass
        self.customers = []


def setup():
    missing = [v for v in ("DLRHOOK_URL", "PGDATABASE", "DLRHOOK_SEND",
                           "DLRHOOK_SENDER_DATABASE")
               if not os.environ.get(v)]
    if missing:
        raise Failure("%s not set" % ", ".join(missing))
    ctx = Ctx()
    print("# seed %d (DLRHOOK_FAULT_SEED=%d repeats the random choices)"
          % (ctx.seed, ctx.seed), flush=True)
    one("SELECT 1")
    n = int(one("""SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database()
            AND application_name = 'dlrhook-send'"""))
    check(n == 0, "%d dlrhook-send connection(s) on this database would "
          "take the tests' notifications: stop that sender" % n)
    ctx.rcv = ChaosReceiver(ctx.workdir, seed=ctx.seed)
    ctx.send = Sender(os.environ["DLRHOOK_SEND"],
                      os.environ["DLRHOOK_SENDER_DATABASE"], ctx.rcv.ca)
    why = ctx.send.problem()
    check(why is None, why or "")
    return ctx


def teardown(ctx):
    if ctx is None:
        return
    ctx.cleanup()
    if ctx.rcv is not None:
        ctx.rcv.stop()
    rmtree(ctx.workdir)


# --- what the receiver saw ----------------------------------------------------

def deliveries(ctx, path, ids, digests):
    """
    Checks the receiver's records under path against the recorded events:
    every webhook-id is one of them, every complete body is the payload's
    exact bytes. Returns (acks per event id, Counter of what was done).
    """
    want = set(ids)
    acks = collections.Counter()
    done = collections.Counter()
    stray, bad_body = set(), []
    for _path, eid, sha, what, _arrived in ctx.rcv.records(path):
        done[what] += 1
        if eid not in want:
            stray.add(eid)
            continue
        if what != "partial" and sha != digests[eid]:
            bad_body.append(eid)
        if what == "204":
            acks[eid] += 1
    check(not stray, "the receiver got %d webhook-ids that are not the "
          "recorded events, e.g. %r" % (len(stray), sorted(stray, key=str)[:3]))
    check(not bad_body, "%d requests carried other bytes than the stored "
          "payload (e.g. %s)" % (len(bad_body), bad_body[:3]))
    return acks, done


def duplicates(acks):
    """(extra acknowledged copies, events acknowledged more than once, most)"""
    extra = sum(n - 1 for n in acks.values())
    multi = sum(1 for n in acks.values() if n > 1)
    return extra, multi, max(acks.values()) if acks else 0


# --- 1. PostgreSQL restart ----------------------------------------------------

@test
def postgres_restart_under_api_load_and_a_draining_sender(ctx):
    check(ctx.pg_stop and ctx.pg_start,
          "DLRHOOK_PG_STOP and DLRHOOK_PG_START must be set to run this test")
    n = 3000
    # 20 ms per answer and 16 in flight: a drain of a few seconds, so the
    # outage falls in the middle of it.
    c, path = ctx.hook("ok", "pg-restart", "delay=0.02")
    wh = webhook_id(c.account)
    ids = record_many(c.account, n, "pgr")
    digests = payload_digests(wh)
    check(set(digests) == set(ids), "the queue does not hold the %d events" % n)

    api_c = ctx.customer("pg-restart-api")
    urls = ["https://hooks.example.com/pg-restart/a",
            "https://hooks.example.com/pg-restart/b"]
    api_c.create(urls[0])
    # Every process gets a database connection for the restart to break.
    warm = burst_get(ctx.url, api_c.key, 16)
    check(all(s == 200 for s in warm), "warm-up GETs: %s" % warm)
    pids_before = fcgi_pids(ctx.url)

    p = ctx.sender("--follow", "--concurrency", "16", "--per-host", "16",
                   "--timeout", "3",
                   "--lease", "8", "--retry-schedule", "1s,1s,1s,1s,1s")
    load = ApiLoad(ctx.url, api_c.key, urls, threads=4).start()
    try:
        wait_for("deliveries to be under way",
                 lambda: ctx.rcv.count(path) >= 300, timeout=30, step=0.02)
        time.sleep(0.5)                 # the API's load before the outage
        delivered_before = ctx.rcv.count(path)
        check(queued(wh)[0] > 0, "the queue was drained before the outage: "
              "nothing to show")
        t_stop = time.monotonic()
        ctx.stop_pg()
        t_down = time.monotonic()
        time.sleep(1.5)
        t_start = time.monotonic()
        ctx.start_pg()
        t_up = time.monotonic()
        # Each load thread gets a 2xx again (a bounded wait).
        try:
            wait_for("every load thread to get a 2xx after the restart",
                     lambda: len(load.ok_after(t_up)) == len(load.threads),
                     timeout=5, step=0.02)
        except Failure:
            pass                        # reported with the samples below
        time.sleep(1.0)                 # and some load after recovery
    finally:
        load.stop()
    t_end = time.monotonic()
    samples = load.samples
    ctx.note("API: %d requests in %.1f s around an outage of %.1f s "
             "(stop %.2f s, start %.2f s)", len(samples),
             t_end - samples[0].t0 if samples else 0, t_start - t_down,
             t_down - t_stop, t_up - t_start)

    errors = [s for s in samples if s.error]
    check(not errors, "%d requests failed without an HTTP answer, e.g. %s"
          % (len(errors), errors[0].error if errors else ""))
    other = collections.Counter((s.method, s.status) for s in samples
                                if s.status not in (200, 500))
    check(not other, "answers other than 200 and 500: %s" % dict(other))
    not_problem = [s for s in samples if s.status == 500 and
                   not (s.ctype or "").startswith(PROBLEM)]
    check(not not_problem, "%d 500s were not %s (e.g. %r)"
          % (len(not_problem), PROBLEM,
             not_problem[0].ctype if not_problem else None))
    down = [s for s in samples if s.t0 >= t_down and s.t1 <= t_start]
    down_500 = sum(1 for s in down if s.status == 500)
    check(down and down_500 == len(down), "with PostgreSQL down: %d requests, "
          "%d of them 500" % (len(down), down_500))
    # Every request that overlapped the outage, from the stop command to
    # PostgreSQL accepting connections again, was answered within 2 s.
    outage = [s for s in samples if s.t1 >= t_stop and s.t0 <= t_up]
    slow = max(outage, key=lambda s: s.elapsed)
    ctx.note("%d 500s while down; slowest answer during the outage %.0f ms, "
             "overall %.0f ms", down_500, 1000 * slow.elapsed,
             1000 * max(s.elapsed for s in samples))
    check(slow.elapsed < 2.0, "during the outage a %s took %.2f s (%s), "
          "limit 2 s" % (slow.method, slow.elapsed, slow.status))
    first_ok = {}
    for s in samples:
        if s.t0 >= t_up and s.status == 200 and s.thread not in first_ok:
            first_ok[s.thread] = s.t1 - t_up
    check(len(first_ok) == len(load.threads),
          "only %d of %d load threads got a 2xx within 5 s of PostgreSQL "
          "accepting connections" % (len(first_ok), len(load.threads)))
    ctx.note("API back %.2f s after PostgreSQL", max(first_ok.values()))
    late_500 = [s for s in samples if s.t0 >= t_up + 2.0 and s.status != 200]
    check(not late_500, "%d errors more than 2 s after the restart"
          % len(late_500))
    burst = burst_get(ctx.url, api_c.key, 16)
    check(all(s == 200 for s in burst), "a burst after recovery: %s" % burst)
    pids_after = fcgi_pids(ctx.url)
    if pids_before is None or pids_after is None:
        ctx.note("FastCGI pids unknown: set DLRHOOK_FCGI_PIDS_CMD")
    else:
        gone = sorted(pids_before - pids_after)
        check(not gone, "dlrhook.fcgi processes %s were replaced (before %s, "
              "after %s)" % (gone, sorted(pids_before), sorted(pids_after)))
        ctx.note("same %d FastCGI processes", len(pids_before))

    # The sender: still running, and everything arrives.
    check(p.poll() is None, "the sender exited (%s) during the outage: %s"
          % (p.returncode, stderr_of(p)[-1000:]))
    wait_drained(wh, 90, sender=p, what="the sender to drain the queue")
    drained = time.monotonic() - t_up
    rc = stop(p)
    err = stderr_of(p)
    check(rc == 0, "--follow exited %s on SIGTERM: %s" % (rc, err[-800:]))
    check(queued(wh) == (0, 0), "left in the queue: %r (pending, dead)"
          % (queued(wh),))
    acks, done = deliveries(ctx, path, ids, digests)
    missing = set(ids) - set(acks)
    check(not missing, "%d of %d events never acknowledged by the receiver, "
          "e.g. %s" % (len(missing), n, sorted(missing)[:3]))
    extra, multi, _ = duplicates(acks)
    lost = len(sender_log_lines(err, r"connection lost|cannot connect|"
                                r"database: "))
    ctx.note("sender: %d of %d delivered before the outage, all %.1f s "
             "after it; %d duplicates; %d database complaints logged",
             delivered_before, n, drained, extra, lost)


# --- 2. kill -9 ---------------------------------------------------------------

@test
def kill_9_twenty_times_during_a_drain_loses_nothing(ctx):
    n, kills = 10000, 20
    c, path = ctx.hook("ok", "kill9")
    wh = webhook_id(c.account)
    ids = record_many(c.account, n, "k9")
    digests = payload_digests(wh)
    check(set(digests) == set(ids), "the queue does not hold the %d events" % n)
    # The shortest lease the sender accepts for this timeout (timeout + 5).
    args = ("--follow", "--timeout", "2", "--lease", "7", "--concurrency",
            "128", "--per-host", "128", "--retry-schedule", "1s,1s,1s,1s,1s")
    t0 = time.monotonic()
    early = []
    idle = 0
    for k in range(kills):
        # Each run is killed 50-300 ms into its delivering (not while it
        # still connects and shakes hands with 128 receivers), so that kills
        # land between deliveries and their recording. Late runs may find
        # nothing due (the rest is leased by killed runs): killed all the
        # same.
        before = ctx.rcv.count(path)
        p = ctx.sender(*args)
        try:
            wait_for("run %d to deliver" % (k + 1),
                     lambda: p.poll() is not None or
                     ctx.rcv.count(path) >= before + 50, timeout=5,
                     step=0.02)
        except Failure:
            if due_now(wh) == 0:
                idle += 1
            else:               # leases ran out meanwhile: deliver those
                wait_for("run %d to deliver what is due" % (k + 1),
                         lambda: p.poll() is not None or
                         ctx.rcv.count(path) > before, timeout=10,
                         step=0.02)
        time.sleep(ctx.rng.uniform(0.05, 0.3))
        if p.poll() is not None:
            early.append("run %d exited %s: %s" % (k + 1, p.returncode,
                                                   stderr_of(p)[-300:]))
        stop(p, signal.SIGKILL)
    check(not early, "sender runs ended before their kill -9: %s" % early[:2])
    killed_at = time.monotonic()
    acked_during = ctx.rcv.count(path)
    left = queued(wh)[0]
    final = ctx.sender(*args)
    took = wait_drained(wh, 120, sender=final,
                        what="the final run to deliver the rest")
    rc = stop(final)
    check(rc == 0, "the final --follow run exited %s on SIGTERM: %s"
          % (rc, stderr_of(final)[-800:]))
    check(queued(wh) == (0, 0), "left in the queue: %r (pending, dead)"
          % (queued(wh),))

    acks, done = deliveries(ctx, path, ids, digests)
    missing = set(ids) - set(acks)
    check(not missing, "%d of %d events never acknowledged by the receiver, "
          "e.g. %s" % (len(missing), n, sorted(missing)[:3]))
    # Each deletion is backed by a 2xx in the attempts log.
    f = fates(ids)
    unbacked = [e for e, (state, _, tries) in f.items()
                if state is None and not any(t[1] is not None and
                                             200 <= t[1] < 300 for t in tries)]
    check(not unbacked, "%d events left the queue without a logged 2xx, e.g. "
          "%s" % (len(unbacked), unbacked[:3]))
    extra, multi, most = duplicates(acks)
    ctx.note("%d kills in %.1f s, each 50-300 ms into a run's delivering "
             "(%d runs found nothing due): %d requests acknowledged, %d "
             "recorded as delivered; the final run took %.1f s", kills,
             killed_at - t0, idle, acked_during, n - left, took)
    ctx.note("duplicates: %d extra copies of %d events (at most %d copies "
             "of one), each with the same webhook-id and body bytes; "
             "%d requests cut off by a kill", extra, multi, most,
             done["partial"] + done["204!"])


# --- 3. a chaotic receiver ----------------------------------------------------

SCHEDULE = (1.0, 1.0, 2.0)
JITTER = 0.2
RESEND = "resent after a reset"
LATE = "an answer after the timeout"
WINDOW_SLACK = 0.05     # receiver's arrival vs the sender's attempt window


def match_requests(tries, recs):
    """
    Places each request the receiver saw for one event in the logged attempt
    it belongs to (the last one started before it arrived) and checks that
    they agree: an attempt logged with HTTP status S had a request that the
    receiver answered S within the attempt's time span. Returns a Counter of
    findings. RESEND and LATE are explained: libcurl sends a request once
    more on a fresh connection when a reused one dies before any answer
    arrives; a request the receiver only got to (or answered) after the
    sender's timeout is part of a failed attempt. Anything else is a
    contradiction between the attempts log and the wire.
    """
    found = collections.Counter()
    spans = [(t, []) for t in tries]
    for arrived, what in sorted(recs):
        owner = None
        for t, got in spans:
            if t[2] - WINDOW_SLACK <= arrived:
                owner = got
                late = arrived > t[2] + t[3] / 1000.0 + WINDOW_SLACK
        if owner is None:
            found["a request before the first logged attempt"] += 1
        else:
            owner.append((what, late))
    prev = "none"
    for (_n, status, _started, _ms), got in spans:
        if status is None:
            # Timed out or cut off: whatever the receiver saw is explained.
            resets = sum(1 for w, _ in got if w == "reset")
            found[RESEND] += max(0, resets - 1)
            if any(w not in ("reset", "stall") for w, _ in got):
                found[LATE] += 1
        else:
            want = str(status)
            rest = list(got)
            if (want, False) in rest:
                rest.remove((want, False))
            else:
                found["HTTP %d logged, the receiver did %s" % (
                    status, [w for w, _ in got] or "nothing")] += 1
            for w, late in rest:
                if w == "reset" and not late:
                    found[RESEND] += 1
                elif prev is None:
                    found[LATE] += 1    # a straggler of the timed-out one
                else:
                    found["a %s%s besides the logged answer" % (
                        w, " after the attempt" if late else "")] += 1
        prev = status
    return found


@test
def a_chaotic_receiver_ends_with_each_event_delivered_or_dead(ctx):
    n = 10000
    c, path = ctx.hook("chaos", "chaos",
                       "p500=0.2&reset=0.1&stall=0.05&stall_s=1.5")
    wh = webhook_id(c.account)
    ids = record_many(c.account, n, "chaos")
    digests = payload_digests(wh)
    check(set(digests) == set(ids), "the queue does not hold the %d events" % n)
    t0 = time.monotonic()
    p = ctx.sender("--follow", "--timeout", "1", "--lease", "6",
                   "--concurrency", "256", "--per-host", "256",
                   "--retry-schedule",
                   ",".join("%gs" % s for s in SCHEDULE))
    took = wait_drained(wh, 180, sender=p,
                        what="every event to be delivered or dead")
    rc = stop(p)
    check(rc == 0, "--follow exited %s on SIGTERM: %s"
          % (rc, stderr_of(p)[-800:]))
    # Claimed, not started in time for its lease, and given back: churn.
    given_back = stderr_of(p).count("it is given back")
    acks, done = deliveries(ctx, path, ids, digests)
    by_id = collections.defaultdict(list)
    for _path, eid, _sha, what, arrived in ctx.rcv.records(path):
        by_id[eid].append((arrived, what))
    f = fates(ids)
    check(len(f) == n, "fates of %d events, want %d" % (len(f), n))

    last = len(SCHEDULE) + 1
    problems = collections.defaultdict(list)
    delivered = dead = acked_but_dead = total_tries = 0
    resends = collections.Counter({RESEND: 0, LATE: 0})
    early, lateness = [], []
    for eid, (state, claimed, tries) in f.items():
        total_tries += len(tries)
        nums = [t[0] for t in tries]
        ok = [t for t in tries if t[1] is not None and 200 <= t[1] < 300]
        for k, v in match_requests(tries, by_id.get(eid, [])).items():
            if k in resends:
                resends[k] += v
            else:
                problems[k].append(eid)
        if nums != list(range(1, len(tries) + 1)):
            problems["attempts not numbered 1..k in order"].append(eid)
        if state is None:
            delivered += 1
            if len(ok) != 1 or tries[-1] is not ok[0]:
                problems["deleted without exactly one final 2xx"].append(eid)
            if len(tries) > last:
                problems["more than %d attempts" % last].append(eid)
            if not acks[eid]:
                problems["delivered but the receiver sent no 2xx"].append(eid)
        elif state == "dead":
            dead += 1
            if ok:
                problems["dead after a 2xx"].append(eid)
            if claimed != last or len(tries) != last:
                problems["dead after %s attempts (claimed %s), want %d"
                         % (len(tries), claimed, last)].append(eid)
            if acks[eid]:
                acked_but_dead += 1
        else:
            problems["still %s" % state].append(eid)
        for i in range(1, len(tries)):
            if i > len(SCHEDULE):
                break
            prev_end = tries[i - 1][2] + tries[i - 1][3] / 1000.0
            gap = tries[i][2] - prev_end
            sched = SCHEDULE[i - 1]
            if gap < sched * (1 - JITTER) - 0.05:
                early.append((eid, i + 1, gap, sched))
            lateness.append(gap - sched * (1 + JITTER))
    if early:
        problems["retried before the schedule (attempt, gap, scheduled) "
                 "e.g. %r" % (early[0][1:],)].extend(e[0] for e in early)
    ctx.note("%d delivered, %d dead letters, %d attempts in %.1f s "
             "(receiver: %s)", delivered, dead, total_tries, took,
             ", ".join("%s %d" % kv for kv in sorted(done.items())))
    lateness.sort()
    if lateness:
        ctx.note("retries at most %.2f s later than schedule + 20%% "
                 "(median %.2f s)", max(0.0, lateness[-1]),
                 max(0.0, lateness[len(lateness) // 2]))
    if resends[RESEND]:
        ctx.note("%d requests were libcurl's own resend, in the same "
                 "attempt, after a reset of a reused connection (the "
                 "attempts log shows one attempt)", resends[RESEND])
    if resends[LATE]:
        ctx.note("%d answers came after the sender's timeout (failed "
                 "attempts to the sender)", resends[LATE])
    ctx.note("%d claimed events were given back unattempted, too late for "
             "their lease", given_back)
    if acked_but_dead:
        ctx.note("%d dead letters had a 2xx that arrived after the sender's "
                 "timeout", acked_but_dead)
    check(not problems, "; ".join("%s: %d (e.g. %s)" % (k, len(v), v[0])
                                  for k, v in problems.items()))
    check(delivered + dead == n, "%d delivered + %d dead != %d"
          % (delivered, dead, n))
    check(queued(wh) == (0, dead), "the queue holds %r, want (0, %d)"
          % (queued(wh), dead))


# --- 4. a slow database ------------------------------------------------------

SLOW_FINISH = """
    CREATE FUNCTION public.faulttest_slow_finish() RETURNS trigger
    LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(1); RETURN NULL; END $$;
    CREATE TRIGGER faulttest_slow_finish AFTER INSERT ON dlrhook.attempts
        FOR EACH STATEMENT EXECUTE FUNCTION public.faulttest_slow_finish();
"""
FAST_FINISH = """
    DROP TRIGGER IF EXISTS faulttest_slow_finish ON dlrhook.attempts;
    DROP FUNCTION IF EXISTS public.faulttest_slow_finish();
"""


@test
def a_slow_database_slows_the_sender_instead_of_sending_twice(ctx):
    # Every sender_finish (one INSERT into attempts) takes a second more,
    # as on a database slow to commit: 10 000 results take ten calls of
    # 1 000, longer than the 6 s lease. Before the sender counted the
    # recording ahead of an attempt, it sent at the receiver's pace, the
    # results were recorded after their leases ran out, and the rows were
    # claimed and sent again (the chaotic receiver's test, so slowed: some
    # 3 400 events twice or more).
    n = 10000
    c, path = ctx.hook("ok", "slowdb")
    wh = webhook_id(c.account)
    ids = record_many(c.account, n, "slowdb")
    digests = payload_digests(wh)
    check(set(digests) == set(ids), "the queue does not hold the %d events" % n)
    psql(FAST_FINISH + SLOW_FINISH)
    try:
        p = ctx.sender("--follow", "--timeout", "1", "--lease", "6",
                       "--concurrency", "256", "--per-host", "256")
        took = wait_drained(wh, 180, sender=p,
                            what="every event to be delivered")
        rc = stop(p)
    finally:
        psql(FAST_FINISH)
    check(rc == 0, "--follow exited %s on SIGTERM: %s"
          % (rc, stderr_of(p)[-800:]))
    acks, done = deliveries(ctx, path, ids, digests)
    missing = set(ids) - set(acks)
    check(not missing, "%d of %d events never acknowledged, e.g. %s"
          % (len(missing), n, sorted(missing)[:3]))
    extra, multi, most = duplicates(acks)
    check(extra == 0, "%d events were sent more than once (%d extra copies, "
          "at most %d of one): results recorded after their lease ran out"
          % (multi, extra, most))
    f = fates(ids)
    retried = [e for e, (state, _, tries) in f.items()
               if state is not None or len(tries) != 1]
    check(not retried, "%d events did not end delivered after exactly one "
          "logged attempt, e.g. %s" % (len(retried), retried[:3]))
    ctx.note("%d delivered once each in %.1f s with every sender_finish a "
             "second slower; %d claimed events given back unattempted",
             n, took, stderr_of(p).count("it is given back"))


# --- 5. soak ------------------------------------------------------------------

@test
def soak_keeps_fastcgi_memory_and_descriptors_flat(ctx):
    total = int(os.environ.get("DLRHOOK_SOAK_REQUESTS") or 200000)
    # dev/test soaks Apache + mod_fcgid (the same database behind it).
    url = (os.environ.get("DLRHOOK_SOAK_URL") or ctx.url).rstrip("/")
    check(total >= 1000, "DLRHOOK_SOAK_REQUESTS=%d is too few" % total)
    keys = []
    for i in range(4):
        c = ctx.customer("soak-%d" % i)
        c.create("https://hooks.example.com/soak/%d/a" % i)
        keys.append(c.key)
    urls = ["https://hooks.example.com/soak/a",
            "https://hooks.example.com/soak/b"]
    client = os.environ.get("DLRHOOK_SOAK_CLIENT", "").strip()
    check(client in ("", "wrk", "python"),
          "DLRHOOK_SOAK_CLIENT is wrk or python, not %r" % client)
    use_wrk = client == "wrk" or (client == "" and
                                  shutil.which("wrk") is not None)
    # Fewer connections than the smallest pool's request workers (Apache:
    # 12), so that they stay open; more only queue in the web server.
    connections = 8

    def soak(count, limit):
        if use_wrk:
            return soak_wrk(url, keys, urls, count, connections,
                            ctx.workdir, limit)
        return soak_python(url, keys, urls, count, connections, limit)

    # Warm-up: every process has served every kind of request (its
    # connection, prepared statements and allocator arenas are in place).
    soak(max(2000, min(total // 10, 10000)), 120)
    pids = fcgi_pids(url)
    check(pids, "cannot find the API's dlrhook.fcgi processes (set "
          "DLRHOOK_FCGI_PIDS_CMD, or run as root)")
    before = {pid: proc_usage(pid) for pid in pids}
    before = {k: v for k, v in before.items() if v is not None}
    check(before, "cannot read /proc of the dlrhook.fcgi processes %s"
          % sorted(pids))
    limit = max(120, total // 500)
    counts, took, errors, worst = soak(total, limit)
    after = {pid: proc_usage(pid) for pid in before}
    now = fcgi_pids(url) or set()

    answered = sum(counts.values())
    ctx.note("%d requests in %.1f s (%s, %d connections): %.0f req/s, "
             "slowest %.0f ms", answered, took, "wrk" if use_wrk else "python",
             connections, answered / took, 1000 * worst)
    growth = {pid: after[pid][0] - before[pid][0]
              for pid in before if after[pid] is not None}
    if growth:
        ctx.note("%d processes: RSS %d..%d KiB at the start, growth %+d..%+d "
                 "KiB; fds %s -> %s", len(before),
                 min(v[0] for v in before.values()),
                 max(v[0] for v in before.values()),
                 min(growth.values()), max(growth.values()),
                 sorted({v[1] for v in before.values()}),
                 sorted({v[1] for v in after.values() if v is not None}))
    new = now - set(before)
    if new:
        ctx.note("%d processes started during the soak" % len(new))

    check(answered >= total, "%d answers, want %d (ran out of time: %d s?)"
          % (answered, total, limit))
    hard = {k: v for k, v in errors.items() if v and k != "read"}
    check(not hard, "socket errors: %s" % hard)
    if errors.get("read"):
        ctx.note("%d connections closed by the server between requests",
                 errors["read"])
    check(errors.get("read", 0) <= answered // 100, "%d connections "
          "closed by the server (more than 1%% of the requests)"
          % errors.get("read", 0))
    unexpected = {s: k for s, k in counts.items() if s not in (200, 401)}
    check(not unexpected, "unexpected statuses: %s" % unexpected)
    share_401 = counts[401] / answered
    check(abs(share_401 - 0.2) < 0.01, "%.1f%% 401s, the mix has 20%%"
          % (100 * share_401))
    gone = sorted(pid for pid, v in after.items() if v is None)
    check(not gone, "dlrhook.fcgi processes %s went away during the soak"
          % gone)
    fat = {pid: g for pid, g in growth.items() if g > 1024}
    check(not fat, "RSS grew by more than 1 MiB: %s KiB"
          % {p: g for p, g in sorted(fat.items())})
    fds = {pid: (before[pid][1], after[pid][1]) for pid in before
           if before[pid][1] != after[pid][1]}
    check(not fds, "open descriptors changed (before, after): %s" % fds)


if __name__ == "__main__":
    sys.exit(run(setup, teardown, sys.argv[1:]))
