/* test_body.c: which POST/PUT bodies give a callbackUrl, and what refusals say. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "body.h"
#include "url.h"

/*
 * One request body. len 0 means strlen(body). On success the parsed URL
 * must equal want; on failure the detail must contain want.
 */
struct body_case {
	const char	*name;
	const char	*body;
	size_t		 len;
	bool		 allow_private;
	bool		 ok;
	const char	*want;
};

#define GOOD(n, b, u)		{ n, b, 0, false, true, u }
#define GOOD_PRIV(n, b, u)	{ n, b, 0, true, true, u }
#define BAD(n, b, w)		{ n, b, 0, false, false, w }
#define BAD_LEN(n, b, w)	{ n, b, sizeof(b) - 1, false, false, w }

#define EXAMPLE_URL	"https://example.com/dlr"
#define EXAMPLE_BODY	"{\"callbackUrl\":\"" EXAMPLE_URL "\"}"

static const struct body_case body_cases[] = {
	GOOD("accepts_minimal_body", EXAMPLE_BODY, EXAMPLE_URL),
	GOOD("stores_scheme_in_lower_case",
	    "{\"callbackUrl\":\"HTTPS://example.com/dlr\"}", EXAMPLE_URL),
	GOOD("accepts_whitespace_around_and_inside",
	    "\r\n\t { \"callbackUrl\" :\n \"" EXAMPLE_URL "\" } \n",
	    EXAMPLE_URL),
	GOOD("accepts_escaped_slashes",
	    "{\"callbackUrl\":\"https:\\/\\/example.com\\/dlr\"}", EXAMPLE_URL),
	GOOD("accepts_unicode_escape_in_host",
	    "{\"callbackUrl\":\"https://b\\u00fccher.example/\"}",
	    "https://bücher.example/"),
	GOOD("accepts_raw_utf8_in_host",
	    "{\"callbackUrl\":\"https://bücher.example/\"}",
	    "https://bücher.example/"),
	GOOD("accepts_query_string",
	    "{\"callbackUrl\":\"https://example.com/cb?a=1&b=%20\"}",
	    "https://example.com/cb?a=1&b=%20"),
	GOOD_PRIV("allow_private_accepts_private_host",
	    "{\"callbackUrl\":\"https://10.0.0.1:8443/dlr\"}",
	    "https://10.0.0.1:8443/dlr"),

	BAD("refuses_empty_body", "",
	    "request body is empty; send {\"callbackUrl\":\"https://...\"}"),
	BAD("refuses_whitespace_body", " \r\n\t ", "request body is empty"),
	BAD("refuses_form_encoding", "callbackUrl=https://example.com/",
	    "request body is not valid JSON"),
	BAD("refuses_bare_word", "hello", "not valid JSON"),
	BAD("refuses_array", "[]",
	    "request body must be a JSON object, not an array"),
	BAD("refuses_object_in_array", "[" EXAMPLE_BODY "]",
	    "must be a JSON object, not an array"),
	BAD("refuses_string", "\"" EXAMPLE_URL "\"",
	    "must be a JSON object, not a string"),
	BAD("refuses_number", "42", "must be a JSON object, not a number"),
	BAD("refuses_negative_decimal", "-1.5e3",
	    "must be a JSON object, not a number"),
	BAD("refuses_null", "null", "must be a JSON object, not null"),
	BAD("refuses_boolean", "true", "must be a JSON object, not a boolean"),
	BAD("refuses_empty_object", "{}", "request body has no callbackUrl"),
	BAD("refuses_number_url", "{\"callbackUrl\":42}",
	    "callbackUrl must be a string, not a number"),
	BAD("refuses_null_url", "{\"callbackUrl\":null}",
	    "callbackUrl must be a string, not null"),
	BAD("refuses_boolean_url", "{\"callbackUrl\":false}",
	    "callbackUrl must be a string, not a boolean"),
	BAD("refuses_object_url", "{\"callbackUrl\":{\"href\":\"x\"}}",
	    "callbackUrl must be a string, not an object"),
	BAD("refuses_array_url", "{\"callbackUrl\":[\"" EXAMPLE_URL "\"]}",
	    "callbackUrl must be a string, not an array"),
	BAD("refuses_extra_field",
	    "{\"callbackUrl\":\"" EXAMPLE_URL "\",\"secret\":\"x\"}",
	    "unknown field \"secret\"; the body takes only callbackUrl"),
	BAD("refuses_field_before_url",
	    "{\"status\":\"ACTIVE\",\"callbackUrl\":\"" EXAMPLE_URL "\"}",
	    "unknown field \"status\""),
	BAD("refuses_wrong_case_field", "{\"callbackURL\":\"" EXAMPLE_URL "\"}",
	    "unknown field \"callbackURL\""),
	BAD("refuses_too_deep_nesting",
	    "{\"callbackUrl\":\"" EXAMPLE_URL "\",\"a\":[[[[[[[[[]]]]]]]]]}",
	    "nests JSON deeper than 8 levels"),
	BAD("refuses_invalid_utf8_in_string",
	    "{\"callbackUrl\":\"https://example.com/\xff\"}",
	    "request body is not valid UTF-8"),
	BAD("refuses_truncated_utf8_in_string",
	    "{\"callbackUrl\":\"https://b\xc3.example/\"}", "not valid UTF-8"),
	BAD("refuses_byte_order_mark", "\xef\xbb\xbf" EXAMPLE_BODY,
	    "byte order mark"),
	BAD("refuses_trailing_garbage", EXAMPLE_BODY "x",
	    "has data after the JSON object"),
	BAD("refuses_trailing_garbage_after_space", EXAMPLE_BODY " \n;",
	    "has data after the JSON object"),
	BAD("refuses_two_objects", EXAMPLE_BODY EXAMPLE_BODY,
	    "has data after the JSON object"),
	BAD_LEN("refuses_trailing_nul_byte", EXAMPLE_BODY "\0",
	    "has data after the JSON object"),
	BAD_LEN("refuses_leading_nul_byte", "\0" EXAMPLE_BODY,
	    "not valid JSON"),
	BAD_LEN("refuses_raw_nul_in_string",
	    "{\"callbackUrl\":\"https://example.com/\0x\"}",
	    "not valid JSON (NUL byte at byte 36)"),
	BAD("refuses_truncated_object", "{\"callbackUrl\":\"" EXAMPLE_URL "\"",
	    "ends before the JSON is complete"),
	BAD("refuses_truncated_string", "{\"callbackUrl\":\"https://ex",
	    "ends before the JSON is complete"),
	BAD("refuses_trailing_comma", "{\"callbackUrl\":\"" EXAMPLE_URL "\",}",
	    "not valid JSON"),
	BAD("refuses_unquoted_key", "{callbackUrl:\"" EXAMPLE_URL "\"}",
	    "not valid JSON"),
	BAD("refuses_comment", EXAMPLE_BODY "/* hi */", "data after"),
	BAD("refuses_escaped_nul_in_url",
	    "{\"callbackUrl\":\"https://example.com/\\u0000evil\"}",
	    "callbackUrl must not contain NUL characters"),
	/* json-c cuts a member name at its NUL: not a second callbackUrl. */
	BAD("refuses_escaped_nul_in_field_name",
	    "{\"callbackUrl\\u0000x\":\"" EXAMPLE_URL "\"}",
	    "a field name contains a NUL character (\\u0000)"),
	BAD("refuses_escaped_nul_field_beside_url",
	    "{\"callbackUrl\":\"" EXAMPLE_URL "\","
	    "\"callbackUrl\\u0000\":\"https://evil.example/\"}",
	    "a field name contains a NUL character"),
	GOOD("escaped_backslash_before_u0000_is_no_nul",
	    "{\"callbackUrl\":\"https://example.com/a\\\\u0000\"}",
	    "https://example.com/a\\u0000"),
	BAD("refuses_empty_url", "{\"callbackUrl\":\"\"}",
	    "callbackUrl is empty"),
	BAD("refuses_http_url", "{\"callbackUrl\":\"http://example.com/\"}",
	    "callbackUrl must use https, not http"),
	BAD("refuses_private_url", "{\"callbackUrl\":\"https://10.0.0.1/\"}",
	    "callbackUrl host 10.0.0.1 is a private (10.0.0.0/8) address"),
	BAD("refuses_escaped_newline_in_url",
	    "{\"callbackUrl\":\"https://example.com/\\r\\nX: y\"}",
	    "control characters"),
};

