/* test_route.c: reading a request; routing, methods, Allow headers and
 * content-type matching. */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "req.h"
#include "route.h"

/* A request source as libfcgi would be one: CGI parameters, and a body
 * handed out at most `chunk` bytes per read. */
struct fake_src {
	const char	*const *params;	/* name, value, ..., NULL */
	const char	*body;
	size_t		 body_len, off, chunk;
	int		 reads;
};

static const char *
fake_param(void *arg, const char *name)
{
	struct fake_src		*f = arg;
	const char *const	*p;

	for (p = f->params; p[0] != NULL; p += 2)
		if (strcmp(p[0], name) == 0)
			return p[1];
	return NULL;
}

static int
fake_read(void *arg, char *buf, int n)
{
	struct fake_src	*f = arg;
	size_t		 k = f->body_len - f->off;

	f->reads++;
	if (k > (size_t)n)
		k = (size_t)n;
	if (k > f->chunk)
		k = f->chunk;
	memcpy(buf, f->body + f->off, k);
	f->off += k;
	return (int)k;
}

static struct request *
read_request(struct fake_src *f)
{
	struct req_source	 src = { fake_param, fake_read, f };

	return req_from_source(&src);
}

static void
a_get_has_no_body_and_no_buffer(void **state)
{
	static const char *const params[] = { "REQUEST_METHOD", "GET",
	    "PATH_INFO", "/delivery-status", "REQUEST_URI",
	    "//webhooks/delivery-status?x=1", "HTTP_X_API_KEY", "k", NULL };
	struct fake_src	 f = { params, "", 0, 0, 1, 0 };
	struct request	*r;

	(void)state;
	r = read_request(&f);
	assert_int_equal(r->method, REQ_GET);
	assert_string_equal(r->path, "/delivery-status");
	assert_string_equal(r->uri_path, "/webhooks/delivery-status");
	assert_string_equal(r->api_key, "k");
	assert_null(r->content_type);
	assert_int_equal(r->content_length, -1);
	assert_null(r->body);
	assert_int_equal(r->body_len, 0);
	assert_false(r->body_too_large);
	req_free(r);
}

/* A target in absolute form, as a client sends it to a proxy: Location
 * is its path, the prefix the server is mounted under included. */
static void
an_absolute_form_target_gives_its_path(void **state)
{
	static const struct { const char *uri, *want; } cases[] = {
		{ "http://x:8080/api/v1/webhooks/delivery-status?y=1",
		    "/api/v1/webhooks/delivery-status" },
		{ "HTTPS://x//webhooks/delivery-status#f",
		    "/webhooks/delivery-status" },
		{ "http://x?/webhooks/delivery-status", NULL },
		{ "http://x", NULL },
		{ "webhooks/delivery-status", NULL },
		{ "://x/webhooks/delivery-status", NULL },
	};
	const char	*params[] = { "REQUEST_METHOD", "POST", "PATH_INFO",
	    "/delivery-status", "REQUEST_URI", NULL, NULL };
	struct fake_src	 f = { params, "", 0, 0, 1, 0 };
	struct request	*r;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		params[5] = cases[i].uri;
		r = read_request(&f);
		if (cases[i].want == NULL) {
			if (r->uri_path != NULL)
				fail_msg("%s: path %s, want none", cases[i].uri,
				    r->uri_path);
		} else if (r->uri_path == NULL ||
		    strcmp(r->uri_path, cases[i].want) != 0)
			fail_msg("%s: path %s, want %s", cases[i].uri,
			    r->uri_path != NULL ? r->uri_path : "(none)",
			    cases[i].want);
		req_free(r);
	}
}

/* Bodies arrive in pieces, with their length declared or not; what is
 * kept is every byte, in order, up to REQ_BODY_MAX; one byte more is too
 * large, and the rest is still read to its end so that the web server is
 * not left writing into a full pipe. */
