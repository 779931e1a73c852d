/* body.c: parses and checks the JSON body of POST and PUT requests. */
#include "config.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "body.h"
#include "url.h"
#include "util.h"

#define BODY_SEND	"send {\"callbackUrl\":\"https://...\"}"
/* Longest field name quoted back in a detail, in bytes. */
#define BODY_KEY_MAX	64

static bool
body_is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool
body_all_ws(const char *p, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (!body_is_ws(p[i]))
			return false;
	return true;
}

/* The offset of the first byte that is not well-formed UTF-8, or n. */
static size_t
body_utf8_check(const unsigned char *s, size_t n)
{
	size_t	 i = 0;
	int	 k;

	while (i < n) {
		if ((k = utf8_seq_len(s + i, n - i)) <= 0)
			return i;
		i += (size_t)k;
	}
	return n;
}

/* "a number", "null": how a detail names the JSON type that was sent. */
static const char *
body_type_name(struct json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return "a boolean";
	case json_type_double:
	case json_type_int:
		return "a number";
	case json_type_object:
		return "an object";
	case json_type_array:
		return "an array";
	case json_type_string:
		return "a string";
	}
	return "an unknown type";
}

/*
 * Copies a field name for quoting in a detail, cut to BODY_KEY_MAX bytes
 * on a UTF-8 character boundary so that the detail stays valid UTF-8.
 */
static void
body_key_excerpt(const char *key, char out[BODY_KEY_MAX + 4])
{
	size_t	 n;

	n = strlen(key);
	if (n <= BODY_KEY_MAX) {
		memcpy(out, key, n + 1);
		return;
	}
	n = BODY_KEY_MAX;
	while (n > 0 && ((unsigned char)key[n] & 0xc0) == 0x80)
		n--;
	memcpy(out, key, n);
	memcpy(out + n, "...", 4);
}

/*
 * The detail for a body that json-c could not parse; off is where it
 * stopped. json-c takes a NUL byte for the end of the input.
 */
static char *
body_parse_detail(enum json_tokener_error jerr, size_t off, const char *body,
    size_t len)
{
	const char	*nul;

	switch (jerr) {
	case json_tokener_error_depth:
		return xasprintf("request body nests JSON deeper than %d "
		    "levels; " BODY_SEND, BODY_MAX_DEPTH);
	case json_tokener_error_parse_utf8_string:
		return xasprintf("request body is not valid UTF-8 (at byte "
		    "%zu); encode it as UTF-8", off);
	case json_tokener_error_parse_eof:
		if ((nul = memchr(body, '\0', len)) != NULL)
			return xasprintf("request body is not valid JSON (NUL "
			    "byte at byte %zu); " BODY_SEND,
			    (size_t)(nul - body));
		return xstrdup("request body ends before the JSON is "
		    "complete; " BODY_SEND);
	default:
		return xasprintf("request body is not valid JSON (%s at byte "
		    "%zu); " BODY_SEND, json_tokener_error_desc(jerr), off);
	}
}

/*
 * Whether the JSON text has a \u0000 escape. json-c cuts a member name
 * at the NUL it decodes, so "callbackUrl\u0000x" would pass for
 * callbackUrl. In valid JSON a backslash is only ever an escape inside a
 * string, so a scan that steps over each escaped character is exact.
 */
static bool
body_has_nul_escape(const char *body, size_t len)
{
	size_t	 i;

	for (i = 0; i + 1 < len; i++) {
		if (body[i] != '\\')
			continue;
		if (body[i + 1] == 'u' && len - i >= 6 &&
		    memcmp(body + i + 2, "0000", 4) == 0)
			return true;
		i++;		/* the escaped character */
	}
	return false;
}

int
body_parse_callback(const char *body, size_t len, bool allow_private,
    char **url, char **detail)
{
	char			 key[BODY_KEY_MAX + 4];
	struct json_tokener	*tok = NULL;
	struct json_object	*obj = NULL, *val;
	enum json_tokener_error	 jerr;
	const char		*s;
	size_t			 end;
	int			 slen, ret = -1;

	*url = NULL;
	*detail = NULL;
	if (body == NULL || body_all_ws(body, len)) {
		*detail = xstrdup("request body is empty; " BODY_SEND);
		goto out;
	}
	if (len >= 3 && memcmp(body, "\xef\xbb\xbf", 3) == 0) {
		*detail = xstrdup("request body starts with a byte order mark; "
		    "send UTF-8 JSON without one");
		goto out;
	}
	if ((end = body_utf8_check((const unsigned char *)body, len)) < len) {
		*detail = xasprintf("request body is not valid UTF-8 (at byte "
		    "%zu); encode it as UTF-8", end);
		goto out;
	}
	if (len > INT_MAX) {
		*detail = xstrdup("request body is too large");
		goto out;
	}

	if ((tok = json_tokener_new_ex(BODY_MAX_DEPTH)) == NULL)
		abort();
	/* Trailing data is allowed here only to be refused below by name. */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
	    JSON_TOKENER_ALLOW_TRAILING_CHARS | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, body, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	/*
	 * json-c cannot know that a top-level number or literal has ended
	 * until it sees the end of input; a NUL byte tells it so.
	 */
	if (jerr == json_tokener_continue && end == len) {
		obj = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
	}
	if (jerr != json_tokener_success) {
		*detail = body_parse_detail(jerr, end, body, len);
		goto out;
	}
	if (!json_object_is_type(obj, json_type_object)) {
		*detail = xasprintf("request body must be a JSON object, not "
		    "%s; " BODY_SEND, body_type_name(obj));
		goto out;
	}
	if (end < len && !body_all_ws(body + end, len - end)) {
		*detail = xasprintf("request body has data after the JSON "
		    "object (at byte %zu); send exactly one object", end);
		goto out;
	}

	json_object_object_foreach(obj, name, member) {
		(void)member;
		if (strcmp(name, "callbackUrl") != 0) {
			body_key_excerpt(name, key);
			*detail = xasprintf("unknown field \"%s\"; the body "
			    "takes only callbackUrl", key);
			goto out;
		}
	}
	if (!json_object_object_get_ex(obj, "callbackUrl", &val)) {
		*detail = xstrdup("request body has no callbackUrl; "
		    BODY_SEND);
		goto out;
	}
	if (!json_object_is_type(val, json_type_string)) {
		*detail = xasprintf("callbackUrl must be a string, not %s; "
		    BODY_SEND, body_type_name(val));
		goto out;
	}
	s = json_object_get_string(val);
	slen = json_object_get_string_len(val);
	if (memchr(s, '\0', (size_t)slen) != NULL) {
		*detail = xstrdup("callbackUrl must not contain NUL "
		    "characters (\\u0000)");
		goto out;
	}
	if (body_has_nul_escape(body, len)) {
		*detail = xstrdup("a field name contains a NUL character "
		    "(\\u0000); the body takes only callbackUrl");
		goto out;
	}
	if (url_check_callback(s, (size_t)slen, allow_private,
	    detail) != 0)
		goto out;
	*url = xstrndup(s, (size_t)slen);
	/* The scheme in lower case, as stored URLs have it ("HTTPS://"). */
	memcpy(*url, "https", 5);
	ret = 0;
out:
	json_object_put(obj);
	if (tok != NULL)
		json_tokener_free(tok);
	return ret;
}
