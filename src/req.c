/* req.c: an HTTP request, copied out of the FastCGI layer and owned by us. */
#include "config.h"

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