static void
a_body_is_read_whole_up_to_its_limit(void **state)
{
	static const size_t	 chunks[] = { 1, 7, 4096, 8192 };
	static const size_t	 sizes[] = { 1, 8191, REQ_BODY_MAX,
	    REQ_BODY_MAX + 1, 3 * REQ_BODY_MAX };
	const char		*params[] = { "REQUEST_METHOD", "PUT",
	    "CONTENT_TYPE", "application/json", NULL, NULL, NULL };
	struct fake_src		 f = { params, NULL, 0, 0, 0, 0 };
	struct request		*r;
	char			*body, len[32];
	size_t			 i, j, k;
	int			 declared;

	(void)state;
	body = malloc(3 * REQ_BODY_MAX);
	assert_non_null(body);
	for (k = 0; k < 3 * REQ_BODY_MAX; k++)
		body[k] = (char)('a' + k % 26);
	for (declared = 0; declared < 2; declared++)
	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++)
		for (j = 0; j < sizeof(sizes) / sizeof(sizes[0]); j++) {
			snprintf(len, sizeof(len), "%zu", sizes[j]);
			params[4] = declared ? "CONTENT_LENGTH" : NULL;
			params[5] = len;
			f.body = body;
			f.body_len = sizes[j];
			f.off = 0;
			f.chunk = chunks[i];
			print_message("body %zu in pieces of %zu%s\n", sizes[j],
			    chunks[i], declared ? ", length declared" : "");
			r = read_request(&f);
			assert_int_equal(f.off, sizes[j]);
			if (sizes[j] > REQ_BODY_MAX) {
				assert_true(r->body_too_large);
				assert_null(r->body);
			} else {
				assert_false(r->body_too_large);
				assert_int_equal(r->body_len, sizes[j]);
				assert_memory_equal(r->body, body, sizes[j]);
				assert_int_equal(r->body[sizes[j]], '\0');
			}
			req_free(r);
		}
	free(body);
}

/*
 * The declared length decides nothing about what is kept: a declared
 * body that never comes (a client that hangs up) is empty, with nothing
 * left allocated (valgrind and ASan see the buffer reserved for it); one
 * declared above the limit is too large whatever arrives, and what does
 * arrive is still read.
 */
static void
a_declared_length_keeps_only_what_is_allowed_and_sent(void **state)
{
	static const struct {
		const char	*length, *body;
		long long	 want_length;
		bool		 too_large;
	} cases[] = {
		{ "100", "", 100, false },
		{ "65537", "{}", REQ_BODY_MAX + 1, true },
	};
	const char	*params[] = { "REQUEST_METHOD", "PUT", "CONTENT_LENGTH",
	    NULL, NULL };
	struct fake_src	 f = { params, NULL, 0, 0, 2, 0 };
	struct request	*r;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		params[3] = cases[i].length;
		f.body = cases[i].body;
		f.body_len = strlen(cases[i].body);
		f.off = 0;
		r = read_request(&f);
		assert_int_equal(r->content_length, cases[i].want_length);
		assert_int_equal(r->body_too_large, cases[i].too_large);
		assert_null(r->body);
		assert_int_equal(r->body_len, 0);
		assert_int_equal(f.off, f.body_len);
		req_free(r);
	}
}

static void
resource_paths_match_their_routes(void **state)
{
	(void)state;
	assert_int_equal(route_match("/delivery-status"), ROUTE_WEBHOOK);
	assert_int_equal(route_match("/delivery-status/secret"), ROUTE_SECRET);
	assert_int_equal(route_match("/delivery-status/secret/rotate"),
	    ROUTE_ROTATE);
}

static void
other_paths_match_nothing(void **state)
{
	static const char *const paths[] = {
		"", "/", "/delivery-status/", "/delivery-status/x",
		"/delivery-statuses", "/Delivery-Status", "delivery-status",
		"/delivery-status/secret/", "/delivery-status/secret/rotate/x",
		"/delivery-status/../delivery-status", "/delivery-status%2F",
		"//delivery-status", "/secret", "/delivery-status/rotate",
	};
	size_t	 i;

	(void)state;
	assert_int_equal(route_match(NULL), ROUTE_NONE);
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		print_message("path %s\n", paths[i]);
		assert_int_equal(route_match(paths[i]), ROUTE_NONE);
	}
}

