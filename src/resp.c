/* resp.c: an HTTP response built by a handler, written out by the adapter. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "resp.h"
#include "util.h"

struct response *
resp_new(int status)
{
	struct response	*r;

	r = xcalloc(1, sizeof(*r));
	r->status = status;
	return r;
}

void
resp_free(struct response *r)
{
	if (r == NULL)
		return;
	free(r->content_type);
	free(r->location);
	free(r->allow);
	free(r->body);
	free(r);
}

void
resp_set_json(struct response *r, char *body)
{
	free(r->content_type);
	free(r->body);
	r->content_type = xstrdup("application/json");
	r->body = body;
	r->body_len = strlen(body);
}

struct response *
resp_problem(enum dlr_err e, const char *detail)
{
	struct response	*r;
	struct buf	 b;

	r = resp_new(err_status(e));
	buf_init(&b);
	buf_puts(&b, "{");
	buf_json_str(&b, "type", err_type(e));
	buf_json_str(&b, "title", err_title(e));
	buf_json_int(&b, "status", r->status);
	buf_json_str(&b, "detail", detail != NULL ? detail : err_detail(e));
	buf_puts(&b, "}");
	r->body_len = b.len;
	r->body = buf_release(&b);
	r->content_type = xstrdup("application/problem+json");
	return r;
}

/*
 * The CGI response: a Status line, the headers, a blank line, the body.
 * Header values come from our own code, never from the request, except the
 * Location path, which the adapter has already checked for CR and LF.
 */
char *
resp_render(const struct response *r, size_t *len)
{
	struct buf	 b;

	buf_init(&b);
	buf_reserve(&b, 160 + (r->body != NULL ? r->body_len : 0));
	buf_printf(&b, "Status: %d %s\r\n", r->status, err_reason(r->status));
	buf_puts(&b, "Cache-Control: no-store\r\n");
	if (r->content_type != NULL)
		buf_printf(&b, "Content-Type: %s\r\n", r->content_type);
	if (r->location != NULL)
		buf_printf(&b, "Location: %s\r\n", r->location);
	if (r->allow != NULL)
		buf_printf(&b, "Allow: %s\r\n", r->allow);
	if (r->body != NULL)
		buf_printf(&b, "Content-Length: %zu\r\n", r->body_len);
	else
		buf_puts(&b, "Content-Length: 0\r\n");
	buf_puts(&b, "\r\n");
	if (r->body != NULL)
		buf_append(&b, r->body, r->body_len);
	*len = b.len;
	return buf_release(&b);
}
