/* snd_pg.c: the sender's database side: sender_claim, sender_finish, NOTIFY. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "log.h"
#include "pgconn.h"
#include "snd.h"
#include "util.h"

/* Statements, prepared once per connection (again after a reconnect). */
enum snd_pg_stmt {
	SND_PG_CLAIM,
	SND_PG_FINISH,
	SND_PG_NEXT_DUE,
	SND_PG_RELEASE,
	SND_PG__MAX
};

static const struct {
	const char	*name;
	const char	*sql;
} snd_pg_stmts[SND_PG__MAX] = {
	[SND_PG_CLAIM] = { "claim",
	    "SELECT notification_id, attempt, webhook_id, callback_url, "
	    "payload, secret, previous_secret "
	    "FROM dlrhook.sender_claim($1::int, $2::int, $3::text[], $4::int)" },
	[SND_PG_FINISH] = { "finish",
	    "SELECT dlrhook.sender_finish($1::uuid[], $2::int[], $3::text[], "
	    "$4::float8[], $5::int[], $6::text[], $7::text[], $8::int[], "
	    "$9::timestamptz[], $10::text[])" },
	/* Seconds from now by the server's clock, so that skew between
	 * this host and the database does not matter. */
	[SND_PG_NEXT_DUE] = { "next_due",
	    "SELECT extract(epoch FROM dlrhook.sender_next_due() - "
	    "clock_timestamp())::float8" },
	[SND_PG_RELEASE] = { "release",
	    "SELECT dlrhook.sender_release($1::uuid[], $2::int[])" },
};

/* Columns of the claim, in the order selected above. */
enum snd_pg_col {
	COL_ID,
	COL_ATTEMPT,
	COL_WEBHOOK,
	COL_URL,
	COL_PAYLOAD,
	COL_SECRET,
	COL_PREV,
	COL__MAX
};

/* The arrays of sender_finish, in parameter order. */
enum snd_pg_arr {
	ARR_IDS,
	ARR_ATTEMPTS,
	ARR_OUTCOMES,
	ARR_RETRY,
	ARR_STATUS,
	ARR_ERRORS,
	ARR_EXCERPTS,
	ARR_DURATION,
	ARR_STARTED,
	ARR_URLS,
	ARR__MAX
};

#define SND_PG_FINISH_TRIES	3	/* on serialization failure, deadlock */

/*
 * Two connections: claims, NOTIFY and next_due on conn; sender_finish on
 * fconn. Neither claims nor finishes are waited for, so that transfers go
 * on while PostgreSQL claims the next rows and records the last batch.
 */
#define SND_PG_CHANGED_MAX	1024	/* webhook changes kept; more: all */

struct snd_pg {
	char		*conninfo;
	int		 listen;
	PGconn		*conn;
	char		**changed;	/* webhooks changed, not yet asked for */
	size_t		 nchanged;
	int		 changed_all;	/* more than SND_PG_CHANGED_MAX */
	PGconn		*fconn;
	struct buf	 fa[ARR__MAX];	/* the arrays of the finish in flight */
	size_t		 fn;		/* its attempts; 0: none in flight */
	int		 ftries;
};

static void
snd_pg_disconnect(struct snd_pg *p)
{
	PQfinish(p->conn);
	p->conn = NULL;
}

/* The finish in flight is over: its arrays go. */
static void
snd_pg_fdone(struct snd_pg *p)
{
	size_t	 k;

	if (p->fn == 0)
		return;
	for (k = 0; k < ARR__MAX; k++)
		buf_free(&p->fa[k]);
	p->fn = 0;
}

static void
snd_pg_fdisconnect(struct snd_pg *p)
{
	PQfinish(p->fconn);
	p->fconn = NULL;
}

/* Runs one utility command; 0 or -1 (logged). */
static int
snd_pg_command(struct snd_pg *p, const char *sql)
{
	PGresult	*res = PQexec(p->conn, sql);
	int		 rc = 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pgconn_log(sql, res, p->conn);
		rc = -1;
	}
	PQclear(res);
	return rc;
}

