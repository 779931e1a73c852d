/* snd.c: the sender's core loop (claim, deliver, finish) and its verdicts. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "resolve.h"
#include "retry.h"
#include "sig.h"
#include "snd.h"
#include "util.h"

#define SND_FLUSH_SECS		0.1	/* longest a result waits to be
					   recorded */
#define SND_BEHIND_SECS		0.5	/* results waiting this long behind a
					   finish: no claim until it is over */
#define SND_DRY_SECS		0.5	/* after a claim that skipped hosts
					   and found all else taken: no such
					   claim again for this long */
#define SND_FINISH_CHUNK	1000	/* most elements per sender_finish */
#define SND_IDLE_SECS		30.0	/* --follow: longest sleep */
#define SND_WAIT_CAP_SECS	5.0	/* longest single wait */
#define SND_BACKOFF_MAX		30.0	/* between reconnection attempts */
#define SND_GIVE_UP_SECS	10.0	/* stopping: to record what is left */
#define SND_REPORT_SECS		60.0	/* --follow: summary line interval */
#define SND_LEASE_MARGIN	2.0	/* a job starts this long before
					   lease - timeout runs out, or more
					   when recording is slow (snd_plan) */
#define SND_RECORD_CALLS	2	/* finish calls' worth of results a
					   slow database is given at once */
#define SND_RECORD_SLACK	0.25	/* beside recording's computed wait:
					   the loop's own delays */
#define SND_START_MIN		0.5	/* recording leaves a claimed job at
					   least this long to start in */
#define SND_FIN_FORGET_SECS	10.0	/* no finish for this long: the time
					   one takes is measured anew */
#define SND_AHEAD_SECS		0.5	/* work kept claimed ahead: what the
					   slots get through in this long */
#define SND_AHEAD_MAX		8	/* at most this many times the slots */
#define SND_HOST_FORGET_SECS	60.0	/* a host without jobs is forgotten
					   (its pace too) after this long */

static const char *const snd_outcome_names[SND_OUTCOME__MAX] = {
	[SND_DELIVERED] = "delivered",
	[SND_RETRY] = "retry",
	[SND_DEAD] = "dead",
	[SND_GONE] = "gone",
};

const char *
snd_outcome_name(enum snd_outcome o)
{
	return o < SND_OUTCOME__MAX ? snd_outcome_names[o] : "?";
}

struct snd_job *
snd_job_new(void)
{
	return xcalloc(1, sizeof(struct snd_job));
}

void
snd_job_free(struct snd_job *j)
{
	if (j == NULL)
		return;
	free(j->id);
	free(j->webhook_id);
	free(j->url);
	free(j->payload);
	if (j->secret != NULL)
		explicit_bzero(j->secret, strlen(j->secret));
	free(j->secret);
	if (j->prev_secret != NULL)
		explicit_bzero(j->prev_secret, strlen(j->prev_secret));
	free(j->prev_secret);
	free(j->host);
	free(j->pin);
	free(j->signature);
	free(j->error);
	free(j->retry_after);
	free(j);
}

/* Monotonic seconds, by the loop's clock when a test gives it one. */
static double
snd_mono(const struct snd_loop *l)
{
	return l->mono != NULL ? l->mono() : clock_seconds(CLOCK_MONOTONIC);
}

void
snd_classify(struct snd_job *j, const struct retry_sched *s,
    double (*uniform)(void), time_t now)
{
	double	 delay, ra;
	long	 st = j->http_status;

	j->retry_seconds = 0;
	if (st >= 200 && st <= 299) {
		/* The receiver took it, whatever happened to the rest. */
		free(j->error);
		j->error = NULL;
		j->outcome = SND_DELIVERED;
		return;
	}
	if (st > 0) {
		free(j->error);
		if (st == 410)
			j->error = xstrdup("HTTP 410 Gone");
		else if (st >= 300 && st <= 399)
			j->error = xasprintf("HTTP %ld (redirects are not "
			    "followed)", st);
		else
			j->error = xasprintf("HTTP %ld", st);
	} else if (j->error == NULL)
		j->error = xstrdup("no response");
	if (st == 410) {
		j->outcome = SND_GONE;
		return;
	}
	if ((delay = retry_delay(s, j->attempt, uniform())) < 0) {
		j->outcome = SND_DEAD;
		return;
	}
	if ((st == 429 || st == 503) && j->retry_after != NULL &&
	    retry_after_parse(j->retry_after, now, &ra) == 0)
		delay = retry_clamp(delay, ra);
	j->outcome = SND_RETRY;
	j->retry_seconds = delay;
}

void
snd_excerpt_clean(char *s, size_t *len)
{
	unsigned char	*p = (unsigned char *)s;
	size_t		 i = 0, o = 0, n = *len;
	int		 k;

	while (i < n) {
		k = utf8_seq_len(p + i, n - i);
		if (k == -1)
			break;		/* cut off at the excerpt's end */
		if (k == 0) {
			p[o++] = '?';
			i++;
		} else if (k == 1) {
			if ((p[i] < 0x20 && p[i] != '\n' && p[i] != '\t') ||
			    p[i] == 0x7f)
				p[o++] = ' ';
			else
				p[o++] = p[i];
			i++;
		} else {
			memmove(p + o, p + i, (size_t)k);
			o += (size_t)k;
			i += (size_t)k;
		}
	}
	p[o] = '\0';
	*len = o;
}

void
snd_jobq_push(struct snd_jobq *q, struct snd_job *j)
{
	j->next = NULL;
	if (q->tail != NULL)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
}

struct snd_job *
snd_jobq_pop(struct snd_jobq *q)
{
	struct snd_job	*j;

	if ((j = q->head) != NULL) {
		if ((q->head = j->next) == NULL)
			q->tail = NULL;
		j->next = NULL;
	}
	return j;
}

/* The null HTTP backend: for --dry-run, the ceiling of the queue itself. */
struct snd_http_null {
	struct snd_jobq	 done;
};

void *
snd_http_null_new(void)
{
	return xcalloc(1, sizeof(struct snd_http_null));
}

static void
snd_http_null_start(void *ctx, struct snd_job *j)
{
	struct snd_http_null	*h = ctx;

	j->http_status = 200;
	snd_jobq_push(&h->done, j);
}

static int
snd_http_null_wait(void *ctx, struct pollfd *fds, int nfds, int timeout_ms)
{
	struct snd_http_null	*h = ctx;
	int			 i;

	for (i = 0; i < nfds; i++)
		fds[i].revents = 0;
	if (poll(fds, (nfds_t)nfds, h->done.head != NULL ? 0 : timeout_ms) == -1 &&
	    errno != EINTR)
		return -1;
	return 0;
}

static struct snd_job *
snd_http_null_done(void *ctx)
{
	struct snd_http_null	*h = ctx;

	return snd_jobq_pop(&h->done);
}

static void
snd_http_null_free(void *ctx)
{
	struct snd_http_null	*h = ctx;
	struct snd_job		*j;

	if (h == NULL)
		return;
	while ((j = snd_http_null_done(h)) != NULL)
		snd_job_free(j);
	free(h);
}

const struct snd_http_ops snd_http_null_ops = {
	.start = snd_http_null_start,
	.wait = snd_http_null_wait,
	.done = snd_http_null_done,
	.free = snd_http_null_free,
};

/* A webhook with jobs to one host, and how many: what a claim skips. */
struct snd_hook {
	char		*id;
	int		 jobs;
};

