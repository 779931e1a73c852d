/* test_handler.c: every handler against the in-memory store. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "handler.h"
#include "util.h"

#define KEY_A	"dlr_key_of_account_a"
#define KEY_B	"dlr_key_of_account_b"
#define URL_1	"https://example.com/hooks/dlr"
#define URL_2	"https://hooks.example.org:8443/v2?x=1"

struct fixture {
	struct store		*store;
	struct app_config	 cfg;
};

static int
setup(void **state)
{
	struct fixture	*f;

	f = xcalloc(1, sizeof(*f));
	f->store = store_mem_new();
	store_mem_add_key(f->store, KEY_A, 1);
	store_mem_add_key(f->store, KEY_B, 2);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	store_free(f->store);
	free(f);
	return 0;
}

/* Runs one request; body NULL sends none; ct NULL sends no Content-Type. */
static struct response *
run(struct fixture *f, const char *method, const char *path, const char *key,
    const char *ct, const char *body)
{
	struct request	*req;
	struct response	*r;

	req = req_new();
	req->method_name = xstrdup(method);
	req->method = req_method_parse(method);
	req->path = xstrdup(path);
	req->uri_path = xasprintf("/webhooks%s", path);
	req->api_key = key != NULL ? xstrdup(key) : NULL;
	req->content_type = ct != NULL ? xstrdup(ct) : NULL;
	if (body != NULL) {
		req->body_len = strlen(body);
		req->content_length = (long long)req->body_len;
		if (req->body_len > REQ_BODY_MAX)
			req->body_too_large = true;
		else
			req->body = xstrdup(body);
	}
	r = handle_request(req, f->store, &f->cfg);
	req_free(req);
	assert_non_null(r);
	return r;
}

static char *
url_body(const char *url)
{
	return xasprintf("{\"callbackUrl\":\"%s\"}", url);
}

static struct response *
post(struct fixture *f, const char *key, const char *url)
{
	struct response	*r;
	char		*b = url_body(url);

	r = run(f, "POST", "/delivery-status", key, "application/json", b);
	free(b);
	return r;
}

static struct response *
put(struct fixture *f, const char *key, const char *url)
{
	struct response	*r;
	char		*b = url_body(url);

	r = run(f, "PUT", "/delivery-status", key, "application/json", b);
	free(b);
	return r;
}

/* The string member name of a JSON body, copied; NULL when absent. */
static char *
member(const struct response *r, const char *name)
{
	json_object	*o, *v;
	char		*s = NULL;

	assert_non_null(r->body);
	o = json_tokener_parse(r->body);
	assert_non_null(o);
	if (json_object_object_get_ex(o, name, &v))
		s = xstrdup(json_object_get_string(v));
	json_object_put(o);
	return s;
}

static void
expect_problem(struct response *r, int status, const char *detail_part)
{
	char	*detail;

	assert_int_equal(r->status, status);
	assert_string_equal(r->content_type, "application/problem+json");
	detail = member(r, "detail");
	assert_non_null(detail);
	if (detail_part != NULL && strstr(detail, detail_part) == NULL)
		fail_msg("detail \"%s\" lacks \"%s\"", detail, detail_part);
	free(detail);
	resp_free(r);
}

static void
expect_status(struct response *r, int status)
{
	assert_int_equal(r->status, status);
	resp_free(r);
}

static void
unknown_path_gives_404_without_store(void **state)
{
	struct fixture	*f = *state;

	store_mem_fail(f->store, 1);
	expect_problem(run(f, "GET", "/nope", KEY_A, NULL, NULL), 404,
	    "/webhooks/delivery-status");
	expect_problem(run(f, "GET", "/delivery-status/", NULL, NULL, NULL),
	    404, NULL);
}