/* Opens a session with the statements prepared; NULL (logged) on failure. */
static PGconn *
snd_pg_open(struct snd_pg *p, const char *name)
{
	PGconn		*c;
	PGresult	*res;
	int		 i, ok = 1;

	if ((c = pgconn_open(p->conninfo, name, "5")) == NULL)
		return NULL;
	/* A statement stuck on a lock must not stall the sender forever. */
	res = PQexec(c, "SET statement_timeout = '30s'");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pgconn_log("SET statement_timeout", res, c);
		ok = 0;
	}
	PQclear(res);
	for (i = 0; ok && i < SND_PG__MAX; i++) {
		res = PQprepare(c, snd_pg_stmts[i].name, snd_pg_stmts[i].sql,
		    0, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			pgconn_log(snd_pg_stmts[i].name, res, c);
			ok = 0;
		}
		PQclear(res);
	}
	if (!ok) {
		PQfinish(c);
		return NULL;
	}
	return c;
}

static int
snd_pg_connect(void *ctx)
{
	struct snd_pg	*p = ctx;

	snd_pg_disconnect(p);
	if ((p->conn = snd_pg_open(p, "dlrhook-send")) == NULL)
		return -1;
	/* 009's trigger: a webhook changed; what is held of it goes back. */
	if (snd_pg_command(p, "LISTEN dlrhook_webhook") == -1 ||
	    (p->listen && snd_pg_command(p, "LISTEN dlrhook_pending") == -1)) {
		snd_pg_disconnect(p);
		return -1;
	}
	return 0;
}

static int
snd_pg_connected(void *ctx)
{
	struct snd_pg	*p = ctx;

	return p->conn != NULL && PQstatus(p->conn) == CONNECTION_OK;
}

static char *
snd_pg_dup(const PGresult *res, int row, enum snd_pg_col c)
{
	return PQgetisnull(res, row, c) ? NULL :
	    xstrdup(PQgetvalue(res, row, c));
}

/* Appends one array element: a double-quoted string, or NULL. */
static void
snd_pg_elem(struct buf *b, const char *s)
{
	size_t	 n;

	if (b->len > 1)
		buf_puts(b, ",");
	if (s == NULL) {
		buf_puts(b, "NULL");
		return;
	}
	buf_puts(b, "\"");
	while (*s != '\0') {
		n = strcspn(s, "\"\\");
		buf_append(b, s, n);
		if (s[n] == '\0')
			break;
		buf_puts(b, "\\");
		buf_append(b, s + n, 1);
		s += n + 1;
	}
	buf_puts(b, "\"");
}

/*
 * Whether the answer to the query in flight on c is all in: 1 yes (at once
 * with block: PQgetResult then waits for it), 0 not yet, -1 the connection
 * failed (logged).
 */
static int
snd_pg_ready(PGconn *c, int block, const char *what)
{
	char	 line[512];

	if (block)
		return 1;
	if (PQconsumeInput(c) == 0) {
		log_warnx("%s: %s", what, pgconn_oneline(PQerrorMessage(c), line,
		    sizeof(line)));
		return -1;
	}
	return !PQisBusy(c);
}

/* The result of the query in flight (one statement: nothing follows). */
static PGresult *
snd_pg_result(PGconn *c)
{
	PGresult	*res = PQgetResult(c), *more;

	while ((more = PQgetResult(c)) != NULL)
		PQclear(more);
	return res;
}

static int
snd_pg_claim_start(void *ctx, int batch, int lease, const char *const *skip,
    size_t nskip, int per_webhook)
{
	struct snd_pg	*p = ctx;
	struct buf	 sk;
	char		 b[16], l[16], pw[16], line[512];
	const char	*values[4] = { b, l, NULL, per_webhook > 0 ? pw : NULL };
	size_t		 k;
	int		 ok;

	if (p->conn == NULL)
		return -1;
	snprintf(b, sizeof(b), "%d", batch);
	snprintf(l, sizeof(l), "%d", lease);
	snprintf(pw, sizeof(pw), "%d", per_webhook);
	buf_init(&sk);
	buf_puts(&sk, "{");
	for (k = 0; k < nskip; k++)
		snd_pg_elem(&sk, skip[k]);
	buf_puts(&sk, "}");
	values[2] = sk.data;
	ok = PQsendQueryPrepared(p->conn, "claim", 4, values, NULL, NULL, 0);
	buf_free(&sk);
	if (ok == 1)
		return 0;
	log_warnx("sender_claim: %s", pgconn_oneline(PQerrorMessage(p->conn),
	    line, sizeof(line)));
	snd_pg_disconnect(p);
	return -1;
}