/*
 * A host with attempts in flight or jobs waiting, for the per-host cap: a
 * host that does not answer holds per_host slots at most, never all. Kept
 * SND_HOST_FORGET_SECS after its last job, for the pace of its attempts.
 */
struct snd_host {
	char		*name;
	int		 inflight;
	int		 held;		/* claimed, waiting for a slot */
	double		 took;		/* seconds an attempt takes (moving
					   average); 0: none ended yet */
	double		 idle_since;	/* monotonic: when its last job
					   ended, while it has none */
	struct snd_hook	*hooks;		/* the webhooks of those jobs */
	size_t		 nhooks;
};

/* The loop's working state. */
struct snd_state {
	struct snd_loop	*l;
	double		 began;
	size_t		 inflight;
	double		 took;		/* seconds an attempt takes, over all
					   hosts (moving average) */
	struct snd_host	*hosts;		/* with jobs in flight or held, or
					   none for under a minute */
	size_t		 nhosts, caphosts;
	struct snd_jobq	 held;		/* claimed, waiting for a slot */
	size_t		 nheld;
	struct snd_job	**back;		/* never attempted: to give back */
	size_t		 nback, capback;
	int		 claiming;	/* rows asked for by the claim in
					   flight; 0: none */
	char		**claim_skip;	/* the webhooks it skips */
	size_t		 nclaim_skip;
	char		**dry;		/* those of the last claim that came
					   back short for all others */
	size_t		 ndry;
	double		 dry_until;
	int		 want_cap;	/* most rows the next claim looks at;
					   0: no limit but batch */
	int		 claim_per_hook;	/* the claim's cap per webhook */
	unsigned long	 ended;		/* attempts ended so far */
	double		 claim_sent;	/* monotonic: its leases run from
					   about then */
	struct snd_job	**done;		/* attempts waiting for sender_finish */
	size_t		 ndone, capdone;
	size_t		 nfin;		/* the first nfin: being recorded */
	double		 fin_sent;	/* monotonic: when that call began */
	double		 fin_took;	/* seconds a finish takes
					   (snd_fin_took); 0: not timed */
	double		 fin_at;	/* monotonic: when the last one ended */
	double		 oldest_done;
	int		 db_up;
	double		 reconnect_at;
	double		 backoff;
	int		 drained;	/* the last claim came back short */
	int		 last_claim;	/* rows the last claim returned */
	double		 wake_at;	/* --follow, drained: look again then */
	char		**chg;		/* webhooks changed while a claim ran:
					   its jobs of them go back too */
	size_t		 nchg;
	int		 chg_all;	/* any webhook may have */
	int		 stopping;
	double		 stop_at;
	int		 failed;	/* the run failed: exit non-zero */
	double		 reported;	/* --follow: time of the last summary */
	unsigned long	 reported_n;	/* attempts counted by it */
};

static void	snd_forget_held(struct snd_state *, char *const *, size_t, int);
static void	snd_resume(struct snd_state *);

/* Schedules the next connection attempt, backing off up to a limit. */
static void
snd_backoff(struct snd_state *st, double now)
{
	st->db_up = 0;
	st->reconnect_at = now + st->backoff;
	st->backoff = st->backoff * 2 > SND_BACKOFF_MAX ? SND_BACKOFF_MAX :
	    st->backoff * 2;
}

static void
snd_db_lost(struct snd_state *st, double now)
{
	if (st->db_up)
		log_warnx("database connection lost: claiming stops until it "
		    "is back; claimed notifications are retried when their "
		    "lease expires");
	st->claiming = 0;	/* its rows, if any, come back after the lease */
	/* Webhook changes are not heard until the reconnection: what is
	 * held goes back then, not out with what may be an old URL. */
	snd_forget_held(st, NULL, 0, 1);
	snd_backoff(st, now);
	if (!st->l->cfg.follow)
		st->failed = 1;
}

static void
snd_reconnect(struct snd_state *st, double now)
{
	struct snd_loop	*l = st->l;

	if (l->db_ops->connect(l->db) == -1) {
		snd_backoff(st, now);
		return;
	}
	log_info("connected to the database");
	st->db_up = 1;
	st->backoff = 1;
	st->drained = 0;	/* notifications may have been missed */
}

/* Hands the attempt its verdict, logs a failure, queues it for finish. */
static void
snd_complete(struct snd_state *st, struct snd_job *j)
{
	struct snd_loop	*l = st->l;
	double		 now = snd_mono(st->l);

	j->duration_ms = (int)((now - j->mono_start) * 1000 + 0.5);
	if (j->excerpt_len > SND_EXCERPT_MAX)
		j->excerpt_len = SND_EXCERPT_MAX;
	snd_excerpt_clean(j->excerpt, &j->excerpt_len);
	snd_classify(j, &l->cfg.sched, l->uniform, time(NULL));
	switch (j->outcome) {
	case SND_DELIVERED:
		l->stats.delivered++;
		break;
	case SND_RETRY:
		l->stats.failed++;
		l->stats.retried++;
		log_warnx("notification %s attempt %d to %s failed: %s; "
		    "retry in %.0f s", j->id, j->attempt,
		    j->host != NULL ? j->host : "?", j->error,
		    j->retry_seconds);
		break;
	case SND_DEAD:
	case SND_GONE:
		l->stats.failed++;
		l->stats.dead++;
		log_warnx("notification %s attempt %d to %s failed: %s; %s",
		    j->id, j->attempt, j->host != NULL ? j->host : "?",
		    j->error, j->outcome == SND_GONE ?
		    "dead, and the webhook is disabled" :
		    "dead (no retries left)");
		break;
	case SND_OUTCOME__MAX:
		abort();
	}
	if (st->ndone == st->capdone) {
		st->capdone = st->capdone == 0 ? 64 : st->capdone * 2;
		st->done = xrealloc(st->done, st->capdone * sizeof(*st->done));
	}
	if (st->ndone == 0)
		st->oldest_done = now;
	st->done[st->ndone++] = j;
}

/*
 * --follow, nothing due: sleep until the earliest pending notification is
 * due (a retry, or a lease running out), or SND_IDLE_SECS at most.
 */
static void
snd_schedule_wake(struct snd_state *st, double now)
{
	struct snd_loop	*l = st->l;
	double		 secs;

	st->wake_at = now + SND_IDLE_SECS;
	if (l->cfg.follow && l->db_ops->next_due(l->db, &secs) == 0 &&
	    secs < SND_IDLE_SECS)
		st->wake_at = now + (secs < 0.05 ? 0.05 : secs);
}

/* The first n finished attempts are dealt with: they go. */
static void
snd_done_drop(struct snd_state *st, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		snd_job_free(st->done[i]);
	memmove(st->done, st->done + n, (st->ndone - n) * sizeof(*st->done));
	st->ndone -= n;
}

static size_t	snd_unhold(struct snd_state *, int);

static void
snd_refused(struct snd_state *st, size_t n)
{
	log_warnx("the database refused %zu results; those notifications "
	    "are retried when their lease expires", n);
	st->l->stats.unrecorded += n;
	st->failed = 1;
	snd_done_drop(st, n);
}

/*
 * The finish in flight is over, for snd_plan: what it took counts at once
 * if slower than the estimate, by an eighth of the difference if faster,
 * so that one quick call after slow ones does not promise the next.
 */
