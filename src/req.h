/* req.h: an HTTP request, copied out of the FastCGI layer and owned by us. */
#ifndef DLR_REQ_H
#define DLR_REQ_H

#include <stddef.h>
#include <stdbool.h>

/* The API accepts bodies up to this size; larger ones get 413. */
#define REQ_BODY_MAX	(64 * 1024)

enum req_method {
	REQ_GET,
	REQ_POST,
	REQ_PUT,
	REQ_DELETE,
	REQ_OTHER,
	REQ__MAX
};

struct request {
	enum req_method	 method;
	char		*method_name;	/* as sent, for logs */
	char		*path;		/* route path: PATH_INFO, e.g. "/delivery-status" */
	char		*uri_path;	/* the path the client asked for, no query */
	char		*api_key;	/* NULL when the header is absent */
	char		*content_type;	/* NULL when absent */
	long long	 content_length; /* -1 when absent or unparsable */
	char		*body;		/* NUL-terminated; NULL when empty or too large */
	size_t		 body_len;
	bool		 body_too_large; /* more than REQ_BODY_MAX was sent */
};

/*
 * Where a request comes from, so that the FastCGI adapter and the fuzzer
 * build it with the same code. param returns the value of a CGI parameter
 * (REQUEST_METHOD, PATH_INFO, ...) or NULL when it is absent; the value
 * need only live until the next call. read reads up to n bytes of the body
 * into buf and returns how many, 0 at its end or on an error.
 */
struct req_source {
	const char	*(*param)(void *arg, const char *name);
	int		 (*read)(void *arg, char *buf, int n);
	void		*arg;
};

struct request	*req_new(void);
void		 req_free(struct request *);
/*
 * Copies a request out of its source into an owned struct request. The
 * whole body is read: at most REQ_BODY_MAX bytes are kept, and a longer
 * body (or a Content-Length above it) sets body_too_large.
 */
struct request	*req_from_source(const struct req_source *);
enum req_method	 req_method_parse(const char *);
/* True for application/json with any parameters (charset=utf-8 and so on). */
bool		 req_is_json(const char *content_type);

#endif
