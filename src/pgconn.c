/* pgconn.c: what the API's and the sender's libpq code share. */
#include "config.h"

#include <stddef.h>

#include "log.h"
#include "pgconn.h"

const char *
pgconn_oneline(const char *msg, char *out, size_t outlen)
{
	size_t	 i = 0;

	for (; *msg != '\0' && i + 1 < outlen; msg++) {
		if (*msg == '\n' || *msg == '\t' || *msg == '\r') {
			if (i > 0 && out[i - 1] != ' ')
				out[i++] = ' ';
		} else
			out[i++] = *msg;
	}
	while (i > 0 && out[i - 1] == ' ')
		i--;
	out[i] = '\0';
	return out;
}

void
pgconn_log(const char *what, const PGresult *res, PGconn *conn)
{
	const char	*state, *msg;
	char		 line[512];

	state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) :
	    NULL;
	if (msg == NULL)
		msg = PQerrorMessage(conn);
	log_warnx("database: %s: %s%s%s", what, state != NULL ? state : "",
	    state != NULL ? " " : "", pgconn_oneline(msg, line, sizeof(line)));
}

/* Server notices (a FATAL before the server closes the link) go to the
 * log as one line, instead of libpq's default of raw stderr. */
static void
pgconn_notice(void *arg, const char *msg)
{
	char	 line[512];

	(void)arg;
	log_warnx("database: %s", pgconn_oneline(msg, line, sizeof(line)));
}

PGconn *
pgconn_open(const char *conninfo, const char *appname,
    const char *connect_timeout)
{
	/* With expand_dbname, what the conninfo sets overrides what
	 * comes before it: our defaults, then the operator's words. TCP
	 * keepalives find a silently dead server (a cut link) in about a
	 * minute, instead of never for a daemon waiting on LISTEN. */
	const char *const keys[] = { "connect_timeout",
	    "fallback_application_name", "client_encoding", "keepalives",
	    "keepalives_idle", "keepalives_interval", "keepalives_count",
	    "dbname", NULL };
	const char *const vals[] = { connect_timeout, appname, "UTF8", "1",
	    "30", "10", "3", conninfo != NULL ? conninfo : "", NULL };
	PGconn		*conn;
	char		 line[512];

	conn = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(conn) != CONNECTION_OK) {
		log_warnx("cannot connect to PostgreSQL: %s", pgconn_oneline(
		    PQerrorMessage(conn), line, sizeof(line)));
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, pgconn_notice, NULL);
	return conn;
}
