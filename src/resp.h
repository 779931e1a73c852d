/* resp.h: an HTTP response built by a handler, written out by the adapter. */
#ifndef DLR_RESP_H
#define DLR_RESP_H

#include <stddef.h>

#include "err.h"

struct response {
	int	 status;
	char	*content_type;	/* NULL for an empty body */
	char	*location;	/* Location header, or NULL */
	char	*allow;		/* Allow header, or NULL */
	char	*body;
	size_t	 body_len;
};

struct response	*resp_new(int status);
void		 resp_free(struct response *);
/* Takes ownership of body, a JSON document. */
void		 resp_set_json(struct response *, char *body);
/* An RFC 9457 problem+json response; detail NULL uses the default. */
struct response	*resp_problem(enum dlr_err, const char *detail);
/* Renders the CGI/FastCGI header block and body into one string. */
char		*resp_render(const struct response *, size_t *len);

#endif
