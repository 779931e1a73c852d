/* fcgi.c: the FastCGI adapter, the only file that speaks libfcgi. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcgiapp.h>

#include "handler.h"
#include "log.h"
#include "util.h"

/* A copy of a parameter; FCGX_GetParam's pointer dies with the request. */
static char *
param_dup(FCGX_ParamArray envp, const char *name)
{
	const char	*v = FCGX_GetParam(name, envp);

	return v != NULL ? xstrdup(v) : NULL;
}

/*
 * The path the client asked for, without the query, for Location. With
 * one leading slash only: "//host/../webhooks/..." reaches the resource,
 * but as a Location it names another host (so does "/\host" to browsers).
 */
static char *
uri_path(FCGX_ParamArray envp)
{
	const char	*uri = FCGX_GetParam("REQUEST_URI", envp);
	char		*path;
	size_t		 n;

	if (uri == NULL || *uri != '/')
		return NULL;
	uri += strspn(uri, "/\\") - 1;
	n = strcspn(uri, "?#");
	if (strcspn(uri, "\r\n") < n)
		return NULL;
	path = xstrndup(uri, n);
	path[0] = '/';
	return path;
}

/*
 * Reads the body: up to REQ_BODY_MAX bytes are kept; anything beyond is
 * read and dropped so that the web server is never left blocked writing a
 * body nobody reads, and the request is flagged as too large.
 */
static void
body_read(FCGX_Stream *in, struct request *req)
{
	char	 sink[8192];
	size_t	 cap = REQ_BODY_MAX + 1;
	int	 n;

	if (req->content_length > REQ_BODY_MAX)
		req->body_too_large = true;
	else {
		req->body = xmalloc(cap);
		while (req->body_len < REQ_BODY_MAX &&
		    (n = FCGX_GetStr(req->body + req->body_len,
		    (int)(REQ_BODY_MAX - req->body_len), in)) > 0)
			req->body_len += (size_t)n;
		req->body[req->body_len] = '\0';
	}
	while ((n = FCGX_GetStr(sink, sizeof(sink), in)) > 0)
		req->body_too_large = true;
}

static struct request *
request_copy(FCGX_Request *fr)
{
	struct request	*req;
	const char	*cl;
	char		*end;

	req = req_new();
	req->method_name = param_dup(fr->envp, "REQUEST_METHOD");
	req->method = req_method_parse(req->method_name);
	req->path = param_dup(fr->envp, "PATH_INFO");
	req->uri_path = uri_path(fr->envp);
	req->api_key = param_dup(fr->envp, "HTTP_X_API_KEY");
	req->content_type = param_dup(fr->envp, "CONTENT_TYPE");
	if ((cl = FCGX_GetParam("CONTENT_LENGTH", fr->envp)) != NULL && *cl != '\0') {
		errno = 0;
		req->content_length = strtoll(cl, &end, 10);
		if (errno != 0 || *end != '\0' || req->content_length < 0)
			req->content_length = -1;
	}
	body_read(fr->in, req);
	return req;
}

static int
env_flag(const char *name)
{
	const char	*v = getenv(name);

	return v != NULL && strcmp(v, "1") == 0;
}

int
main(void)
{
	FCGX_Request		 fr;
	struct app_config	 cfg = { 0 };
	struct store		*st;
	struct request		*req;
	struct response		*resp;
	char			*out;
	size_t			 len;

	log_init("dlrhook.fcgi");
	signal(SIGPIPE, SIG_IGN);
	cfg.allow_private = env_flag("DLRHOOK_ALLOW_PRIVATE");
	if (cfg.allow_private)
		log_warnx("DLRHOOK_ALLOW_PRIVATE=1: private and loopback "
		    "callback URLs are accepted; never use this in production");
	if (FCGX_Init() != 0) {
		log_warnx("%s: FCGX_Init failed", __func__);
		return 1;
	}
	if (FCGX_InitRequest(&fr, 0, 0) != 0) {
		log_warnx("%s: FCGX_InitRequest failed", __func__);
		return 1;
	}
	st = store_pg_new(getenv("DLRHOOK_DATABASE"));

	while (FCGX_Accept_r(&fr) == 0) {
		req = request_copy(&fr);
		resp = handle_request(req, st, &cfg);
		out = resp_render(resp, &len);
		if (FCGX_PutStr(out, (int)len, fr.out) != (int)len)
			log_warnx("%s: client went away before the response "
			    "was written", __func__);
		free(out);
		resp_free(resp);
		req_free(req);
		FCGX_Finish_r(&fr);
	}
	store_free(st);
	return 0;
}