static void
snd_fin_took(struct snd_state *st, double now)
{
	double	 took = now - st->fin_sent;

	if (took >= st->fin_took)
		st->fin_took = took;
	else
		st->fin_took -= (st->fin_took - took) / 8;
	st->fin_at = now;
}

/*
 * Collects the outcome of the sender_finish in flight (the first nfin of
 * done), if it is over; block: waits for it. Lost, they stay for after
 * the reconnection.
 */
static void
snd_finished(struct snd_state *st, int block)
{
	struct snd_loop	*l = st->l;
	size_t		 i, n = st->nfin;
	int		 rc, retries = 0;

	if (n == 0 || (rc = l->db_ops->finish_result(l->db, block)) == 1)
		return;
	st->nfin = 0;
	if (rc == SND_DB_LOST) {
		snd_db_lost(st, snd_mono(st->l));
		return;
	}
	snd_fin_took(st, snd_mono(st->l));
	if (rc == SND_DB_REJECTED) {
		snd_refused(st, n);
		return;
	}
	for (i = 0; i < n; i++)
		if (st->done[i]->outcome == SND_RETRY)
			retries = 1;
	snd_done_drop(st, n);
	/* A retry may now be due before the time we meant to wake. */
	if (retries && st->drained && l->cfg.follow)
		snd_schedule_wake(st, snd_mono(st->l));
	/* Recording has room again for the jobs that waited for it. */
	snd_resume(st);
}

/*
 * Starts recording the finished attempts, SND_FINISH_CHUNK at most in one
 * sender_finish call, which runs while the loop goes on; one at a time.
 */
static void
snd_flush(struct snd_state *st)
{
	struct snd_loop	*l = st->l;
	size_t		 n = st->ndone;
	int		 rc;

	if (st->nfin > 0 || n == 0)
		return;
	if (n > SND_FINISH_CHUNK)
		n = SND_FINISH_CHUNK;
	st->oldest_done = snd_mono(st->l);	/* of those left for the next call */
	if ((rc = l->db_ops->finish_start(l->db, st->done, n)) == 0) {
		st->nfin = n;
		/* After a long pause, this call says anew what one takes. */
		if (st->oldest_done - st->fin_at >= SND_FIN_FORGET_SECS)
			st->fin_took = 0;
		st->fin_sent = st->oldest_done;
	} else if (rc == SND_DB_LOST)
		snd_db_lost(st, snd_mono(st->l));
	else
		snd_refused(st, n);
}

/* Records everything finished before the run ends, waiting for each call. */
static void
snd_flush_all(struct snd_state *st)
{
	snd_finished(st, 1);
	while (st->ndone > 0 && st->db_up) {
		snd_flush(st);
		snd_finished(st, 1);
	}
}

/*
 * Seconds a sender_finish takes: the estimate, or what the one running has
 * taken if that is longer already. *known: a finish was timed, and not
 * long ago (after a pause the database may be another, and a sender that
 * started nothing would never time one again).
 */
static double
snd_fin_secs(const struct snd_state *st, double now, int *known)
{
	double	 f = st->fin_took;

	if (st->nfin == 0 && now - st->fin_at >= SND_FIN_FORGET_SECS)
		f = 0;
	*known = f > 0;
	if (st->nfin > 0 && now - st->fin_sent > f)
		f = now - st->fin_sent;
	return f;
}

/* What recording allows the attempts now: snd_plan. */
struct snd_plan {
	double		 record;	/* seconds kept for recording between
					   an attempt's end and its lease's */
	size_t		 backlog;	/* most results waiting for a call
					   and attempts in flight together;
					   0: none may start */
	int		 slow;		/* recording, not the lease margin,
					   sets how late a job may start */
};

/*
 * Results are recorded in order by sender_finish calls of up to
 * SND_FINISH_CHUNK, one at a time, each taking F seconds (snd_fin_secs).
 * A result whose attempt ends with at most k * SND_FINISH_CHUNK results
 * waiting for a call and attempts in flight, its own included, waits for
 * the call running (F at most), then for k calls at most, its own the
 * last, the first within SND_FLUSH_SECS: (k + 1) * F + SND_FLUSH_SECS.
 * An attempt starts only while that count, with it, stays within the cap
 * (snd_record_room), so none started later pushes a result further back.
 * A job that starts by claimed + lease - timeout - record, where record
 * >= (k + 1) * F + SND_FLUSH_SECS + SND_RECORD_SLACK, is thus recorded
 * within its lease.
 *
 * record is SND_LEASE_MARGIN while that covers SND_RECORD_CALLS calls (a
 * quick database: k as large as the margin allows; the rule as it was).
 * Slower, it grows to cover them (one call recorded while the next
 * fills), but leaves a claimed job SND_START_MIN to start in, and k is
 * what it covers. As F grows, record never shrinks and k never grows;
 * as F falls, a later job's cap still fits an earlier job's record. k < 1
 * (at lease 6 and timeout 1: F over 2.07 s): no result could be recorded
 * in time, and nothing starts until the estimate is forgotten. Until a
 * finish is timed, one call's worth at most.
 */
static void
snd_plan(const struct snd_state *st, double now, struct snd_plan *p)
{
	const struct snd_config	*c = &st->l->cfg;
	double			 f, r, k;
	int			 known;

	p->record = SND_LEASE_MARGIN;
	p->backlog = SIZE_MAX;
	p->slow = 0;
	if ((f = snd_fin_secs(st, now, &known)) > 0) {
		r = (SND_RECORD_CALLS + 1) * f + SND_FLUSH_SECS +
		    SND_RECORD_SLACK;
		if (r > c->lease - c->timeout - SND_START_MIN)
			r = c->lease - c->timeout - SND_START_MIN;
		if (r > p->record) {
			p->record = r;
			p->slow = 1;
		}
		/* Floored by the cast; a hair more, or 3 * f / f may be 2.99. */
		k = (p->record - SND_FLUSH_SECS - SND_RECORD_SLACK) / f - 1 +
		    1e-9;
		if (k < 1)
			p->backlog = 0;
		else if (k < SIZE_MAX / SND_FINISH_CHUNK / 2)
			p->backlog = (size_t)k * SND_FINISH_CHUNK;
	}
	if (!known && p->backlog > SND_FINISH_CHUNK)
		p->backlog = SND_FINISH_CHUNK;
}

/* How many more attempts may start before recording is at its cap, with
 * held more to come (the results of the call running do not count). */
static size_t
snd_record_room(const struct snd_state *st, const struct snd_plan *p,
    size_t held)
{
	size_t	 n = st->ndone - st->nfin + st->inflight + held;

	return p->backlog > n ? p->backlog - n : 0;
}

static struct snd_host *
snd_host_find(struct snd_state *st, const char *name)
{
	size_t	 i;

	for (i = 0; i < st->nhosts; i++)
		if (strcmp(st->hosts[i].name, name) == 0)
			return &st->hosts[i];
	return NULL;
}

static int
snd_host_full(const struct snd_state *st, const struct snd_host *h)
{
	return st->l->cfg.per_host > 0 && h->inflight >= st->l->cfg.per_host;
}

/* A job of host h may start now: a free slot, room at its host, and
 * room for its result in recording (snd_plan p). */
static int
snd_can_launch(const struct snd_state *st, const struct snd_host *h,
    const struct snd_plan *p)
{
	return (int)st->inflight < st->l->cfg.concurrency &&
	    !snd_host_full(st, h) && snd_record_room(st, p, 0) > 0;
}

