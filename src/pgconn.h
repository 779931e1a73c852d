/* pgconn.h: what the API's and the sender's libpq code share. */
#ifndef DLR_PGCONN_H
#define DLR_PGCONN_H

#include <libpq-fe.h>

/*
 * Connects with our defaults (connect timeout, application name, UTF8),
 * each of which the conninfo may override; conninfo NULL or "" uses the
 * PG* environment. Server notices go to the log as one line. Returns NULL,
 * having logged why, when the connection fails.
 */
PGconn	*pgconn_open(const char *conninfo, const char *appname,
	    const char *connect_timeout);
/*
 * Logs a failed result by SQLSTATE and primary message only: never the
 * DETAIL, which may quote a row and the signing secret in it.
 */
void	 pgconn_log(const char *what, const PGresult *, PGconn *);
/* Copies a libpq message onto one line, for the log. */
const char *pgconn_oneline(const char *msg, char *out, size_t outlen);

#endif