static void
other_method_gives_405_with_allow(void **state)
{
	struct fixture		*f = *state;
	static const struct {
		const char	*method, *path, *allow;
	} cases[] = {
		{ "PATCH", "/delivery-status", "GET, POST, PUT, DELETE" },
		{ "HEAD", "/delivery-status", "GET, POST, PUT, DELETE" },
		{ "OPTIONS", "/delivery-status", "GET, POST, PUT, DELETE" },
		{ "POST", "/delivery-status/secret", "GET" },
		{ "DELETE", "/delivery-status/secret", "GET" },
		{ "GET", "/delivery-status/secret/rotate", "POST" },
		{ "PUT", "/delivery-status/secret/rotate", "POST" },
	};
	struct response		*r;
	size_t			 i;

	store_mem_fail(f->store, 1);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = run(f, cases[i].method, cases[i].path, NULL, NULL, NULL);
		assert_int_equal(r->status, 405);
		assert_string_equal(r->allow, cases[i].allow);
		expect_problem(r, 405, NULL);
	}
}

static void
missing_empty_or_oversized_key_gives_401_without_store(void **state)
{
	struct fixture	*f = *state;
	char		 big[300];

	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	store_mem_fail(f->store, 1);
	expect_problem(run(f, "GET", "/delivery-status", NULL, NULL, NULL),
	    401, "X-API-Key");
	expect_problem(run(f, "GET", "/delivery-status", "", NULL, NULL),
	    401, NULL);
	expect_problem(run(f, "GET", "/delivery-status", big, NULL, NULL),
	    401, NULL);
}

static void
unknown_key_gives_401(void **state)
{
	struct fixture	*f = *state;

	expect_problem(run(f, "GET", "/delivery-status", "dlr_wrong", NULL,
	    NULL), 401, NULL);
	expect_problem(post(f, "dlr_wrong", URL_1), 401, NULL);
	expect_problem(run(f, "DELETE", "/delivery-status", "dlr_wrong", NULL,
	    NULL), 401, NULL);
	expect_problem(run(f, "POST", "/delivery-status/secret/rotate",
	    "dlr_wrong", NULL, NULL), 401, NULL);
}

static void
get_without_webhook_gives_404(void **state)
{
	struct fixture	*f = *state;

	expect_problem(run(f, "GET", "/delivery-status", KEY_A, NULL, NULL),
	    404, "POST /webhooks/delivery-status");
	expect_problem(run(f, "GET", "/delivery-status/secret", KEY_A, NULL,
	    NULL), 404, NULL);
	expect_problem(run(f, "POST", "/delivery-status/secret/rotate", KEY_A,
	    NULL, NULL), 404, NULL);
	expect_problem(run(f, "DELETE", "/delivery-status", KEY_A, NULL, NULL),
	    404, NULL);
}

static void
post_creates_with_location_and_secret(void **state)
{
	struct fixture	*f = *state;
	struct response	*r;
	char		*id, *secret, *s;
	unsigned char	 raw[64];

	r = post(f, KEY_A, URL_1);
	assert_int_equal(r->status, 201);
	assert_string_equal(r->content_type, "application/json");
	assert_string_equal(r->location, "/webhooks/delivery-status");
	id = member(r, "id");
	assert_true(strncmp(id, "wh_", 3) == 0);
	s = member(r, "callbackUrl");
	assert_string_equal(s, URL_1);
	free(s);
	s = member(r, "status");
	assert_string_equal(s, "ACTIVE");
	free(s);
	s = member(r, "createdAt");
	assert_int_equal(strlen(s), 24);
	assert_int_equal(s[23], 'Z');
	free(s);
	secret = member(r, "signingSecret");
	assert_true(strncmp(secret, "whsec_", 6) == 0);
	assert_int_equal(EVP_DecodeBlock(raw, (unsigned char *)secret + 6,
	    (int)strlen(secret + 6)), 33);	/* 32 bytes + one pad byte */
	resp_free(r);

	r = run(f, "GET", "/delivery-status", KEY_A, NULL, NULL);
	assert_int_equal(r->status, 200);
	s = member(r, "id");
	assert_string_equal(s, id);
	free(s);
	assert_null(member(r, "signingSecret"));
	resp_free(r);

	r = run(f, "GET", "/delivery-status/secret", KEY_A, NULL, NULL);
	assert_int_equal(r->status, 200);
	s = member(r, "signingSecret");
	assert_string_equal(s, secret);
	free(s);
	resp_free(r);
	free(id);
	free(secret);
}

