/* store_pg.c: the API's store on PostgreSQL through libpq. */
#include "config.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"
#include "pgconn.h"
#include "store.h"
#include "util.h"

#define BYTEA_OID	17
#define TEXT_OID	25

/*
 * One statement per operation, each a call of a SECURITY DEFINER function
 * that authenticates the key hash and acts in the same round trip. They are
 * prepared once per connection, and again after a reconnect.
 */
enum pg_stmt {
	PG_CHECK,
	PG_GET,
	PG_CREATE,
	PG_REPLACE,
	PG_DELETE,
	PG_SECRET,
	PG_ROTATE,
	PG__MAX
};

static const struct {
	const char	*name;
	const char	*sql;
	int		 nparams;
	int		 readonly;	/* safe to run twice */
} stmts[PG__MAX] = {
	[PG_CHECK] = { "check", "SELECT * FROM dlrhook.api_check($1)", 1, 1 },
	[PG_GET] = { "get", "SELECT * FROM dlrhook.api_webhook_get($1)", 1, 1 },
	[PG_CREATE] = { "create",
	    "SELECT * FROM dlrhook.api_webhook_create($1, $2, $3)", 3, 0 },
	[PG_REPLACE] = { "replace",
	    "SELECT * FROM dlrhook.api_webhook_replace($1, $2)", 2, 0 },
	[PG_DELETE] = { "delete",
	    "SELECT * FROM dlrhook.api_webhook_delete($1)", 1, 0 },
	[PG_SECRET] = { "secret",
	    "SELECT * FROM dlrhook.api_secret_get($1)", 1, 1 },
	[PG_ROTATE] = { "rotate",
	    "SELECT * FROM dlrhook.api_secret_rotate($1, $2)", 2, 0 },
};

/* Columns of dlrhook.api_result, in order. */
enum pg_col {
	COL_OUTCOME,
	COL_ID,
	COL_URL,
	COL_STATUS,
	COL_CREATED,
	COL_UPDATED,
	COL_SECRET,
	COL__MAX
};

struct pg {
	char	*conninfo;
	PGconn	*conn;
};

static void
pg_disconnect(struct pg *p)
{
	PQfinish(p->conn);
	p->conn = NULL;
}

/* Connects and prepares every statement; on failure leaves no connection. */
static int
pg_connect(struct pg *p)
{
	PGresult	*res;
	int		 i;

	if ((p->conn = pgconn_open(p->conninfo, "dlrhook-api", "2")) == NULL)
		return -1;
	/* A request stuck behind a lock gets a 500, not a hung client. */
	res = PQexec(p->conn, "SET statement_timeout = '5s'");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pgconn_log("statement_timeout", res, p->conn);
		PQclear(res);
		pg_disconnect(p);
		return -1;
	}
	PQclear(res);
	for (i = 0; i < PG__MAX; i++) {
		res = PQprepare(p->conn, stmts[i].name, stmts[i].sql,
		    stmts[i].nparams, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			pgconn_log(stmts[i].name, res, p->conn);
			PQclear(res);
			pg_disconnect(p);
			return -1;
		}
		PQclear(res);
	}
	return 0;
}

/*
 * An idle API connection has nothing to read: if its socket is readable,
 * the server has closed it (PostgreSQL restarted) or is about to. Noticed
 * before sending, the statement runs once on a fresh connection instead of
 * failing, so a restart costs only the requests made while it is down.
 */
static void
pg_drop_if_closed(struct pg *p)
{
	struct pollfd	 pfd;

	if (p->conn == NULL)
		return;
	pfd.fd = PQsocket(p->conn);
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (pfd.fd == -1 || poll(&pfd, 1, 0) != 0)
		pg_disconnect(p);
}

/*
 * Runs a prepared statement whose first parameter is the key hash. A read
 * that fails on a broken connection is tried once more on a new one; a
 * write is not, since it may have been applied before the link broke (a
 * second rotation would lose the previous secret): it gets a 500.
 */
static PGresult *
pg_run(struct pg *p, enum pg_stmt st, const uint8_t *hash, const char *a,
    const char *b)
{
	const char	*values[3] = { (const char *)hash, a, b };
	const int	 lengths[3] = { KEY_HASH_LEN, 0, 0 };
	const int	 formats[3] = { 1, 0, 0 };
	PGresult	*res;
	int		 attempt;

	pg_drop_if_closed(p);
	for (attempt = 0; attempt < (stmts[st].readonly ? 2 : 1); attempt++) {
		if (p->conn == NULL && pg_connect(p) == -1)
			return NULL;
		res = PQexecPrepared(p->conn, stmts[st].name, stmts[st].nparams,
		    values, lengths, formats, 0);
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
		    PQnfields(res) == COL__MAX)
			return res;
		pgconn_log(stmts[st].name, res, p->conn);
		PQclear(res);
		if (PQstatus(p->conn) == CONNECTION_OK)
			return NULL;
		pg_disconnect(p);
	}
	return NULL;
}

