/* req.c: an HTTP request, copied out of the FastCGI layer and owned by us. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "req.h"
#include "util.h"

static const char *const method_names[REQ__MAX] = {
	[REQ_GET] = "GET",
	[REQ_POST] = "POST",
	[REQ_PUT] = "PUT",
	[REQ_DELETE] = "DELETE",
	[REQ_OTHER] = NULL,
};

struct request *
req_new(void)
{
	struct request	*r;

	r = xcalloc(1, sizeof(*r));
	r->method = REQ_OTHER;
	r->content_length = -1;
	return r;
}

void
req_free(struct request *r)
{
	if (r == NULL)
		return;
	free(r->method_name);
	free(r->path);
	free(r->uri_path);
	free(r->api_key);
	free(r->content_type);
	free(r->body);
	free(r);
}

/* A copy of a parameter; the source's pointer may die with the request. */
static char *
req_param_dup(const struct req_source *src, const char *name)
{
	const char	*v = src->param(src->arg, name);

	return v != NULL ? xstrdup(v) : NULL;
}

/*
 * The path the client asked for, without the query, for Location. With
 * one leading slash only: "//host/../webhooks/..." reaches the resource,
 * but as a Location it names another host (so does "/\host" to browsers).
 * A target in absolute form ("http://host/webhooks/...", RFC 9112 3.2.2)
 * reaches REQUEST_URI as sent through Apache: its path starts at the
 * first slash after the authority.
 */
static char *
req_uri_path(const struct req_source *src)
{
	const char	*uri = src->param(src->arg, "REQUEST_URI");
	char		*path;
	size_t		 n;

	if (uri == NULL)
		return NULL;
	n = strspn(uri, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.");
	if (n > 0 && strncmp(uri + n, "://", 3) == 0) {
		uri += n + 3;
		uri += strcspn(uri, "/?#");
	}
	if (*uri != '/')
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
 * body nobody reads, and the request is flagged as too large. The buffer
 * grows with what arrives: a GET, which has no body, allocates nothing
 * (a 64 KiB buffer per request was a tenth of the API's own CPU time:
 * malloc and its consolidation on free).
 */
static void
req_body_read(const struct req_source *src, struct request *req)
{
	struct buf	 b;
	char		 chunk[8192];
	size_t		 keep;
	int		 n;

	buf_init(&b);
	if (req->content_length > REQ_BODY_MAX)
		req->body_too_large = true;
	else if (req->content_length > 0)
		buf_reserve(&b, (size_t)req->content_length);
	while ((n = src->read(src->arg, chunk, sizeof(chunk))) > 0) {
		keep = req->body_too_large ? 0 : REQ_BODY_MAX - b.len;
		if ((size_t)n > keep)
			req->body_too_large = true;
		else
			keep = (size_t)n;
		if (keep > 0)
			buf_append(&b, chunk, keep);
	}
	if (req->body_too_large || b.len == 0)
		buf_free(&b);
	else {
		req->body_len = b.len;
		req->body = buf_release(&b);
	}
}

struct request *
req_from_source(const struct req_source *src)
{
	struct request	*req;
	const char	*cl;
	char		*end;

	req = req_new();
	req->method_name = req_param_dup(src, "REQUEST_METHOD");
	req->method = req_method_parse(req->method_name);
	req->path = req_param_dup(src, "PATH_INFO");
	req->uri_path = req_uri_path(src);
	req->api_key = req_param_dup(src, "HTTP_X_API_KEY");
	req->content_type = req_param_dup(src, "CONTENT_TYPE");
	if ((cl = src->param(src->arg, "CONTENT_LENGTH")) != NULL &&
	    *cl != '\0') {
		errno = 0;
		req->content_length = strtoll(cl, &end, 10);
		if (errno != 0 || *end != '\0' || req->content_length < 0)
			req->content_length = -1;
	}
	req_body_read(src, req);
	return req;
}

/* Methods are case-sensitive (RFC 9110, section 9.1). */
enum req_method
req_method_parse(const char *s)
{
	int	 i;

	if (s == NULL)
		return REQ_OTHER;
	for (i = 0; i < REQ__MAX; i++)
		if (method_names[i] != NULL && strcmp(s, method_names[i]) == 0)
			return (enum req_method)i;
	return REQ_OTHER;
}

bool
req_is_json(const char *ct)
{
	static const char	 json[] = "application/json";
	size_t			 n = sizeof(json) - 1;

	if (ct == NULL)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, json, n) != 0)
		return false;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}
