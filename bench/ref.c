/* ref.c: the reference FastCGI program of bench/api: the GET's work, nothing more. */

/*
 * What any PostgreSQL-backed FastCGI program must do for
 * GET /webhooks/delivery-status, done the cheapest way: hash the X-API-Key
 * with OpenSSL (as dlrhook does), run one statement prepared once per
 * connection (the key's hash joined to the account's webhook), print the
 * same JSON with the same headers. No routing, no body, no JSON library, no
 * reconnection: it is a ceiling, not a program to deploy. bench/api builds
 * it with cc and pkg-config and mounts it in the web server the way dlrhook
 * is mounted. The conninfo comes from DLRHOOK_DATABASE, as for dlrhook; its
 * role needs SELECT on dlrhook.api_keys and dlrhook.webhooks.
 *
 * With the query string "via=function" it runs dlrhook's own statement
 * instead, the call of the SECURITY DEFINER function api_webhook_get (its
 * role then needs EXECUTE on it): the ceiling of a FastCGI program that
 * keeps dlrhook's tenant isolation in the database (docs/SECURITY.md).
 * Between the two, bench/api measures what that isolation costs, and
 * between the second and dlrhook, what dlrhook's own code costs.
 *
 * It ends its connections as libfcgi does by default, with a lingering
 * close (shutdown, then wait for the web server to close first). dlrhook
 * closes at once when it has read the whole request (src/fcgi.c), and
 * with the query string "close=now" so does this program: the bare join
 * with dlrhook's close, the ceiling that the GET would be measured against
 * if that close were counted as every program's (docs/BENCHMARKS.md,
 * finding 20).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcgiapp.h>
#include <libpq-fe.h>
#include <openssl/evp.h>

#define REF_SQL								\
	"SELECT w.id, w.callback_url, w.status, "			\
	"dlrhook.rfc3339(w.created_at), dlrhook.rfc3339(w.updated_at) "	\
	"FROM dlrhook.api_keys k "					\
	"JOIN dlrhook.webhooks w ON w.account_id = k.account_id "	\
	"WHERE k.key_hash = $1 AND k.revoked_at IS NULL"

/* dlrhook's statement: the outcome, then the same five columns. */
#define REF_FN_SQL	"SELECT * FROM dlrhook.api_webhook_get($1)"

static const char ref_400[] =
	"{\"type\":\"about:blank\",\"title\":\"Bad Request\",\"status\":400,"
	"\"detail\":\"the only query strings are via=function and "
	"close=now\"}";

static const char ref_401[] =
	"{\"type\":\"urn:problem-type:dlrhook:unauthorized\","
	"\"title\":\"Unauthorized\",\"status\":401,"
	"\"detail\":\"missing or unknown API key\"}";

/* Appends s as a JSON string body (quotes excluded) to out at *n. */
static void
ref_json_str(char *out, size_t cap, size_t *n, const char *s)
{
	for (; *s != '\0' && *n + 7 < cap; s++) {
		if (*s == '"' || *s == '\\') {
			out[(*n)++] = '\\';
			out[(*n)++] = *s;
		} else if ((unsigned char)*s < 0x20)
			*n += (size_t)snprintf(out + *n, cap - *n, "\\u%04x",
			    (unsigned char)*s);
		else
			out[(*n)++] = *s;
	}
}

/* libfcgi's own printf knows no %zu: the headers are formatted here. */
static void
ref_reply(FCGX_Stream *out, int status, const char *reason,
    const char *type, const char *body, size_t len)
{
	char	 head[256];
	int	 n;

	n = snprintf(head, sizeof(head), "Status: %d %s\r\n"
	    "Cache-Control: no-store\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\n\r\n", status, reason, type, len);
	FCGX_PutStr(head, n, out);
	FCGX_PutStr(body, (int)len, out);
}

