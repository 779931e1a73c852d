/* test_problem.c: problem+json rendering and the CGI response format. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "err.h"
#include "resp.h"
#include "util.h"

static const char *
field(json_object *o, const char *name)
{
	json_object	*v;

	assert_true(json_object_object_get_ex(o, name, &v));
	return json_object_get_string(v);
}

static void
every_error_maps_to_its_status(void **state)
{
	(void)state;
	assert_int_equal(err_status(DLR_ERR_BAD_REQUEST), 400);
	assert_int_equal(err_status(DLR_ERR_UNAUTHORIZED), 401);
	assert_int_equal(err_status(DLR_ERR_NOT_FOUND), 404);
	assert_int_equal(err_status(DLR_ERR_NO_WEBHOOK), 404);
	assert_int_equal(err_status(DLR_ERR_METHOD), 405);
	assert_int_equal(err_status(DLR_ERR_CONFLICT), 409);
	assert_int_equal(err_status(DLR_ERR_TOO_LARGE), 413);
	assert_int_equal(err_status(DLR_ERR_MEDIA_TYPE), 415);
	assert_int_equal(err_status(DLR_ERR_INTERNAL), 500);
	assert_int_equal(err_status(DLR_ERR__MAX), 500);
}

static void
problem_has_type_title_status_detail(void **state)
{
	struct response	*r;
	json_object	*o;
	int		 e;

	(void)state;
	for (e = DLR_ERR_BAD_REQUEST; e < DLR_ERR__MAX; e++) {
		r = resp_problem((enum dlr_err)e, NULL);
		assert_int_equal(r->status, err_status((enum dlr_err)e));
		assert_string_equal(r->content_type, "application/problem+json");
		o = json_tokener_parse(r->body);
		assert_non_null(o);
		assert_int_equal(json_object_object_length(o), 4);
		assert_string_equal(field(o, "title"), err_title((enum dlr_err)e));
		assert_int_equal(atoi(field(o, "status")), r->status);
		assert_true(strncmp(field(o, "type"), "urn:", 4) == 0);
		assert_true(strlen(field(o, "detail")) > 20);
		json_object_put(o);
		resp_free(r);
	}
}

static void
problem_detail_is_escaped_json(void **state)
{
	struct response	*r;
	json_object	*o;
	const char	*detail = "quote \" backslash \\ newline \n tab \t end";

	(void)state;
	r = resp_problem(DLR_ERR_BAD_REQUEST, detail);
	o = json_tokener_parse(r->body);
	assert_non_null(o);
	assert_string_equal(field(o, "detail"), detail);
	assert_null(strchr(r->body, '\n'));
	json_object_put(o);
	resp_free(r);
}

/* Every byte a string can hold, and UTF-8, comes back from a JSON parser
 * as it went in; names are escaped as values are; NULL is null. */
static void
json_members_round_trip_through_a_parser(void **state)
{
	struct buf	 b;
	json_object	*o, *v;
	char		 all[128 + 16];
	int		 i;

	(void)state;
	for (i = 1; i < 128; i++)
		all[i - 1] = (char)i;
	strcpy(all + 127, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	buf_init(&b);
	buf_puts(&b, "{");
	buf_json_str(&b, "all", all);
	buf_json_str(&b, "na\"me\\", "v");
	buf_json_str(&b, "none", NULL);
	buf_json_int(&b, "n", -9007199254740991LL);
	buf_json_str(&b, "empty", "");
	buf_puts(&b, "}");
	o = json_tokener_parse(b.data);
	assert_non_null(o);
	assert_int_equal(json_object_object_length(o), 5);
	assert_string_equal(field(o, "all"), all);
	assert_string_equal(field(o, "na\"me\\"), "v");
	assert_true(json_object_object_get_ex(o, "none", &v));
	assert_null(v);
	assert_true(json_object_object_get_ex(o, "n", &v));
	assert_true(json_object_is_type(v, json_type_int));
	assert_true(json_object_get_int64(v) == -9007199254740991LL);
	assert_string_equal(field(o, "empty"), "");
	for (i = 0; i < (int)b.len; i++)
		assert_true((unsigned char)b.data[i] >= 0x20);
	json_object_put(o);
	buf_free(&b);
}

static void
render_writes_status_headers_and_body(void **state)
{
	struct response	*r;
	char		*out;
	size_t		 len;

	(void)state;
	r = resp_new(201);
	resp_set_json(r, xstrdup("{\"a\":1}"));
	r->location = xstrdup("/webhooks/delivery-status");
	out = resp_render(r, &len);
	assert_int_equal(len, strlen(out));
	assert_non_null(strstr(out, "Status: 201 Created\r\n"));
	assert_non_null(strstr(out, "Cache-Control: no-store\r\n"));
	assert_non_null(strstr(out, "Content-Type: application/json\r\n"));
	assert_non_null(strstr(out, "Location: /webhooks/delivery-status\r\n"));
	assert_non_null(strstr(out, "Content-Length: 7\r\n"));
	assert_string_equal(strstr(out, "\r\n\r\n"), "\r\n\r\n{\"a\":1}");
	free(out);
	resp_free(r);
}

static void
render_204_has_no_body_or_type(void **state)
{
	struct response	*r;
	char		*out;
	size_t		 len;

	(void)state;
	r = resp_new(204);
	out = resp_render(r, &len);
	assert_non_null(strstr(out, "Status: 204 No Content\r\n"));
	assert_null(strstr(out, "Content-Type"));
	assert_string_equal(strstr(out, "\r\n\r\n"), "\r\n\r\n");
	free(out);
	resp_free(r);
}

static void
render_405_carries_allow(void **state)
{
	struct response	*r;
	char		*out;
	size_t		 len;

	(void)state;
	r = resp_problem(DLR_ERR_METHOD, NULL);
	r->allow = xstrdup("GET");
	out = resp_render(r, &len);
	assert_non_null(strstr(out, "Status: 405 Method Not Allowed\r\n"));
	assert_non_null(strstr(out, "Allow: GET\r\n"));
	assert_non_null(strstr(out, "Content-Type: application/problem+json\r\n"));
	free(out);
	resp_free(r);
}

static void
free_accepts_null(void **state)
{
	(void)state;
	resp_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_error_maps_to_its_status),
		cmocka_unit_test(problem_has_type_title_status_detail),
		cmocka_unit_test(problem_detail_is_escaped_json),
		cmocka_unit_test(json_members_round_trip_through_a_parser),
		cmocka_unit_test(render_writes_status_headers_and_body),
		cmocka_unit_test(render_204_has_no_body_or_type),
		cmocka_unit_test(render_405_carries_allow),
		cmocka_unit_test(free_accepts_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