#define NCASES	(sizeof(body_cases) / sizeof(body_cases[0]))

static void
parses_body(void **state)
{
	const struct body_case	*c = *state;
	char			*url = (char *)"unset", *detail = (char *)"unset";
	size_t			 len;
	int			 rc;

	len = c->len != 0 ? c->len : strlen(c->body);
	rc = body_parse_callback(c->body, len, c->allow_private, &url,
	    &detail);
	if (c->ok) {
		if (rc != 0)
			fail_msg("refused: %s", detail);
		assert_null(detail);
		assert_non_null(url);
		assert_string_equal(url, c->want);
		free(url);
		return;
	}
	assert_int_equal(rc, -1);
	assert_null(url);
	assert_non_null(detail);
	if (strstr(detail, c->want) == NULL)
		fail_msg("detail \"%s\" lacks \"%s\"", detail, c->want);
	free(detail);
}

static void
refuses_null_body(void **state)
{
	char	*url, *detail;

	(void)state;
	assert_int_equal(body_parse_callback(NULL, 0, false, &url, &detail),
	    -1);
	assert_null(url);
	assert_non_null(strstr(detail, "request body is empty"));
	free(detail);
}

/* A body of n bytes holding {"callbackUrl":"https://example.com/aaa..."}. */
static char *
body_with_url_of(size_t urllen)
{
	static const char	 head[] = "{\"callbackUrl\":\"https://example.com/";
	static const size_t	 prefix = sizeof("https://example.com/") - 1;
	size_t			 n;
	char			*s;

	n = sizeof(head) - 1 + (urllen - prefix) + 2;
	s = malloc(n + 1);
	assert_non_null(s);
	memcpy(s, head, sizeof(head) - 1);
	memset(s + sizeof(head) - 1, 'a', urllen - prefix);
	memcpy(s + n - 2, "\"}", 3);
	return s;
}