static PGconn *
ref_connect(void)
{
	PGconn		*c;
	PGresult	*res;
	const char	*ci = getenv("DLRHOOK_DATABASE"), *name;

	c = PQconnectdb(ci != NULL ? ci : "");
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "ref.fcgi: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	name = "get";
	res = PQprepare(c, name, REF_SQL, 1, NULL);
	if (PQresultStatus(res) == PGRES_COMMAND_OK) {
		PQclear(res);
		name = "fn";
		res = PQprepare(c, name, REF_FN_SQL, 1, NULL);
	}
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		fprintf(stderr, "ref.fcgi: prepare %s: %s", name,
		    PQerrorMessage(c));
		PQclear(res);
		PQfinish(c);
		return NULL;
	}
	PQclear(res);
	return c;
}

int
main(void)
{
	static const char	*cols[] = { "id", "callbackUrl", "status",
				    "createdAt", "updatedAt" };
	FCGX_Request		 fr;
	PGconn			*conn = NULL;
	PGresult		*res;
	unsigned char		 hash[EVP_MAX_MD_SIZE];
	unsigned int		 hlen;
	const char		*key, *qs, *vals[1];
	int			 lens[1], fmts[1] = { 1 }, i, fn, now, off;
	char			 body[8192];
	size_t			 n;

	if (FCGX_Init() != 0 || FCGX_InitRequest(&fr, 0, 0) != 0)
		return 1;
	while (FCGX_Accept_r(&fr) == 0) {
		key = FCGX_GetParam("HTTP_X_API_KEY", fr.envp);
		if (conn == NULL)
			conn = ref_connect();
		if (key == NULL || conn == NULL) {
			ref_reply(fr.out, key == NULL ? 401 : 500, key == NULL ?
			    "Unauthorized" : "Internal Server Error",
			    "application/problem+json", ref_401,
			    sizeof(ref_401) - 1);
			FCGX_Finish_r(&fr);
			continue;
		}
		/* Anything but none, via=function or close=now is refused,
		 * so that bench/api can tell that the query string gets
		 * here. */
		qs = FCGX_GetParam("QUERY_STRING", fr.envp);
		fn = qs != NULL && strcmp(qs, "via=function") == 0;
		now = qs != NULL && strcmp(qs, "close=now") == 0;
		if (!fn && !now && qs != NULL && *qs != '\0') {
			ref_reply(fr.out, 400, "Bad Request",
			    "application/problem+json", ref_400,
			    sizeof(ref_400) - 1);
			FCGX_Finish_r(&fr);
			continue;
		}
		EVP_Digest(key, strlen(key), hash, &hlen, EVP_sha256(), NULL);
		vals[0] = (const char *)hash;
		lens[0] = (int)hlen;
		/* dlrhook's statement has the outcome first: skip it. */
		off = fn ? 1 : 0;
		res = PQexecPrepared(conn, fn ? "fn" : "get", 1, vals, lens,
		    fmts, 0);
		if (PQresultStatus(res) == PGRES_TUPLES_OK &&
		    PQntuples(res) == 1 && PQnfields(res) >= 5 + off &&
		    (!fn || strcmp(PQgetvalue(res, 0, 0), "ok") == 0)) {
			n = 0;
			body[n++] = '{';
			for (i = 0; i < 5; i++) {
				n += (size_t)snprintf(body + n, sizeof(body) - n,
				    "%s\"%s\":\"", i > 0 ? "," : "", cols[i]);
				ref_json_str(body, sizeof(body) - 2, &n,
				    PQgetvalue(res, 0, i + off));
				body[n++] = '"';
			}
			body[n++] = '}';
			ref_reply(fr.out, 200, "OK", "application/json", body, n);
		} else
			ref_reply(fr.out, 401, "Unauthorized",
			    "application/problem+json", ref_401,
			    sizeof(ref_401) - 1);
		PQclear(res);
		/* As dlrhook: the request read to its end (a GET's empty
		 * stdin), so that nothing is left unread at the close. */
		if (now) {
			while (FCGX_GetChar(fr.in) != EOF)
				continue;
			if (FCGX_HasSeenEOF(fr.in) == EOF)
				FCGX_Detach(&fr);
		}
		FCGX_Finish_r(&fr);
	}
	PQfinish(conn);
	return 0;
}
