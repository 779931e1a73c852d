/* test_route.c: routing, methods, Allow headers and content-type matching. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "req.h"
#include "route.h"

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
		cmocka_unit_test(resource_paths_match_their_routes),
		cmocka_unit_test(other_paths_match_nothing),
		cmocka_unit_test(each_route_allows_exactly_its_methods),
		cmocka_unit_test(allow_headers_list_the_served_methods),
		cmocka_unit_test(methods_parse_case_sensitively),
		cmocka_unit_test(json_content_types_are_recognised),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