/*
 * How many jobs may wait for slots numbering n whose attempts take took
 * seconds: what they get through in SND_AHEAD_SECS, at least n (a slot
 * that frees never waits for a claim), at most SND_AHEAD_MAX times n. A
 * host that answers in milliseconds so gets claims large enough to be
 * cheap per row (pgbench: 36-40 us a row in claims of 64 rows, 24 from
 * 200 rows on; bench/sender's drain claims 240 rows on average, 110-190
 * at 3 times: docs/BENCHMARKS.md, findings 15 and 16); one that takes
 * seconds, or of which no attempt has ended yet, no more than n, whose
 * last then starts within one attempt's time.
 */
static int
snd_ahead(int n, double took)
{
	double	 k;

	if (took <= 0)
		return n;
	k = SND_AHEAD_SECS / took;
	if (k > SND_AHEAD_MAX)
		k = SND_AHEAD_MAX;
	return k > 1 ? (int)(n * k) : n;
}

/* The jobs host h may have claimed beside those in flight. */
static int
snd_host_room(const struct snd_state *st, const struct snd_host *h)
{
	int	 cap = st->l->cfg.per_host;

	return cap + snd_ahead(cap, h->took) - h->inflight - h->held;
}

/*
 * The host has its cap in flight and as many waiting as snd_ahead allows
 * it: claims pass over its webhooks until it has room. (A host with room
 * gets more ahead of its slots, so that they never wait for a claim.)
 */
static int
snd_host_stocked(const struct snd_state *st, const struct snd_host *h)
{
	return st->l->cfg.per_host > 0 && snd_host_room(st, h) <= 0;
}

/*
 * The most rows of one webhook the next claim may take: the least room
 * of the hosts with jobs that it does not pass over, at least --per-host;
 * with none, what one would keep ahead at the pace of all attempts. 0:
 * no cap.
 */
static int
snd_claim_per_hook(const struct snd_state *st)
{
	const struct snd_config	*c = &st->l->cfg;
	size_t			 i;
	int			 k = -1, room;

	if (c->dry_run || c->per_host <= 0)
		return 0;
	for (i = 0; i < st->nhosts; i++) {
		if (snd_host_stocked(st, &st->hosts[i]))
			continue;
		room = snd_host_room(st, &st->hosts[i]);
		if (k == -1 || room < k)
			k = room;
	}
	if (k == -1)
		k = snd_ahead(c->per_host, st->took);
	return k < c->per_host ? c->per_host : k;
}

/* A moving average of the seconds attempts take: the last 8 count most. */
static void
snd_took(double *avg, double secs)
{
	*avg = *avg <= 0 ? secs : *avg + (secs - *avg) / 8;
}

/* Keeps a claimed job that was never attempted, to give it back. */
static void
snd_give_back(struct snd_state *st, struct snd_job *j)
{
	if (st->nback == st->capback) {
		st->capback = st->capback == 0 ? 64 : st->capback * 2;
		st->back = xrealloc(st->back, st->capback * sizeof(*st->back));
	}
	st->back[st->nback++] = j;
}

/* Forgets the hosts that have had no jobs for SND_HOST_FORGET_SECS. */
static void
snd_host_forget(struct snd_state *st, double now)
{
	struct snd_host	*h;
	size_t		 i = 0;

	while (i < st->nhosts) {
		h = &st->hosts[i];
		if (h->inflight > 0 || h->held > 0 ||
		    now - h->idle_since < SND_HOST_FORGET_SECS) {
			i++;
			continue;
		}
		free(h->hooks);
		free(h->name);
		*h = st->hosts[--st->nhosts];
	}
}

/* Counts a job (in flight or held) against its host and its webhook. */
static struct snd_host *
snd_host_add(struct snd_state *st, const struct snd_job *j)
{
	struct snd_host	*h;
	size_t		 i;

	if ((h = snd_host_find(st, j->host)) == NULL) {
		snd_host_forget(st, snd_mono(st->l));
		if (st->nhosts == st->caphosts) {
			st->caphosts = st->caphosts == 0 ? 16 :
			    st->caphosts * 2;
			st->hosts = xrealloc(st->hosts,
			    st->caphosts * sizeof(*st->hosts));
		}
		h = &st->hosts[st->nhosts++];
		memset(h, 0, sizeof(*h));
		h->name = xstrdup(j->host);
	}
	for (i = 0; i < h->nhooks; i++)
		if (strcmp(h->hooks[i].id, j->webhook_id) == 0)
			break;
	if (i == h->nhooks) {
		h->hooks = xrealloc(h->hooks, (h->nhooks + 1) *
		    sizeof(*h->hooks));
		h->hooks[h->nhooks].id = xstrdup(j->webhook_id);
		h->hooks[h->nhooks++].jobs = 0;
	}
	h->hooks[i].jobs++;
	return h;
}

/* The job no longer counts. A host without jobs is kept for a while, for
 * the pace of its attempts (snd_ahead): a host whose jobs all ended
 * between two claims is no stranger to the next. */
static void
snd_host_drop(struct snd_state *st, struct snd_host *h, const char *webhook)
{
	size_t	 i;

	for (i = 0; i < h->nhooks; i++)
		if (strcmp(h->hooks[i].id, webhook) == 0)
			break;
	if (i < h->nhooks && --h->hooks[i].jobs == 0) {
		free(h->hooks[i].id);
		h->hooks[i] = h->hooks[--h->nhooks];
	}
	if (h->inflight == 0 && h->held == 0)
		h->idle_since = snd_mono(st->l);
}

/* Signs the job and hands it to the HTTP client. */
static void
snd_launch(struct snd_state *st, struct snd_job *j, struct snd_host *h)
{
	struct snd_loop	*l = st->l;

	j->mono_start = snd_mono(st->l);
	j->started = clock_seconds(CLOCK_REALTIME);
	j->timestamp = (long long)time(NULL);
	j->signature = sig_header(j->secret, j->prev_secret, j->id,
	    j->timestamp, j->payload, strlen(j->payload));
	if (j->signature == NULL) {
		j->error = xstrdup("the webhook's signing secret is not valid "
		    "base64");
		snd_host_drop(st, h, j->webhook_id);
		snd_complete(st, j);
		return;
	}
	h->inflight++;
	j->host_slot = 1;
	l->http_ops->start(l->http, j);
	st->inflight++;
}

/* Too late to be sent and recorded within the lease (a slow DNS, a long
 * wait for its host, a slow database: snd_plan): the job is given back,
 * to be claimed again. */
static int
snd_too_late(struct snd_state *st, struct snd_job *j, double now,
    const struct snd_plan *p)
{
	struct snd_loop	*l = st->l;

	if (p->backlog > 0 && now <= j->claimed + l->cfg.lease -
	    l->cfg.timeout - p->record)
		return 0;
	log_warnx("notification %s attempt %d not started: its lease "
	    "would run out before its result is recorded (%.1f s kept for "
	    "that); it is given back", j->id, j->attempt, p->record);
	return 1;
}

/* Prepares one claimed notification and starts its attempt, or holds it
 * while its host is at the per-host cap, every slot is taken or recording
 * has no room (snd_can_launch). */
