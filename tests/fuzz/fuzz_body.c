/* fuzz_body.c: the JSON body parser of POST and PUT (body_parse_callback). */
#include "config.h"

#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "body.h"
#include "fuzz.h"
#include "url.h"

/*
 * The input is the body, bytes as sent. Exactly one of url and detail
 * comes back; a detail is quoted in a problem+json answer, so it must be
 * valid UTF-8; an accepted body is exactly one object whose only member
 * is the callbackUrl returned, a URL url_check_callback accepts.
 */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_utf8_locale();
	return 0;
}

static void
check_accepted(const uint8_t *data, size_t size, const char *url,
    bool allow_private)
{
	struct json_tokener	*tok;
	json_object		*o, *v;
	char			*detail;
	size_t			 end;

	/* It is shown back in JSON and stored in PostgreSQL. */
	FUZZ_CHECK(fuzz_storable_url(url));
	FUZZ_CHECK(url_check_callback(url, strlen(url), allow_private,
	    &detail) == 0);
	if ((tok = json_tokener_new()) == NULL)
		abort();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
	    JSON_TOKENER_ALLOW_TRAILING_CHARS | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, (const char *)data, (int)size);
	FUZZ_CHECK(o != NULL &&
	    json_tokener_get_error(tok) == json_tokener_success);
	end = json_tokener_get_parse_end(tok);
	for (; end < size; end++)
		FUZZ_CHECK(strchr(" \t\r\n", data[end]) != NULL && data[end]);
	FUZZ_CHECK(json_object_is_type(o, json_type_object));
	FUZZ_CHECK(json_object_object_length(o) == 1);
	FUZZ_CHECK(json_object_object_get_ex(o, "callbackUrl", &v));
	FUZZ_CHECK(json_object_is_type(v, json_type_string));
	/* The URL as sent, but for its scheme, which is kept in lower case. */
	FUZZ_CHECK((size_t)json_object_get_string_len(v) == strlen(url));
	FUZZ_CHECK(strncmp(url, "https", 5) == 0);
	FUZZ_CHECK(strncasecmp(json_object_get_string(v), url, 5) == 0);
	FUZZ_CHECK(strcmp(json_object_get_string(v) + 5, url + 5) == 0);
	json_object_put(o);
	json_tokener_free(tok);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*body = (const char *)data;
	char		*url, *detail, *url2, *detail2;
	int		 rc, rc2;

	rc = body_parse_callback(body, size, false, &url, &detail);
	FUZZ_CHECK(rc == 0 || rc == -1);
	FUZZ_CHECK((rc == 0) == (url != NULL));
	FUZZ_CHECK((rc == 0) == (detail == NULL));
	if (rc == 0)
		check_accepted(data, size, url, false);
	else
		FUZZ_CHECK(detail[0] != '\0' &&
		    fuzz_utf8_valid(detail, strlen(detail)));

	/* allow_private only lifts refusals. */
	rc2 = body_parse_callback(body, size, true, &url2, &detail2);
	FUZZ_CHECK((rc2 == 0) == (url2 != NULL));
	FUZZ_CHECK((rc2 == 0) == (detail2 == NULL));
	if (rc == 0)
		FUZZ_CHECK(rc2 == 0 && strcmp(url, url2) == 0);
	if (rc2 == 0)
		check_accepted(data, size, url2, true);
	else
		FUZZ_CHECK(detail2[0] != '\0' &&
		    fuzz_utf8_valid(detail2, strlen(detail2)));

	free(url);
	free(detail);
	free(url2);
	free(detail2);
	return 0;
}
