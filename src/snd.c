/* snd.c: the sender's core loop (claim, deliver, finish) and its verdicts. */
#include "config.h"

#include <errno.h>
#include <poll.h>
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
#define SND_FINISH_CHUNK	1000	/* most elements per sender_finish */
#define SND_IDLE_SECS		30.0	/* --follow: longest sleep */
#define SND_WAIT_CAP_SECS	5.0	/* longest single wait */
#define SND_BACKOFF_MAX		30.0	/* between reconnection attempts */
#define SND_GIVE_UP_SECS	10.0	/* stopping: to record what is left */
#define SND_REPORT_SECS		60.0	/* --follow: summary line interval */
#define SND_LEASE_MARGIN	2.0	/* a job starts this long before
					   lease - timeout runs out */

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

static double
snd_clock(clockid_t id)
{
	struct timespec	 ts;

	clock_gettime(id, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double
snd_mono(void)
{
	return snd_clock(CLOCK_MONOTONIC);
}

void
snd_classify(struct snd_job *j, const struct retry_sched *s, double u,
    time_t now)
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
	if ((delay = retry_delay(s, j->attempt, u)) < 0) {
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

/* The loop's working state. */
struct snd_state {
	struct snd_loop	*l;
	double		 began;
	size_t		 inflight;
	struct snd_job	**done;		/* attempts waiting for sender_finish */
	size_t		 ndone, capdone;
	double		 oldest_done;
	int		 db_up;
	double		 reconnect_at;
	double		 backoff;
	int		 drained;	/* the last claim came back short */
	int		 last_claim;	/* rows the last claim returned */
	double		 wake_at;	/* --follow, drained: look again then */
	int		 stopping;
	double		 stop_at;
	int		 failed;	/* the run failed: exit non-zero */
	double		 reported;	/* --follow: time of the last summary */
	unsigned long	 reported_n;	/* attempts counted by it */
};

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
	double		 now = snd_mono();

	j->duration_ms = (int)((now - j->mono_start) * 1000 + 0.5);
	if (j->excerpt_len > SND_EXCERPT_MAX)
		j->excerpt_len = SND_EXCERPT_MAX;
	snd_excerpt_clean(j->excerpt, &j->excerpt_len);
	snd_classify(j, &l->cfg.sched, l->uniform(), time(NULL));
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

/* Records finished attempts, one sender_finish call per chunk. */
static void
snd_flush(struct snd_state *st)
{
	struct snd_loop	*l = st->l;
	size_t		 off = 0, n, i;
	int		 rc = 0, retries = 0;

	for (i = 0; i < st->ndone; i++)
		if (st->done[i]->outcome == SND_RETRY)
			retries = 1;
	while (off < st->ndone) {
		n = st->ndone - off;
		if (n > SND_FINISH_CHUNK)
			n = SND_FINISH_CHUNK;
		rc = l->db_ops->finish(l->db, st->done + off, n);
		if (rc == SND_DB_LOST)
			break;
		if (rc == SND_DB_REJECTED) {
			log_warnx("the database refused %zu results; those "
			    "notifications are retried when their lease "
			    "expires", n);
			l->stats.unrecorded += n;
			st->failed = 1;
		}
		for (i = off; i < off + n; i++)
			snd_job_free(st->done[i]);
		off += n;
	}
	/* Keep what was not recorded, for after the reconnection. */
	memmove(st->done, st->done + off,
	    (st->ndone - off) * sizeof(*st->done));
	st->ndone -= off;
	if (rc == SND_DB_LOST)
		snd_db_lost(st, snd_mono());
	else {
		st->oldest_done = snd_mono();
		/* A retry may now be due before the time we meant to wake. */
		if (retries && st->drained && st->l->cfg.follow)
			snd_schedule_wake(st, st->oldest_done);
	}
}

/* Prepares one claimed notification and starts its attempt. */
static void
snd_begin(struct snd_state *st, struct snd_job *j)
{
	struct snd_loop		*l = st->l;
	struct resolve_dest	 d;
	double			 now = snd_mono();

	j->mono_start = now;
	j->started = snd_clock(CLOCK_REALTIME);
	j->next = NULL;
	if (l->cfg.dry_run) {
		l->http_ops->start(l->http, j);
		st->inflight++;
		return;
	}
	/* Too late to finish within the lease (a slow DNS ahead of it):
	 * leave it, the lease expires and it is claimed again. */
	if (now > j->claimed + l->cfg.lease - l->cfg.timeout -
	    SND_LEASE_MARGIN) {
		log_warnx("notification %s attempt %d not started: its lease "
		    "would run out; it is retried when the lease expires",
		    j->id, j->attempt);
		l->stats.abandoned++;
		snd_job_free(j);
		return;
	}
	if (resolve_dest(l->resolver, j->url, now, &d) == -1) {
		j->host = d.host;
		j->error = d.error;
		d.host = d.error = NULL;
		resolve_dest_clear(&d);
		snd_complete(st, j);
		return;
	}
	j->host = d.host;
	j->pin = d.pin;
	d.host = d.pin = NULL;
	resolve_dest_clear(&d);
	j->timestamp = (long long)time(NULL);
	j->signature = sig_header(j->secret, j->prev_secret, j->id,
	    j->timestamp, j->payload, strlen(j->payload));
	if (j->signature == NULL) {
		j->error = xstrdup("the webhook's signing secret is not valid "
		    "base64");
		snd_complete(st, j);
		return;
	}
	l->http_ops->start(l->http, j);
	st->inflight++;
}

static int
snd_threshold(const struct snd_config *c)
{
	int	 t = c->batch < c->concurrency ? c->batch : c->concurrency;

	return t / 4 < 1 ? 1 : t / 4;
}

/* How many more rows a claim may take now. */
static int
snd_free_slots(const struct snd_state *st)
{
	const struct snd_config	*c = &st->l->cfg;
	int			 want;

	want = c->dry_run ? c->batch : c->concurrency - (int)st->inflight;
	return want > c->batch ? c->batch : want;
}

/* Claims as many rows as there are free transfer slots, and starts them. */
static void
snd_claim(struct snd_state *st, double now)
{
	struct snd_loop		*l = st->l;
	const struct snd_config	*c = &l->cfg;
	struct snd_job		*list = NULL, *j, *next;
	int			 want, n;

	if (st->drained || st->stopping || !st->db_up)
		return;
	want = snd_free_slots(st);
	if (want <= 0 || (st->inflight > 0 && want < snd_threshold(c)))
		return;
	if ((n = l->db_ops->claim(l->db, want, c->lease, &list)) < 0) {
		snd_db_lost(st, now);
		return;
	}
	st->last_claim = n;
	if (n > 0 && !c->dry_run)
		resolve_expire(l->resolver, now);	/* before new lookups */
	if (n < want) {
		st->drained = 1;
		snd_schedule_wake(st, now);
	}
	for (j = list; j != NULL; j = next) {
		next = j->next;
		j->claimed = now;
		snd_begin(st, j);
	}
}

/* Milliseconds to wait for the next thing the loop has to do. */
static int
snd_timeout(const struct snd_state *st, double now)
{
	const struct snd_config	*c = &st->l->cfg;
	double			 t = SND_WAIT_CAP_SECS;

	if (st->ndone > 0 && st->db_up && st->oldest_done + SND_FLUSH_SECS -
	    now < t)
		t = st->oldest_done + SND_FLUSH_SECS - now;
	if (!st->db_up && st->reconnect_at - now < t)
		t = st->reconnect_at - now;
	if (c->follow && st->drained && !st->stopping && st->wake_at - now < t)
		t = st->wake_at - now;
	if (!c->follow && !st->stopping &&
	    st->began + c->max_seconds - now < t)
		t = st->began + c->max_seconds - now;
	if (!st->drained && !st->stopping && st->db_up &&
	    snd_free_slots(st) >= snd_threshold(c))
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
	if (st->stopping)
		return;
	st->stopping = 1;
	st->stop_at = now;
	if (why != NULL)
		log_info("%s: finishing %zu attempts in flight", why,
		    st->inflight);
}

/* The summary line: totals since the sender started. */
static void
snd_report(const struct snd_loop *l, double began)
{
	log_info("delivered=%lu failed=%lu retried=%lu dead=%lu seconds=%.1f",
	    l->stats.delivered, l->stats.failed, l->stats.retried,
	    l->stats.dead, snd_mono() - began);
}

int
snd_run(struct snd_loop *l)
{
	struct snd_state	 st;
	struct snd_job		*j;
	struct pollfd		 fds[2];
	double			 now;
	int			 nfds, wake_i, db_i, n, fd;

	memset(&st, 0, sizeof(st));
	st.l = l;
	st.backoff = 1;
	st.began = snd_mono();
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
		now = snd_mono();
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
		if (st.ndone > 0 && st.db_up && (st.inflight == 0 ||
		    st.stopping || st.ndone >= (size_t)l->cfg.batch ||
		    now - st.oldest_done >= SND_FLUSH_SECS))
			snd_flush(&st);
		snd_claim(&st, now);

		/*
		 * Nothing in flight. --once ends after a claim that found
		 * nothing (a short one earns another look, since more may
		 * have come due meanwhile), and once what is finished is
		 * recorded or, without a database, given up on.
		 */
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
			} else if (!st.drained && st.db_up)
				continue;
		}

		/* Notifications read along with a query wait in libpq, not
		 * on the socket: look before sleeping on it. */
		if (l->cfg.follow && st.db_up) {
			if ((n = l->db_ops->notified(l->db)) < 0)
				snd_db_lost(&st, now);
			else if (n > 0 && st.drained) {
				st.drained = 0;
				continue;
			}
		}

		nfds = 0;
		wake_i = db_i = -1;
		if (l->wake_fd != -1) {
			fds[nfds].fd = l->wake_fd;
			fds[nfds].events = POLLIN;
			wake_i = nfds++;
		}
		if (l->cfg.follow && st.db_up &&
		    (fd = l->db_ops->fd(l->db)) != -1) {
			fds[nfds].fd = fd;
			fds[nfds].events = POLLIN;
			db_i = nfds++;
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
				snd_db_lost(&st, snd_mono());
			else if (n > 0)
				st.drained = 0;
		}
		while ((j = l->http_ops->done(l->http)) != NULL) {
			st.inflight--;
			snd_complete(&st, j);
		}
		if (l->cfg.follow && st.drained && snd_mono() >= st.wake_at)
			st.drained = 0;
		/* A daemon's summary comes once a minute, when there was work. */
		if (l->cfg.follow && now - st.reported >= SND_REPORT_SECS &&
		    l->stats.delivered + l->stats.failed != st.reported_n) {
			snd_report(l, st.began);
			st.reported = now;
			st.reported_n = l->stats.delivered + l->stats.failed;
		}
	}

	if (st.ndone > 0 && st.db_up)
		snd_flush(&st);
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