static void
snd_begin(struct snd_state *st, struct snd_job *j)
{
	struct snd_loop		*l = st->l;
	struct resolve_dest	 d;
	struct snd_host		*h;
	struct snd_plan		 p;
	double			 now = snd_mono(st->l);

	j->next = NULL;
	if (l->cfg.dry_run) {
		j->mono_start = now;
		j->started = clock_seconds(CLOCK_REALTIME);
		l->http_ops->start(l->http, j);
		st->inflight++;
		return;
	}
	snd_plan(st, now, &p);
	if (snd_too_late(st, j, now, &p)) {
		snd_give_back(st, j);
		return;
	}
	if (resolve_dest(l->resolver, j->url, now, &d) == -1) {
		j->host = d.host;
		j->error = d.error;
		d.host = d.error = NULL;
		resolve_dest_clear(&d);
		j->mono_start = now;
		j->started = clock_seconds(CLOCK_REALTIME);
		snd_complete(st, j);
		return;
	}
	j->host = d.host;
	j->pin = d.pin;
	d.host = d.pin = NULL;
	resolve_dest_clear(&d);
	h = snd_host_add(st, j);
	if (snd_can_launch(st, h, &p)) {
		snd_launch(st, j, h);
		return;
	}
	h->held++;
	snd_jobq_push(&st->held, j);
	st->nheld++;
}

/* A finished attempt gives its host's slot back. */
static void
snd_release(struct snd_state *st, struct snd_job *j)
{
	struct snd_host	*h;
	double		 took;

	if (!j->host_slot || (h = snd_host_find(st, j->host)) == NULL)
		return;
	j->host_slot = 0;
	took = snd_mono(st->l) - j->mono_start;
	snd_took(&h->took, took);
	snd_took(&st->took, took);
	h->inflight--;
	snd_host_drop(st, h, j->webhook_id);
}

/*
 * Starts the held jobs that may start again (a slot, their host, room in
 * recording), in claim order, and gives back those too late. all: none is
 * started, each is given back (stopping); the count.
 */
static size_t
snd_unhold(struct snd_state *st, int all)
{
	struct snd_jobq	 rest = { NULL, NULL };
	struct snd_job	*j;
	struct snd_host	*h;
	struct snd_plan	 p;
	double		 now = snd_mono(st->l);
	size_t		 left = 0, room;
	int		 late;

	snd_plan(st, now, &p);
	room = snd_record_room(st, &p, 0);
	while ((j = snd_jobq_pop(&st->held)) != NULL) {
		late = !all && snd_too_late(st, j, now, &p);
		/* With every slot taken, or no room in recording, the rest
		 * wait in order, unless their time is up. */
		if (!all && !late && ((int)st->inflight >=
		    st->l->cfg.concurrency || room == 0)) {
			snd_jobq_push(&rest, j);
			continue;
		}
		h = snd_host_find(st, j->host);
		if (!all && !late && snd_host_full(st, h)) {
			snd_jobq_push(&rest, j);
			continue;
		}
		h->held--;
		st->nheld--;
		if (!all && !late) {
			snd_launch(st, j, h);
			room--;		/* in flight, or failed and done */
			continue;
		}
		if (all)
			left++;
		snd_host_drop(st, h, j->webhook_id);
		snd_give_back(st, j);
	}
	st->held = rest;
	return left;
}

/* Gives back the jobs never attempted, when the claim's connection is
 * free; if it cannot, they are claimed again when their lease expires. */
static void
snd_give_back_now(struct snd_state *st, double now)
{
	struct snd_loop	*l = st->l;
	int		 n;

	if (st->nback == 0 || !st->db_up || st->claiming)
		return;
	if ((n = l->db_ops->release(l->db, st->back, st->nback)) >= 0) {
		log_debug("gave back %zu claimed notifications (%d were "
		    "still ours)", st->nback, n);
		l->stats.released += st->nback;
	} else {
		log_warnx("%zu claimed notifications could not be given "
		    "back; they are retried when their lease expires",
		    st->nback);
		l->stats.abandoned += st->nback;
		if (!l->db_ops->connected(l->db))
			snd_db_lost(st, now);
	}
	while (st->nback > 0)
		snd_job_free(st->back[--st->nback]);
}

/*
 * The fewest rows worth a claim while attempts are in flight: a claim
 * costs about a fifth of a millisecond however few rows it takes, and
 * less a row the more it takes, so it waits until it can take half of
 * what is kept ahead of the slots (a batch at most).
 */
static int
snd_threshold(const struct snd_state *st, const struct snd_plan *p)
{
	const struct snd_config	*c = &st->l->cfg;
	int			 t;

	t = c->dry_run || p->slow ? c->concurrency :
	    snd_ahead(c->concurrency, st->took);
	if (t > c->batch)
		t = c->batch;
	t = c->dry_run ? t / 4 : t / 2;
	if (st->want_cap > 0 && t > st->want_cap)
		t = st->want_cap;
	if ((size_t)t > p->backlog / 2)
		t = (int)(p->backlog / 2);
	return t < 1 ? 1 : t;
}

/*
 * How many jobs may wait for a slot: snd_ahead's; while recording sets the
 * pace (snd_plan), what the slots get through in half the time a claimed
 * job has to start in (SND_AHEAD_SECS at most), and none for attempts
 * that take longer than that, so that each starts in time.
 */
static int
snd_claim_ahead(const struct snd_state *st, const struct snd_plan *p)
{
	const struct snd_config	*c = &st->l->cfg;
	double			 secs, k;

	if (!p->slow)
		return snd_ahead(c->concurrency, st->took);
	if (st->took <= 0)
		return 0;
	secs = (c->lease - c->timeout - p->record) / 2;
	if (secs > SND_AHEAD_SECS)
		secs = SND_AHEAD_SECS;
	k = secs / st->took;
	return (int)(c->concurrency * (k > SND_AHEAD_MAX ? SND_AHEAD_MAX : k));
}

/*
 * How many more rows a claim may take now. The sender keeps claimed
 * those in flight and as many ready to start as snd_ahead allows (from
 * --concurrency to SND_AHEAD_MAX times that), so that a slot that frees
 * never waits for a claim (the claim runs while the transfers do).
 * Leases allow it: a ready job starts within about an attempt's time,
 * since the claim takes no more of one webhook than its host has room
 * for, and claims pass over hosts that have as many waiting as they get
 * through in SND_AHEAD_SECS (--per-host of them for a host that is
 * slow). Those waiting for a host at its cap wait for that host, not
 * for a slot: up to --concurrency of them are not counted. (Counted, a
 * host that does not answer took a quarter of every claim's room:
 * bench/sender's isolation case claimed 47 rows instead of 64 for the
 * other hosts.)
 *
 * Recording bounds it too (snd_plan): no more than can start before
 * recording is at its cap, those held counted.
 */
static int
snd_free_slots(const struct snd_state *st, const struct snd_plan *p)
{
	const struct snd_config	*c = &st->l->cfg;
	size_t			 i, room;
	int			 want, waiting = 0;

	if (c->dry_run)
		want = c->batch;
	else {
		for (i = 0; i < st->nhosts; i++)
			if (snd_host_full(st, &st->hosts[i]))
				waiting += st->hosts[i].held;
		if (waiting > c->concurrency)
			waiting = c->concurrency;
		want = c->concurrency + snd_claim_ahead(st, p) -
		    (int)st->inflight - (int)st->nheld + waiting;
	}
	if (st->want_cap > 0 && want > st->want_cap)
		want = st->want_cap;
	room = snd_record_room(st, p, st->nheld);
	if (want > 0 && (size_t)want > room)
		want = (int)room;
	return want > c->batch ? c->batch : want;
}