static void
each_route_allows_exactly_its_methods(void **state)
{
	(void)state;
	assert_true(route_allows(ROUTE_WEBHOOK, REQ_GET));
	assert_true(route_allows(ROUTE_WEBHOOK, REQ_POST));
	assert_true(route_allows(ROUTE_WEBHOOK, REQ_PUT));
	assert_true(route_allows(ROUTE_WEBHOOK, REQ_DELETE));
	assert_false(route_allows(ROUTE_WEBHOOK, REQ_OTHER));
	assert_true(route_allows(ROUTE_SECRET, REQ_GET));
	assert_false(route_allows(ROUTE_SECRET, REQ_POST));
	assert_false(route_allows(ROUTE_SECRET, REQ_PUT));
	assert_false(route_allows(ROUTE_SECRET, REQ_DELETE));
	assert_true(route_allows(ROUTE_ROTATE, REQ_POST));
	assert_false(route_allows(ROUTE_ROTATE, REQ_GET));
	assert_false(route_allows(ROUTE_ROTATE, REQ_DELETE));
	assert_false(route_allows(ROUTE_NONE, REQ_GET));
}

static void
allow_headers_list_the_served_methods(void **state)
{
	(void)state;
	assert_string_equal(route_allow_header(ROUTE_WEBHOOK),
	    "GET, POST, PUT, DELETE");
	assert_string_equal(route_allow_header(ROUTE_SECRET), "GET");
	assert_string_equal(route_allow_header(ROUTE_ROTATE), "POST");
}

static void
methods_parse_case_sensitively(void **state)
{
	(void)state;
	assert_int_equal(req_method_parse("GET"), REQ_GET);
	assert_int_equal(req_method_parse("POST"), REQ_POST);
	assert_int_equal(req_method_parse("PUT"), REQ_PUT);
	assert_int_equal(req_method_parse("DELETE"), REQ_DELETE);
	assert_int_equal(req_method_parse("get"), REQ_OTHER);
	assert_int_equal(req_method_parse("HEAD"), REQ_OTHER);
	assert_int_equal(req_method_parse("PATCH"), REQ_OTHER);
	assert_int_equal(req_method_parse("OPTIONS"), REQ_OTHER);
	assert_int_equal(req_method_parse("GETX"), REQ_OTHER);
	assert_int_equal(req_method_parse(""), REQ_OTHER);
	assert_int_equal(req_method_parse(NULL), REQ_OTHER);
}

static void
json_content_types_are_recognised(void **state)
{
	static const struct {
		const char	*ct;
		bool		 json;
	} cases[] = {
		{ "application/json", true },
		{ "Application/JSON", true },
		{ "application/json; charset=utf-8", true },
		{ "application/json;charset=UTF-8", true },
		{ " application/json ", true },
		{ "application/json ; charset=utf-8", true },
		{ "application/jsonx", false },
		{ "application/json-patch+json", false },
		{ "application/problem+json", false },
		{ "text/json", false },
		{ "text/plain", false },
		{ "application/x-www-form-urlencoded", false },
		{ "multipart/form-data; boundary=x", false },
		{ "application", false },
		{ "", false },
		{ NULL, false },
	};
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("content-type %s\n",
		    cases[i].ct != NULL ? cases[i].ct : "(none)");
		assert_int_equal(req_is_json(cases[i].ct), cases[i].json);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_get_has_no_body_and_no_buffer),
		cmocka_unit_test(an_absolute_form_target_gives_its_path),
		cmocka_unit_test(a_body_is_read_whole_up_to_its_limit),
		cmocka_unit_test(a_declared_length_keeps_only_what_is_allowed_and_sent),
		cmocka_unit_test(resource_paths_match_their_routes),
		cmocka_unit_test(other_paths_match_nothing),
		cmocka_unit_test(each_route_allows_exactly_its_methods),
		cmocka_unit_test(allow_headers_list_the_served_methods),
		cmocka_unit_test(methods_parse_case_sensitively),
		cmocka_unit_test(json_content_types_are_recognised),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