static void
post_twice_gives_409(void **state)
{
	struct fixture	*f = *state;

	expect_status(post(f, KEY_A, URL_1), 201);
	expect_problem(post(f, KEY_A, URL_2), 409, "PUT");
}

static void
put_never_creates(void **state)
{
	struct fixture	*f = *state;

	expect_problem(put(f, KEY_A, URL_1), 404, NULL);
	expect_problem(run(f, "GET", "/delivery-status", KEY_A, NULL, NULL),
	    404, NULL);
}

static void
put_replaces_url_keeping_id(void **state)
{
	struct fixture	*f = *state;
	struct response	*r;
	char		*id, *s;

	r = post(f, KEY_A, URL_1);
	id = member(r, "id");
	resp_free(r);
	r = put(f, KEY_A, URL_2);
	assert_int_equal(r->status, 200);
	assert_null(r->location);
	s = member(r, "callbackUrl");
	assert_string_equal(s, URL_2);
	free(s);
	s = member(r, "id");
	assert_string_equal(s, id);
	free(s);
	resp_free(r);
	r = run(f, "GET", "/delivery-status", KEY_A, NULL, NULL);
	s = member(r, "callbackUrl");
	assert_string_equal(s, URL_2);
	free(s);
	resp_free(r);
	free(id);
}

static void
delete_then_get_gives_404(void **state)
{
	struct fixture	*f = *state;
	struct response	*r;

	expect_status(post(f, KEY_A, URL_1), 201);
	r = run(f, "DELETE", "/delivery-status", KEY_A, NULL, NULL);
	assert_int_equal(r->status, 204);
	assert_null(r->body);
	assert_null(r->content_type);
	resp_free(r);
	expect_problem(run(f, "GET", "/delivery-status", KEY_A, NULL, NULL),
	    404, NULL);
	expect_status(post(f, KEY_A, URL_1), 201);
}

static void
rotate_returns_a_new_secret(void **state)
{
	struct fixture	*f = *state;
	struct response	*r;
	char		*old, *new, *s;

	r = post(f, KEY_A, URL_1);
	old = member(r, "signingSecret");
	resp_free(r);
	r = run(f, "POST", "/delivery-status/secret/rotate", KEY_A, NULL, NULL);
	assert_int_equal(r->status, 200);
	new = member(r, "signingSecret");
	assert_true(strncmp(new, "whsec_", 6) == 0);
	assert_string_not_equal(new, old);
	resp_free(r);
	r = run(f, "GET", "/delivery-status/secret", KEY_A, NULL, NULL);
	s = member(r, "signingSecret");
	assert_string_equal(s, new);
	free(s);
	resp_free(r);
	free(old);
	free(new);
}

static void
other_account_never_sees_or_changes_webhook(void **state)
{
	struct fixture	*f = *state;
	struct response	*r;
	char		*s;

	expect_status(post(f, KEY_A, URL_1), 201);
	expect_problem(run(f, "GET", "/delivery-status", KEY_B, NULL, NULL),
	    404, NULL);
	expect_problem(put(f, KEY_B, URL_2), 404, NULL);
	expect_problem(run(f, "DELETE", "/delivery-status", KEY_B, NULL, NULL),
	    404, NULL);
	expect_problem(run(f, "GET", "/delivery-status/secret", KEY_B, NULL,
	    NULL), 404, NULL);
	r = run(f, "GET", "/delivery-status", KEY_A, NULL, NULL);
	assert_int_equal(r->status, 200);
	s = member(r, "callbackUrl");
	assert_string_equal(s, URL_1);
	free(s);
	resp_free(r);
	/* B may have its own. */
	expect_status(post(f, KEY_B, URL_2), 201);
}