/* The webhooks of the hosts at their cap, copies: what the next claim
 * skips. */
static char **
snd_skip_list(const struct snd_state *st, size_t *n)
{
	char		**skip = NULL;
	size_t		 i, k, cap = 0;

	*n = 0;
	for (i = 0; i < st->nhosts; i++) {
		if (!snd_host_stocked(st, &st->hosts[i]))
			continue;
		for (k = 0; k < st->hosts[i].nhooks; k++) {
			if (*n == cap) {
				cap = cap == 0 ? 8 : cap * 2;
				skip = xrealloc(skip, cap * sizeof(*skip));
			}
			skip[(*n)++] = xstrdup(st->hosts[i].hooks[k].id);
		}
	}
	return skip;
}

/*
 * Recording is behind: a sender_finish runs and results have waited behind
 * it for a while. Claims wait then, so that the database catches up and
 * what is claimed is recorded within its lease (a slow database must not
 * make the sender run ahead of it into expired leases and resends).
 */
static int
snd_behind(const struct snd_state *st, double now)
{
	return st->nfin > 0 && st->ndone > st->nfin &&
	    now - st->oldest_done >= SND_BEHIND_SECS;
}

static void
snd_strs_free(char ***v, size_t *n)
{
	while (*n > 0)
		free((*v)[--*n]);
	free(*v);
	*v = NULL;
}

/* The webhook is one of a host that has its cap in flight and as many
 * waiting: claims skip it. */
static int
snd_hook_skipped(const struct snd_state *st, const char *webhook)
{
	size_t	 i, k;

	for (i = 0; i < st->nhosts; i++) {
		if (!snd_host_stocked(st, &st->hosts[i]))
			continue;
		for (k = 0; k < st->hosts[i].nhooks; k++)
			if (strcmp(st->hosts[i].hooks[k].id, webhook) == 0)
				return 1;
	}
	return 0;
}

/*
 * A claim now would find nothing: the last one that skipped webhooks came
 * back short not long ago, and every one it skipped is still skipped.
 * Without this, a host with a long backlog at its cap made every claim
 * step over its whole backlog again, one claim per finished attempt.
 */
static int
snd_dry(const struct snd_state *st, double now)
{
	size_t	 i;

	if (st->ndry == 0 || now >= st->dry_until)
		return 0;
	for (i = 0; i < st->ndry; i++)
		if (!snd_hook_skipped(st, st->dry[i]))
			return 0;	/* that one has room again */
	return 1;
}

/* A NOTIFY said new events came: look again, now, even past a pause
 * after a short claim or a drained queue. */
static void
snd_new_work(struct snd_state *st)
{
	st->drained = 0;
	st->dry_until = 0;
}

static int
snd_hook_in(char *const *ids, size_t n, int all, const char *id)
{
	size_t	 i;

	if (all)
		return 1;
	for (i = 0; i < n; i++)
		if (strcmp(ids[i], id) == 0)
			return 1;
	return 0;
}

/*
 * Gives back the held jobs of the webhooks in ids (all: every held job).
 * They were claimed with the URL and secrets of before a PUT, a DELETE, a
 * rotation or the webhook being disabled: given back, they are claimed
 * again as the webhook is now, or not at all. Only attempts already sent
 * may reach the old URL.
 */
static void
snd_forget_held(struct snd_state *st, char *const *ids, size_t n, int all)
{
	struct snd_jobq	 rest = { NULL, NULL };
	struct snd_job	*j;
	struct snd_host	*h;
	size_t		 gone = 0;

	while ((j = snd_jobq_pop(&st->held)) != NULL) {
		if (!snd_hook_in(ids, n, all, j->webhook_id)) {
			snd_jobq_push(&rest, j);
			continue;
		}
		h = snd_host_find(st, j->host);
		h->held--;
		st->nheld--;
		snd_host_drop(st, h, j->webhook_id);
		snd_give_back(st, j);
		gone++;
	}
	st->held = rest;
	if (gone > 0)
		log_debug("gave back %zu claimed notifications: their webhook "
		    "changed before they were sent", gone);
}

/*
 * Reads what the database announced: new events (--follow), and webhook
 * changes (009's trigger), whose held jobs go back. keep: a claim is
 * running, and may have read such a webhook before its change; the ids
 * are kept for its jobs (snd_claimed). 0, or -1 when the connection is
 * lost.
 */
static int
snd_changes(struct snd_state *st, int keep)
{
	struct snd_loop	*l = st->l;
	char		**ids;
	size_t		  n = 0;
	int		  all = 0, k;

	if (!st->db_up || l->cfg.dry_run)
		return 0;
	if ((k = l->db_ops->notified(l->db)) < 0) {
		snd_db_lost(st, snd_mono(l));
		return -1;
	}
	if (k > 0 && l->cfg.follow)
		snd_new_work(st);
	ids = l->db_ops->changed(l->db, &n, &all);
	if (n > 0 || all)
		snd_forget_held(st, ids, n, all);
	if (keep && (n > 0 || all)) {
		if (n > 0) {
			st->chg = xrealloc(st->chg, (st->nchg + n) *
			    sizeof(*st->chg));
			memcpy(st->chg + st->nchg, ids, n * sizeof(*ids));
			st->nchg += n;
		}
		st->chg_all |= all;
	} else
		snd_strs_free(&ids, &n);
	free(ids);
	return 0;
}

/* A claim is worth starting now, of *want rows: the room for it and the
 * fewest worth it, both under what recording allows (snd_plan, worked out
 * once for the two). */
static int
snd_claim_ready(const struct snd_state *st, double now, int *want)
{
	struct snd_plan	 p;

	if (st->claiming || st->drained || st->stopping || !st->db_up ||
	    snd_behind(st, now))
		return 0;
	snd_plan(st, now, &p);
	*want = snd_free_slots(st, &p);
	if (*want <= 0 || (st->inflight > 0 && *want < snd_threshold(st, &p)))
		return 0;
	return !snd_dry(st, now);
}

/* Starts claiming as many rows as there are free transfer slots. */
static void
snd_claim(struct snd_state *st, double now)
{
	struct snd_loop		*l = st->l;
	const struct snd_config	*c = &l->cfg;
	char			**skip;
	size_t			 nskip;
	int			 want, per_hook;

	if (!snd_claim_ready(st, now, &want))
		return;
	skip = snd_skip_list(st, &nskip);
	per_hook = snd_claim_per_hook(st);
	if (l->db_ops->claim_start(l->db, want, c->lease,
	    (const char *const *)skip, nskip, per_hook) == 0) {
		st->claiming = want;
		st->claim_per_hook = per_hook;
		st->claim_sent = now;
		/* Kept: if it comes back short, what it skipped is dry. */
		snd_strs_free(&st->claim_skip, &st->nclaim_skip);
		st->claim_skip = skip;
		st->nclaim_skip = nskip;
	} else {
		snd_strs_free(&skip, &nskip);
		snd_db_lost(st, now);
	}
}

/*
 * How many webhooks have cap rows in the claim's list, which the claim
 * may have left more of due (sender_claim's p_per_webhook); *hooks: how
 * many webhooks it has rows of.
 */