static char *
pg_dup(const PGresult *res, enum pg_col c)
{
	return PQgetisnull(res, 0, c) ? NULL : xstrdup(PQgetvalue(res, 0, c));
}

/* Maps the outcome column to an error; on DLR_OK the row is usable. */
static enum dlr_err
pg_outcome(const PGresult *res)
{
	const char	*o;

	if (res == NULL)
		return DLR_ERR_INTERNAL;
	o = PQgetvalue(res, 0, COL_OUTCOME);
	if (strcmp(o, "ok") == 0)
		return DLR_OK;
	if (strcmp(o, "unauthorized") == 0)
		return DLR_ERR_UNAUTHORIZED;
	if (strcmp(o, "no_webhook") == 0)
		return DLR_ERR_NO_WEBHOOK;
	if (strcmp(o, "conflict") == 0)
		return DLR_ERR_CONFLICT;
	log_warnx("%s: unexpected outcome \"%s\"", __func__, o);
	return DLR_ERR_INTERNAL;
}

static enum dlr_err
pg_webhook_row(PGresult *res, struct webhook *w)
{
	enum dlr_err	 e;

	if ((e = pg_outcome(res)) == DLR_OK) {
		w->id = pg_dup(res, COL_ID);
		w->callback_url = pg_dup(res, COL_URL);
		w->status = strcmp(PQgetvalue(res, 0, COL_STATUS), "ACTIVE") == 0 ?
		    WEBHOOK_ACTIVE : WEBHOOK_DISABLED;
		w->created_at = pg_dup(res, COL_CREATED);
		w->updated_at = pg_dup(res, COL_UPDATED);
		if (w->id == NULL || w->callback_url == NULL ||
		    w->created_at == NULL || w->updated_at == NULL) {
			webhook_clear(w);
			e = DLR_ERR_INTERNAL;
		}
	}
	PQclear(res);
	return e;
}

static enum dlr_err
pg_authenticate(void *ctx, const uint8_t *hash)
{
	PGresult	*res = pg_run(ctx, PG_CHECK, hash, NULL, NULL);
	enum dlr_err	 e = pg_outcome(res);

	PQclear(res);
	return e;
}

static enum dlr_err
pg_get(void *ctx, const uint8_t *hash, struct webhook *w)
{
	return pg_webhook_row(pg_run(ctx, PG_GET, hash, NULL, NULL), w);
}

static enum dlr_err
pg_create(void *ctx, const uint8_t *hash, const char *url, const char *secret,
    struct webhook *w)
{
	return pg_webhook_row(pg_run(ctx, PG_CREATE, hash, url, secret), w);
}

static enum dlr_err
pg_replace(void *ctx, const uint8_t *hash, const char *url, struct webhook *w)
{
	return pg_webhook_row(pg_run(ctx, PG_REPLACE, hash, url, NULL), w);
}

static enum dlr_err
pg_delete(void *ctx, const uint8_t *hash)
{
	PGresult	*res = pg_run(ctx, PG_DELETE, hash, NULL, NULL);
	enum dlr_err	 e = pg_outcome(res);

	PQclear(res);
	return e;
}

static enum dlr_err
pg_secret_get(void *ctx, const uint8_t *hash, char **secret)
{
	PGresult	*res = pg_run(ctx, PG_SECRET, hash, NULL, NULL);
	enum dlr_err	 e;

	if ((e = pg_outcome(res)) == DLR_OK &&
	    (*secret = pg_dup(res, COL_SECRET)) == NULL)
		e = DLR_ERR_INTERNAL;
	PQclear(res);
	return e;
}

static enum dlr_err
pg_secret_rotate(void *ctx, const uint8_t *hash, const char *secret)
{
	PGresult	*res = pg_run(ctx, PG_ROTATE, hash, secret, NULL);
	enum dlr_err	 e = pg_outcome(res);

	PQclear(res);
	return e;
}

static void
pg_free(void *ctx)
{
	struct pg	*p = ctx;

	if (p == NULL)
		return;
	pg_disconnect(p);
	free(p->conninfo);
	free(p);
}

static const struct store_ops pg_ops = {
	.authenticate = pg_authenticate,
	.webhook_get = pg_get,
	.webhook_create = pg_create,
	.webhook_replace = pg_replace,
	.webhook_delete = pg_delete,
	.secret_get = pg_secret_get,
	.secret_rotate = pg_secret_rotate,
	.free = pg_free,
};

/* Connects lazily, at the first request, so a down database at spawn time
 * does not keep the process from starting. */
struct store *
store_pg_new(const char *conninfo)
{
	struct store	*s;
	struct pg	*p;

	p = xcalloc(1, sizeof(*p));
	p->conninfo = xstrdup(conninfo != NULL ? conninfo : "");
	s = xcalloc(1, sizeof(*s));
	s->ops = &pg_ops;
	s->ctx = p;
	return s;
}