static int
snd_pg_claim_fd(void *ctx)
{
	struct snd_pg	*p = ctx;

	return p->conn != NULL ? PQsocket(p->conn) : -1;
}

static int
snd_pg_claim_result(void *ctx, int block, struct snd_job **list)
{
	struct snd_pg	*p = ctx;
	struct snd_job	*j;
	PGresult	*res;
	int		 n, i;

	if (p->conn == NULL)
		return -1;
	switch (snd_pg_ready(p->conn, block, "sender_claim")) {
	case -1:
		snd_pg_disconnect(p);
		return -1;
	case 0:
		return -2;
	}
	res = snd_pg_result(p->conn);
	if (PQresultStatus(res) != PGRES_TUPLES_OK ||
	    PQnfields(res) != COL__MAX) {
		pgconn_log("sender_claim", res, p->conn);
		PQclear(res);
		/* Start afresh: a broken or confused session is replaced. */
		snd_pg_disconnect(p);
		return -1;
	}
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		j = snd_job_new();
		j->id = snd_pg_dup(res, i, COL_ID);
		j->attempt = (int)strtol(PQgetvalue(res, i, COL_ATTEMPT), NULL,
		    10);
		j->webhook_id = snd_pg_dup(res, i, COL_WEBHOOK);
		j->url = snd_pg_dup(res, i, COL_URL);
		j->payload = snd_pg_dup(res, i, COL_PAYLOAD);
		j->secret = snd_pg_dup(res, i, COL_SECRET);
		j->prev_secret = snd_pg_dup(res, i, COL_PREV);
		if (j->id == NULL || j->url == NULL || j->payload == NULL ||
		    j->secret == NULL) {
			/* Cannot be attempted; its lease runs out and it
			 * comes back, which shows in the log as a loop. */
			log_warnx("sender_claim returned an incomplete row%s%s",
			    j->id != NULL ? " for notification " : "",
			    j->id != NULL ? j->id : "");
			snd_job_free(j);
			continue;
		}
		j->next = *list;
		*list = j;
	}
	PQclear(res);
	return n;
}