static void
key_is_checked_before_body(void **state)
{
	struct fixture	*f = *state;
	char		*huge;

	huge = xmalloc(REQ_BODY_MAX + 2);
	memset(huge, ' ', REQ_BODY_MAX + 1);
	huge[REQ_BODY_MAX + 1] = '\0';
	expect_problem(run(f, "POST", "/delivery-status", "dlr_wrong",
	    "text/plain", "x"), 401, NULL);
	expect_problem(run(f, "POST", "/delivery-status", "dlr_wrong",
	    "application/json", huge), 401, NULL);
	expect_problem(run(f, "PUT", "/delivery-status", "dlr_wrong",
	    "application/json", "not json"), 401, NULL);
	expect_problem(run(f, "POST", "/delivery-status", NULL, NULL, huge),
	    401, NULL);
	free(huge);
}

static void
body_checks_run_in_order_415_413_400(void **state)
{
	struct fixture	*f = *state;
	char		*huge;

	huge = xmalloc(REQ_BODY_MAX + 2);
	memset(huge, ' ', REQ_BODY_MAX + 1);
	huge[REQ_BODY_MAX + 1] = '\0';
	expect_problem(run(f, "POST", "/delivery-status", KEY_A, "text/plain",
	    huge), 415, "application/json");
	expect_problem(run(f, "POST", "/delivery-status", KEY_A, NULL,
	    "{\"callbackUrl\":\"" URL_1 "\"}"), 415, NULL);
	expect_problem(run(f, "POST", "/delivery-status", KEY_A,
	    "application/json", huge), 413, "65536");
	expect_problem(run(f, "PUT", "/delivery-status", KEY_A,
	    "application/json; charset=utf-8", "{"), 400, NULL);
	expect_problem(run(f, "POST", "/delivery-status", KEY_A,
	    "application/json", NULL), 400, NULL);
	/* A valid body with a JSON type that has parameters is accepted. */
	expect_status(run(f, "POST", "/delivery-status", KEY_A,
	    "application/json; charset=utf-8",
	    "{\"callbackUrl\":\"" URL_1 "\"}"), 201);
	/* With a webhook in place, a bad body is still 400, not 409. */
	expect_problem(post(f, KEY_A, "http://example.com/"), 400, "https");
	free(huge);
}

static void
private_urls_are_refused_unless_allowed(void **state)
{
	struct fixture	*f = *state;

	expect_problem(post(f, KEY_A, "https://10.1.2.3/hook"), 400, "10.1.2.3");
	expect_problem(post(f, KEY_A, "https://127.0.0.1:8443/"), 400, NULL);
	expect_problem(post(f, KEY_A, "https://localhost/"), 400, "localhost");
	f->cfg.allow_private = true;
	expect_status(post(f, KEY_A, "https://127.0.0.1:8443/"), 201);
	expect_status(put(f, KEY_A, "https://localhost/x"), 200);
}

static void
store_failure_gives_500_problem(void **state)
{
	struct fixture	*f = *state;

	store_mem_fail(f->store, 1);
	expect_problem(run(f, "GET", "/delivery-status", KEY_A, NULL, NULL),
	    500, "try again");
	expect_problem(post(f, KEY_A, URL_1), 500, NULL);
	expect_problem(run(f, "POST", "/delivery-status", KEY_A, "text/plain",
	    "x"), 500, NULL);
}

#define T(name)	cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(unknown_path_gives_404_without_store),
		T(other_method_gives_405_with_allow),
		T(missing_empty_or_oversized_key_gives_401_without_store),
		T(unknown_key_gives_401),
		T(get_without_webhook_gives_404),
		T(post_creates_with_location_and_secret),
		T(post_twice_gives_409),
		T(put_never_creates),
		T(put_replaces_url_keeping_id),
		T(delete_then_get_gives_404),
		T(rotate_returns_a_new_secret),
		T(other_account_never_sees_or_changes_webhook),
		T(key_is_checked_before_body),
		T(body_checks_run_in_order_415_413_400),
		T(private_urls_are_refused_unless_allowed),
		T(store_failure_gives_500_problem),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