static void
accepts_url_of_2048_bytes(void **state)
{
	char	*body, *url, *detail;

	(void)state;
	body = body_with_url_of(URL_MAX_LEN);
	assert_int_equal(body_parse_callback(body, strlen(body), false, &url,
	    &detail), 0);
	assert_int_equal(strlen(url), URL_MAX_LEN);
	free(url);
	free(body);
}

static void
refuses_very_long_url(void **state)
{
	char	*body, *url, *detail;

	(void)state;
	body = body_with_url_of(60000);
	assert_int_equal(body_parse_callback(body, strlen(body), false, &url,
	    &detail), -1);
	assert_non_null(strstr(detail, "longer than 2048 bytes"));
	free(detail);
	free(body);
}

/* A long unknown field is quoted short, cut on a UTF-8 boundary. */
static void
quotes_long_unknown_field_briefly(void **state)
{
	char	 body[256], key[128], *url, *detail;

	(void)state;
	memset(key, 'k', 63);
	memcpy(key + 63, "\xc3\xa9", 2);	/* é straddles byte 64 */
	memset(key + 65, 'k', 35);
	key[100] = '\0';
	snprintf(body, sizeof(body), "{\"%s\":1}", key);
	assert_int_equal(body_parse_callback(body, strlen(body), false, &url,
	    &detail), -1);
	key[63] = '\0';
	assert_non_null(strstr(detail, key));
	assert_non_null(strstr(detail, "kkk...\""));
	assert_null(strstr(detail, "\xc3"));
	free(detail);
}

int
main(void)
{
	struct CMUnitTest	 tests[NCASES + 4];
	size_t			 i;

	for (i = 0; i < NCASES; i++) {
		tests[i] = (struct CMUnitTest)cmocka_unit_test_prestate(
		    parses_body, (void *)&body_cases[i]);
		tests[i].name = body_cases[i].name;
	}
	tests[i++] = (struct CMUnitTest)cmocka_unit_test(refuses_null_body);
	tests[i++] = (struct CMUnitTest)cmocka_unit_test(
	    accepts_url_of_2048_bytes);
	tests[i++] = (struct CMUnitTest)cmocka_unit_test(refuses_very_long_url);
	tests[i++] = (struct CMUnitTest)cmocka_unit_test(
	    quotes_long_unknown_field_briefly);
	return cmocka_run_group_tests_name("body", tests, NULL, NULL);
}