static int
snd_capped(const struct snd_job *list, int cap, int *hooks)
{
	const struct snd_job	*j, *k;
	int			 n, capped = 0;

	*hooks = 0;
	if (cap <= 0)
		return 0;
	for (j = list; j != NULL; j = j->next) {
		/* Counted at the first row of each webhook only. */
		for (k = list; k != j; k = k->next)
			if (strcmp(k->webhook_id, j->webhook_id) == 0)
				break;
		if (k != j)
			continue;
		(*hooks)++;
		for (n = 0, k = j; k != NULL; k = k->next)
			if (strcmp(k->webhook_id, j->webhook_id) == 0)
				n++;
		if (n >= cap)
			capped++;
	}
	return capped;
}

/*
 * Collects the claim in flight, if it is over (block: waits for it), and
 * starts its rows; give_back: gives them back instead (the run ends).
 */
static void
snd_claimed(struct snd_state *st, int block, int give_back)
{
	struct snd_loop		*l = st->l;
	const struct snd_config	*c = &l->cfg;
	struct snd_job		*list = NULL, *j, *next, **tail;
	double			 now;
	int			 want = st->claiming, n, capped, hooks;

	if (want == 0 ||
	    (n = l->db_ops->claim_result(l->db, block, &list)) == -2)
		return;
	st->claiming = 0;
	now = snd_mono(st->l);
	if (n < 0) {
		snd_db_lost(st, now);
		return;
	}
	st->last_claim = n;
	if (n > 0 && !c->dry_run)
		resolve_expire(l->resolver, now);	/* before new lookups */
	capped = snd_capped(list, st->claim_per_hook, &hooks);
	/* A claim locks the rows it looks at, those over the cap too: when
	 * few webhooks filled the last one, the next looks at no more than
	 * they and one more could give. */
	st->want_cap = capped > 0 ? st->claim_per_hook * (hooks + 1) : 0;
	if (n < want && capped == 0) {
		if (st->nclaim_skip > 0) {
			/* Not drained: all else is taken for now. */
			snd_strs_free(&st->dry, &st->ndry);
			st->dry = st->claim_skip;
			st->ndry = st->nclaim_skip;
			st->claim_skip = NULL;
			st->nclaim_skip = 0;
			st->dry_until = now + SND_DRY_SECS;
		} else {
			st->drained = 1;
			snd_schedule_wake(st, now);
		}
	}
	snd_strs_free(&st->claim_skip, &st->nclaim_skip);
	/* The changes that came with the claim's answer, or before it
	 * while it ran: its jobs of those webhooks go back unsent. */
	if (!give_back && snd_changes(st, 1) == -1)
		st->chg_all = 1;	/* changes may have been lost */
	if (!give_back && (st->nchg > 0 || st->chg_all)) {
		for (j = list, tail = &list; j != NULL; j = next) {
			next = j->next;
			if (snd_hook_in(st->chg, st->nchg, st->chg_all,
			    j->webhook_id)) {
				snd_give_back(st, j);
				continue;
			}
			*tail = j;
			tail = &j->next;
		}
		*tail = NULL;
	}
	snd_strs_free(&st->chg, &st->nchg);
	st->chg_all = 0;
	for (j = list; j != NULL; j = next) {
		next = j->next;
		if (give_back) {
			snd_give_back(st, j);
			continue;
		}
		j->claimed = st->claim_sent;
		snd_begin(st, j);
	}
}

/*
 * Starts the held jobs that may start (snd_unhold), unless stopping: a
 * held job starts only if its webhook has not changed since its claim, so
 * the changes announced so far are read first. That read takes in the
 * claim's answer too, if it has come: it is looked at here, since its
 * socket has nothing more to say.
 */
static void
snd_resume(struct snd_state *st)
{
	if (st->nheld == 0 || st->stopping || *st->l->stop ||
	    snd_changes(st, st->claiming != 0) == -1)
		return;
	snd_unhold(st, 0);
	if (st->claiming)
		snd_claimed(st, 0, 0);
}

/* Milliseconds to wait for the next thing the loop has to do. */
static int
snd_timeout(const struct snd_state *st, double now)
{
	const struct snd_config	*c = &st->l->cfg;
	double			 t = SND_WAIT_CAP_SECS;
	int			 want;

	if (st->ndone > 0 && st->nfin == 0 && st->db_up &&
	    st->oldest_done + SND_FLUSH_SECS - now < t)
		t = st->oldest_done + SND_FLUSH_SECS - now;
	if (!st->db_up && st->reconnect_at - now < t)
		t = st->reconnect_at - now;
	if (c->follow && st->drained && !st->stopping && st->wake_at - now < t)
		t = st->wake_at - now;
	if (!c->follow && !st->stopping &&
	    st->began + c->max_seconds - now < t)
		t = st->began + c->max_seconds - now;
	if ((st->nfin > 0 && st->l->db_ops->finish_fd(st->l->db) == -1) ||
	    (st->claiming && st->l->db_ops->claim_fd(st->l->db) == -1))
		t = 0;		/* nothing to wait on: look again */
	if (st->ndry > 0 && now < st->dry_until && st->dry_until - now < t)
		t = st->dry_until - now;
	if (snd_claim_ready(st, now, &want))
		t = 0;		/* room for another claim right away */
	if (t < 0)
		t = 0;
	return (int)(t * 1000 + 0.999);
}

/* Empties the self-pipe the signal handler writes. */
static void
snd_drain_fd(int fd)
{
	char	 b[64];

	while (read(fd, b, sizeof(b)) > 0)
		continue;
}

static void
snd_begin_stopping(struct snd_state *st, double now, const char *why)
{
	size_t	 left;

	if (st->stopping)
		return;
	st->stopping = 1;
	st->stop_at = now;
	if (why != NULL)
		log_info("%s: finishing %zu attempts in flight", why,
		    st->inflight);
	if ((left = snd_unhold(st, 1)) > 0)
		log_info("%zu claimed notifications were waiting for a slot "
		    "and are not sent now; they are given back", left);
}

/* The summary line: totals since the sender started. */
static void
snd_report(const struct snd_loop *l, double began)
{
	log_info("delivered=%lu failed=%lu retried=%lu dead=%lu seconds=%.1f",
	    l->stats.delivered, l->stats.failed, l->stats.retried,
	    l->stats.dead, snd_mono(l) - began);
}