static int
snd_pg_release(void *ctx, struct snd_job *const *jobs, size_t n)
{
	struct snd_pg	*p = ctx;
	struct buf	 ids, attempts;
	const char	*values[2];
	char		 num[16];
	PGresult	*res;
	size_t		 i;
	int		 rc = -1;

	if (p->conn == NULL)
		return -1;
	buf_init(&ids);
	buf_init(&attempts);
	buf_puts(&ids, "{");
	buf_puts(&attempts, "{");
	for (i = 0; i < n; i++) {
		snd_pg_elem(&ids, jobs[i]->id);
		snprintf(num, sizeof(num), "%d", jobs[i]->attempt);
		snd_pg_elem(&attempts, num);
	}
	buf_puts(&ids, "}");
	buf_puts(&attempts, "}");
	values[0] = ids.data;
	values[1] = attempts.data;
	res = PQexecPrepared(p->conn, "release", 2, values, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		rc = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
	else {
		pgconn_log("sender_release", res, p->conn);
		if (PQstatus(p->conn) != CONNECTION_OK)
			snd_pg_disconnect(p);
	}
	PQclear(res);
	buf_free(&ids);
	buf_free(&attempts);
	return rc;
}

/* sender_finish's started_at: UTC with microseconds. */
static void
snd_pg_time(double t, char *out, size_t outlen)
{
	struct tm	 tm;
	time_t		 secs = (time_t)t;
	long		 us = (long)((t - (double)secs) * 1e6);
	char		 date[32];

	if (us < 0)
		us = 0;
	if (us > 999999)
		us = 999999;
	gmtime_r(&secs, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(out, outlen, "%s.%06ld+00", date, us);
}

/* Builds the ten array literals of sender_finish for jobs[0..n). */
static void
snd_pg_arrays(struct snd_job *const *jobs, size_t n, struct buf *a)
{
	const struct snd_job	*j;
	char			 num[64];
	size_t			 i, k;

	for (k = 0; k < ARR__MAX; k++) {
		buf_init(&a[k]);
		buf_puts(&a[k], "{");
	}
	for (i = 0; i < n; i++) {
		j = jobs[i];
		snd_pg_elem(&a[ARR_IDS], j->id);
		snprintf(num, sizeof(num), "%d", j->attempt);
		snd_pg_elem(&a[ARR_ATTEMPTS], num);
		snd_pg_elem(&a[ARR_OUTCOMES], snd_outcome_name(j->outcome));
		snprintf(num, sizeof(num), "%.3f", j->retry_seconds);
		snd_pg_elem(&a[ARR_RETRY], j->outcome == SND_RETRY ? num :
		    NULL);
		snprintf(num, sizeof(num), "%ld", j->http_status);
		snd_pg_elem(&a[ARR_STATUS], j->http_status > 0 ? num : NULL);
		snd_pg_elem(&a[ARR_ERRORS], j->error);
		snd_pg_elem(&a[ARR_EXCERPTS], j->excerpt_len > 0 ?
		    j->excerpt : NULL);
		snprintf(num, sizeof(num), "%d", j->duration_ms);
		snd_pg_elem(&a[ARR_DURATION], num);
		snd_pg_time(j->started, num, sizeof(num));
		snd_pg_elem(&a[ARR_STARTED], num);
		snd_pg_elem(&a[ARR_URLS], j->url);
	}
	for (k = 0; k < ARR__MAX; k++)
		buf_puts(&a[k], "}");
}

/* Sends the finish whose arrays are in p->fa: 0, or SND_DB_LOST. */
static int
snd_pg_fsend(struct snd_pg *p)
{
	const char	*values[ARR__MAX];
	char		 line[512];
	size_t		 k;

	for (k = 0; k < ARR__MAX; k++)
		values[k] = p->fa[k].data;
	if (PQsendQueryPrepared(p->fconn, "finish", ARR__MAX, values, NULL,
	    NULL, 0) == 1)
		return 0;
	log_warnx("sender_finish: %s", pgconn_oneline(PQerrorMessage(p->fconn),
	    line, sizeof(line)));
	snd_pg_fdisconnect(p);
	return SND_DB_LOST;
}

static int
snd_pg_finish_start(void *ctx, struct snd_job *const *jobs, size_t n)
{
	struct snd_pg	*p = ctx;
	int		 rc;

	if (p->fn > 0)
		return SND_DB_REJECTED;		/* one at a time */
	if (p->fconn == NULL || PQstatus(p->fconn) != CONNECTION_OK) {
		snd_pg_fdisconnect(p);
		if ((p->fconn = snd_pg_open(p, "dlrhook-send finish")) == NULL)
			return SND_DB_LOST;
	}
	snd_pg_arrays(jobs, n, p->fa);
	p->fn = n;
	p->ftries = 1;
	if ((rc = snd_pg_fsend(p)) != 0)
		snd_pg_fdone(p);
	return rc;
}

static int
snd_pg_finish_fd(void *ctx)
{
	struct snd_pg	*p = ctx;

	return p->fn > 0 && p->fconn != NULL ? PQsocket(p->fconn) : -1;
}

static int
snd_pg_finish_result(void *ctx, int block)
{
	struct snd_pg	*p = ctx;
	PGresult	*res;
	const char	*state;
	int		 rc = SND_DB_REJECTED;

	if (p->fn == 0)
		return 0;
again:
	switch (snd_pg_ready(p->fconn, block, "sender_finish")) {
	case -1:
		snd_pg_fdisconnect(p);
		snd_pg_fdone(p);
		return SND_DB_LOST;
	case 0:
		return 1;
	}
	res = snd_pg_result(p->fconn);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		log_debug("sender_finish: %zu attempts, %s applied", p->fn,
		    PQgetvalue(res, 0, 0));
		PQclear(res);
		snd_pg_fdone(p);
		return 0;
	}
	pgconn_log("sender_finish", res, p->fconn);
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (PQstatus(p->fconn) != CONNECTION_OK) {
		snd_pg_fdisconnect(p);
		rc = SND_DB_LOST;
	} else if (state != NULL && strcmp(state, "57014") == 0)
		rc = SND_DB_LOST;	/* a statement timeout: later */
	else if (state != NULL && strncmp(state, "40", 2) == 0 &&
	    p->ftries < SND_PG_FINISH_TRIES) {
		/* Class 40 (serialization failure, deadlock) is worth
		 * another go. */
		PQclear(res);
		p->ftries++;
		if ((rc = snd_pg_fsend(p)) == 0)
			goto again;
		snd_pg_fdone(p);
		return rc;
	}
	PQclear(res);
	snd_pg_fdone(p);
	return rc;
}

static int
snd_pg_next_due(void *ctx, double *secs)
{
	struct snd_pg	*p = ctx;
	PGresult	*res;
	int		 rc;

	if (p->conn == NULL)
		return -1;
	res = PQexecPrepared(p->conn, "next_due", 0, NULL, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		pgconn_log("sender_next_due", res, p->conn);
		rc = -1;
	} else if (PQgetisnull(res, 0, 0))
		rc = 1;
	else {
		*secs = strtod(PQgetvalue(res, 0, 0), NULL);
		rc = 0;
	}
	PQclear(res);
	return rc;
}

static int
snd_pg_fd(void *ctx)
{
	struct snd_pg	*p = ctx;

	return p->conn != NULL && p->listen ? PQsocket(p->conn) : -1;
}

/* Keeps a changed webhook's id for snd_pg_changed, once. */
static void
snd_pg_note_change(struct snd_pg *p, const char *id)
{
	size_t	 i;

	if (p->changed_all)
		return;
	for (i = 0; i < p->nchanged; i++)
		if (strcmp(p->changed[i], id) == 0)
			return;
	if (p->nchanged == SND_PG_CHANGED_MAX) {
		while (p->nchanged > 0)
			free(p->changed[--p->nchanged]);
		free(p->changed);
		p->changed = NULL;
		p->changed_all = 1;
		return;
	}
	p->changed = xrealloc(p->changed, (p->nchanged + 1) *
	    sizeof(*p->changed));
	p->changed[p->nchanged++] = xstrdup(id);
}

static int
snd_pg_notified(void *ctx)
{
	struct snd_pg	*p = ctx;
	PGnotify	*nt;
	char		 line[512];
	int		 n = 0, lost;

	if (p->conn == NULL)
		return -1;
	lost = PQconsumeInput(p->conn) == 0;
	/* What came before a failure still counts: a change read along
	 * with a claim's answer must not go with the connection. */
	while ((nt = PQnotifies(p->conn)) != NULL) {
		if (strcmp(nt->relname, "dlrhook_webhook") != 0)
			n++;
		else
			snd_pg_note_change(p, nt->extra);
		PQfreemem(nt);
	}
	if (lost) {
		log_warnx("database: %s", pgconn_oneline(
		    PQerrorMessage(p->conn), line, sizeof(line)));
		snd_pg_disconnect(p);
		return -1;
	}
	return n;
}

static char **
snd_pg_changed(void *ctx, size_t *n, int *all)
{
	struct snd_pg	*p = ctx;
	char		**ids = p->changed;

	*n = p->nchanged;
	*all = p->changed_all;
	p->changed = NULL;
	p->nchanged = 0;
	p->changed_all = 0;
	return ids;
}

static void
snd_pg_free(void *ctx)
{
	struct snd_pg	*p = ctx;

	if (p == NULL)
		return;
	snd_pg_disconnect(p);
	snd_pg_fdisconnect(p);
	snd_pg_fdone(p);
	while (p->nchanged > 0)
		free(p->changed[--p->nchanged]);
	free(p->changed);
	free(p->conninfo);
	free(p);
}

void *
snd_pg_new(const char *conninfo, int listen)
{
	struct snd_pg	*p;

	p = xcalloc(1, sizeof(*p));
	p->conninfo = xstrdup(conninfo != NULL ? conninfo : "");
	p->listen = listen;
	return p;
}

const struct snd_db_ops snd_pg_ops = {
	.connect = snd_pg_connect,
	.connected = snd_pg_connected,
	.claim_start = snd_pg_claim_start,
	.release = snd_pg_release,
	.claim_fd = snd_pg_claim_fd,
	.claim_result = snd_pg_claim_result,
	.finish_start = snd_pg_finish_start,
	.finish_fd = snd_pg_finish_fd,
	.finish_result = snd_pg_finish_result,
	.next_due = snd_pg_next_due,
	.fd = snd_pg_fd,
	.notified = snd_pg_notified,
	.changed = snd_pg_changed,
	.free = snd_pg_free,
};