int
snd_run(struct snd_loop *l)
{
	struct snd_state	 st;
	struct snd_job		*j;
	struct pollfd		 fds[3];	/* wake, database, finish */
	double			 now;
	int			 nfds, wake_i, db_i, fin_i, cl_i, n, fd, was_drained;
	int			 want;

	memset(&st, 0, sizeof(st));
	st.l = l;
	st.backoff = 1;
	st.began = snd_mono(l);
	st.reported = st.began;
	if (l->uniform == NULL)
		l->uniform = retry_uniform;
	if (l->db_ops->connect(l->db) == 0)
		st.db_up = 1;
	else if (!l->cfg.follow) {
		log_warnx("cannot reach the database; nothing was sent");
		return 1;
	} else {
		log_warnx("cannot reach the database; trying again");
		snd_backoff(&st, st.began);
	}

	for (;;) {
		now = snd_mono(l);
		if (*l->stop >= 2)
			break;
		if (*l->stop)
			snd_begin_stopping(&st, now, "stop requested");
		else if (!l->cfg.follow && now - st.began >= l->cfg.max_seconds)
			snd_begin_stopping(&st, now, st.inflight > 0 ?
			    "--max-seconds spent" : NULL);
		if (!l->cfg.follow && !st.db_up && st.failed)
			snd_begin_stopping(&st, now, NULL);

		if (!st.db_up && now >= st.reconnect_at &&
		    (l->cfg.follow || st.ndone > 0))
			snd_reconnect(&st, now);
		/*
		 * --once with nothing in flight records everything before it
		 * claims again, so that what it finds is the queue's state.
		 * While work goes on (a claim running ahead, transfers), the
		 * results are recorded beside it, --batch or SND_FLUSH_SECS
		 * worth at a time: a sender_finish of 64 rows costs
		 * PostgreSQL 40 us a row, one of 500 about 30.
		 */
		if (st.ndone > 0 && st.db_up && st.inflight == 0 &&
		    !st.claiming && st.nheld == 0 && !l->cfg.follow) {
			snd_flush_all(&st);
			now = snd_mono(l);	/* a slow database took a while */
		} else if (st.ndone > 0 && st.db_up && ((st.inflight == 0 &&
		    !st.claiming) || st.stopping ||
		    st.ndone >= (size_t)l->cfg.batch ||
		    now - st.oldest_done >= SND_FLUSH_SECS))
			snd_flush(&st);
		snd_give_back_now(&st, now);
		snd_claim(&st, now);

		/*
		 * Nothing in flight. --once ends after a claim that found
		 * nothing (a short one earns another look, since more may
		 * have come due meanwhile), and once what is finished is
		 * recorded or, without a database, given up on.
		 */
		if (st.inflight == 0 && st.claiming) {
			snd_claimed(&st, 1, 0);	/* nothing else to do */
			continue;
		}
		if (st.inflight == 0) {
			if (!l->cfg.follow && !st.stopping && st.drained &&
			    st.last_claim > 0)
				st.drained = 0;
			if (st.stopping || (!l->cfg.follow && st.drained)) {
				if (st.ndone == 0)
					break;
				if (!st.stopping)
					snd_begin_stopping(&st, now, NULL);
				if (!st.db_up &&
				    now - st.stop_at >= SND_GIVE_UP_SECS)
					break;
			} else if (snd_claim_ready(&st, now, &want))
				continue;	/* claim at once; else wait */
		}

		/* Notifications read along with a query wait in libpq, not
		 * on the socket: look before sleeping on it. */
		if (l->cfg.follow && st.db_up) {
			if ((n = l->db_ops->notified(l->db)) < 0)
				snd_db_lost(&st, now);
			else if (n > 0) {
				was_drained = st.drained;
				snd_new_work(&st);
				if (was_drained)
					continue;
			}
			/* That read the claim's answer too, if it had come:
			 * its socket has nothing more to say. */
			if (st.claiming) {
				snd_claimed(&st, 0, 0);
				if (!st.claiming)
					continue;
			}
		}

		nfds = 0;
		wake_i = db_i = fin_i = cl_i = -1;
		if (l->wake_fd != -1) {
			fds[nfds].fd = l->wake_fd;
			fds[nfds].events = POLLIN;
			wake_i = nfds++;
		}
		if (st.claiming && (fd = l->db_ops->claim_fd(l->db)) != -1) {
			/* The claim's connection: NOTIFY comes this way too. */
			fds[nfds].fd = fd;
			fds[nfds].events = POLLIN;
			cl_i = nfds++;
		} else if (l->cfg.follow && st.db_up &&
		    (fd = l->db_ops->fd(l->db)) != -1) {
			fds[nfds].fd = fd;
			fds[nfds].events = POLLIN;
			db_i = nfds++;
		}
		if (st.nfin > 0 && (fd = l->db_ops->finish_fd(l->db)) != -1) {
			fds[nfds].fd = fd;
			fds[nfds].events = POLLIN;
			fin_i = nfds++;
		}
		if (l->http_ops->wait(l->http, fds, nfds,
		    snd_timeout(&st, now)) == -1) {
			log_warnx("the HTTP client failed; stopping");
			st.failed = 1;
			snd_begin_stopping(&st, now, NULL);
		}
		if (wake_i != -1 && (fds[wake_i].revents & POLLIN))
			snd_drain_fd(l->wake_fd);
		if (db_i != -1 && fds[db_i].revents != 0) {
			if ((n = l->db_ops->notified(l->db)) < 0)
				snd_db_lost(&st, snd_mono(l));
			else if (n > 0)
				snd_new_work(&st);
		}
		if (st.nfin > 0 && (fin_i == -1 || fds[fin_i].revents != 0))
			snd_finished(&st, 0);
		if (st.claiming && (cl_i == -1 || fds[cl_i].revents != 0)) {
			/* Read all that came (NOTIFY shares the socket)
			 * before asking whether the claim is over: read
			 * after, its end would wait unseen in libpq. */
			n = l->cfg.follow && st.db_up ?
			    l->db_ops->notified(l->db) : 0;
			if (n >= 0)
				snd_claimed(&st, 0, 0);
			if (n > 0)
				snd_new_work(&st);
			else if (n < 0)
				snd_db_lost(&st, snd_mono(l));
		}
		n = 0;
		while ((j = l->http_ops->done(l->http)) != NULL) {
			st.inflight--;
			snd_release(&st, j);
			snd_complete(&st, j);
			n++;
		}
		if (n > 0) {
			st.ended += (unsigned long)n;
			snd_resume(&st);
		}
		if (l->cfg.follow && st.drained && snd_mono(l) >= st.wake_at)
			st.drained = 0;
		/* A daemon's summary comes once a minute, when there was work. */
		if (l->cfg.follow && now - st.reported >= SND_REPORT_SECS &&
		    l->stats.delivered + l->stats.failed != st.reported_n) {
			snd_report(l, st.began);
			st.reported = now;
			st.reported_n = l->stats.delivered + l->stats.failed;
		}
	}

	snd_claimed(&st, 1, 1);
	snd_unhold(&st, 1);
	snd_give_back_now(&st, snd_mono(l));
	if (st.nback > 0) {
		log_warnx("%zu claimed notifications could not be given back "
		    "(no database); they are retried when their lease expires",
		    st.nback);
		l->stats.abandoned += st.nback;
		while (st.nback > 0)
			snd_job_free(st.back[--st.nback]);
	}
	free(st.back);
	snd_strs_free(&st.claim_skip, &st.nclaim_skip);
	snd_strs_free(&st.dry, &st.ndry);
	snd_strs_free(&st.chg, &st.nchg);
	while (st.nhosts > 0) {
		struct snd_host	*h = &st.hosts[--st.nhosts];

		while (h->nhooks > 0)
			free(h->hooks[--h->nhooks].id);
		free(h->hooks);
		free(h->name);
	}
	free(st.hosts);
	snd_flush_all(&st);
	if (st.ndone > 0) {
		log_warnx("%zu results could not be recorded; those "
		    "notifications are retried when their lease expires",
		    st.ndone);
		l->stats.unrecorded += st.ndone;
		st.failed = 1;
	}
	while (st.ndone > 0)
		snd_job_free(st.done[--st.ndone]);
	free(st.done);
	if (st.inflight > 0)
		log_warnx("%zu attempts abandoned in flight", st.inflight);
	snd_report(l, st.began);
	return st.failed ? 1 : 0;
}
