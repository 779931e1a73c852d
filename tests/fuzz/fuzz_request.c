/* fuzz_request.c: the whole API path, FastCGI parameters to rendered response. */
#include "config.h"

#include <string.h>

#include <json-c/json.h>

#include "fuzz.h"
#include "handler.h"
#include "url.h"
#include "util.h"

/*
 * The input is one request as the web server hands it over:
 *
 *   byte 0    which parameters are present, bit i for params[i] below
 *   byte 1    options (OPT_*)
 *   then      the parameter values, each ended by a NUL byte (FastCGI
 *             parameters reach us as C strings), in the order of params[]
 *   the rest  the body
 *
 * An input that ends early leaves the remaining parameters absent and the
 * body empty. Two accounts exist: KEY_A with a webhook, KEY_B without.
 */
#define KEY_A		"key-a"
#define KEY_B		"key-b"
#define URL_A		"https://example.com/hooks/dlr"

#define OPT_STORE_FAILS	0x01	/* every store operation fails (500) */
#define OPT_PRIVATE	0x02	/* DLRHOOK_ALLOW_PRIVATE=1 */
#define OPT_PAD		0x04	/* 64 KiB of blanks follow the body */
#define OPT_CHUNK_SHIFT	3	/* bits 3-5: most bytes one read returns (0: all) */

static const char *const params[] = {
	"REQUEST_METHOD", "PATH_INFO", "REQUEST_URI", "HTTP_X_API_KEY",
	"CONTENT_TYPE", "CONTENT_LENGTH",
};
#define NPARAMS	(sizeof(params) / sizeof(params[0]))

enum { P_METHOD, P_PATH, P_URI, P_KEY, P_CTYPE, P_CLEN };

/* The request as the fuzzer made it: a req_source over these. */
struct input {
	const char	*value[NPARAMS];	/* NULL when absent */
	const uint8_t	*body;
	size_t		 body_len;
	size_t		 pad;			/* blanks after the body */
	size_t		 off;			/* read position */
	size_t		 chunk;			/* most bytes per read */
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_utf8_locale();
	return 0;
}

static const char *
input_param(void *arg, const char *name)
{
	struct input	*in = arg;
	size_t		 i;

	for (i = 0; i < NPARAMS; i++)
		if (strcmp(name, params[i]) == 0)
			return in->value[i];
	return NULL;
}

static int
input_read(void *arg, char *buf, int n)
{
	struct input	*in = arg;
	size_t		 want = (size_t)n, total = in->body_len + in->pad, i;

	FUZZ_CHECK(n > 0);
	if (want > in->chunk && in->off < in->body_len)
		want = in->chunk;	/* the padding comes in whole reads */
	if (want > total - in->off)
		want = total - in->off;
	for (i = 0; i < want; i++, in->off++)
		buf[i] = in->off < in->body_len ? (char)in->body[in->off] : ' ';
	return (int)want;
}

static bool
known_key(const char *key)
{
	return key != NULL && (strcmp(key, KEY_A) == 0 || strcmp(key, KEY_B) == 0);
}

static bool
status_in_contract(int s)
{
	static const int	 ok[] = {
		200, 201, 204, 400, 401, 404, 405, 409, 413, 415, 500,
	};
	size_t			 i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (s == ok[i])
			return true;
	return false;
}

/* Parses a response body strictly, as a client would. */
static json_object *
json_strict(const char *s, size_t n)
{
	struct json_tokener	*tok;
	json_object		*o;

	FUZZ_CHECK(fuzz_utf8_valid(s, n));
	if ((tok = json_tokener_new()) == NULL)
		abort();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
	    JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, s, (int)n);
	FUZZ_CHECK(o != NULL);
	FUZZ_CHECK(json_tokener_get_error(tok) == json_tokener_success);
	FUZZ_CHECK(json_tokener_get_parse_end(tok) == n);
	json_tokener_free(tok);
	FUZZ_CHECK(json_object_is_type(o, json_type_object));
	return o;
}

static const char *
json_str(json_object *o, const char *key)
{
	json_object	*v;

	FUZZ_CHECK(json_object_object_get_ex(o, key, &v));
	FUZZ_CHECK(json_object_is_type(v, json_type_string));
	return json_object_get_string(v);
}

/* An RFC 9457 body with exactly our four members, agreeing with the status. */
static void
check_problem(const struct response *r)
{
	json_object	*o, *v;

	FUZZ_CHECK(r->content_type != NULL &&
	    strcmp(r->content_type, "application/problem+json") == 0);
	FUZZ_CHECK(r->body != NULL);
	o = json_strict(r->body, r->body_len);
	FUZZ_CHECK(json_object_object_length(o) == 4);
	FUZZ_CHECK(strncmp(json_str(o, "type"), "urn:problem-type:dlrhook:",
	    strlen("urn:problem-type:dlrhook:")) == 0);
	FUZZ_CHECK(strcmp(json_str(o, "title"), err_reason(r->status)) == 0);
	FUZZ_CHECK(json_str(o, "detail")[0] != '\0');
	FUZZ_CHECK(json_object_object_get_ex(o, "status", &v));
	FUZZ_CHECK(json_object_is_type(v, json_type_int));
	FUZZ_CHECK(json_object_get_int(v) == r->status);
	json_object_put(o);
}

/* The CGI header block: CRLF lines only, and a Content-Length that holds. */
static void
check_render(const struct response *r)
{
	char		*out, *end, *p, *cl;
	size_t		 len, head;

	out = resp_render(r, &len);
	end = strstr(out, "\r\n\r\n");
	FUZZ_CHECK(end != NULL);
	head = (size_t)(end - out) + 2;
	for (p = out; p < out + head; p++) {
		if (*p == '\r')
			FUZZ_CHECK(p[1] == '\n');
		if (*p == '\n')
			FUZZ_CHECK(p > out && p[-1] == '\r');
	}
	FUZZ_CHECK(strncmp(out, "Status: ", 8) == 0);
	cl = strstr(out, "\r\nContent-Length: ");
	FUZZ_CHECK(cl != NULL && cl < end);
	FUZZ_CHECK(strtoull(cl + 18, NULL, 10) == len - head - 2);
	free(out);
}

/* The request the adapter built: what it kept of the input, and how. */
static void
check_request(const struct request *req, const struct input *in)
{
	size_t	 total = in->body_len + in->pad;

	if (req->uri_path != NULL) {
		/* One leading slash: "//host" as a Location is another site. */
		FUZZ_CHECK(req->uri_path[0] == '/');
		FUZZ_CHECK(req->uri_path[1] != '/' && req->uri_path[1] != '\\');
		FUZZ_CHECK(strpbrk(req->uri_path, "?#\r\n") == NULL);
	}
	FUZZ_CHECK(req->body_len <= REQ_BODY_MAX);
	if (req->content_length > REQ_BODY_MAX) {
		FUZZ_CHECK(req->body_too_large && req->body == NULL);
		return;
	}
	FUZZ_CHECK(req->body_too_large == (total > REQ_BODY_MAX));
	/* Nothing is kept of a body too large, and nothing is allocated
	 * for an empty one. */
	if (req->body_too_large || total == 0) {
		FUZZ_CHECK(req->body == NULL && req->body_len == 0);
		return;
	}
	FUZZ_CHECK(req->body != NULL && req->body[req->body_len] == '\0');
	FUZZ_CHECK(req->body_len == total);
	FUZZ_CHECK(in->body_len == 0 ||
	    memcmp(req->body, in->body, in->body_len) == 0);
}

/* What GET says now about the key's webhook: its URL, or NULL for 404. */
static char *
current_url(struct store *st, const struct app_config *cfg, const char *key)
{
	struct request	*req;
	struct response	*r;
	json_object	*o;
	char		*url = NULL;

	req = req_new();
	req->method = REQ_GET;
	req->path = xstrdup("/delivery-status");
	req->api_key = xstrdup(key);
	r = handle_request(req, st, cfg);
	FUZZ_CHECK(r->status == 200 || r->status == 404);
	if (r->status == 200) {
		o = json_strict(r->body, r->body_len);
		url = xstrdup(json_str(o, "callbackUrl"));
		json_object_put(o);
	}
	resp_free(r);
	req_free(req);
	return url;
}

static void
check_response(const struct request *req, const struct response *r,
    struct store *st, const struct app_config *cfg, bool store_fails)
{
	const char	*key = req->api_key, *url;
	json_object	*o;
	char		*now, *detail;
	bool		 body_method, json;

	FUZZ_CHECK(status_in_contract(r->status));
	check_render(r);
	/* 500 only when the store failed; a failing store shows nothing else. */
	FUZZ_CHECK(r->status != 500 || store_fails);
	if (store_fails)
		FUZZ_CHECK(r->status == 401 || r->status == 404 ||
		    r->status == 405 || r->status == 500);
	/* Nothing about the body or the webhook reaches an unknown key. */
	if (!known_key(key) && !store_fails)
		FUZZ_CHECK(r->status == 401 || r->status == 404 ||
		    r->status == 405);
	if (known_key(key) && !store_fails)
		FUZZ_CHECK(r->status != 401);
	if (r->status == 405)
		FUZZ_CHECK(r->allow != NULL);
	else
		FUZZ_CHECK(r->allow == NULL);
	/* The body's checks in order: 415, then 413, then 400. */
	body_method = req->method == REQ_POST || req->method == REQ_PUT;
	json = req_is_json(req->content_type);
	if (r->status == 415)
		FUZZ_CHECK(body_method && !json);
	if (r->status == 413)
		FUZZ_CHECK(body_method && json && req->body_too_large);
	if (r->status == 400)
		FUZZ_CHECK(body_method && json && !req->body_too_large);
	if (r->status == 409)
		FUZZ_CHECK(req->method == REQ_POST && strcmp(key, KEY_A) == 0);
	if (r->status >= 400) {
		check_problem(r);
		FUZZ_CHECK(r->location == NULL);
		return;
	}

	if (r->status == 204) {
		FUZZ_CHECK(req->method == REQ_DELETE);
		FUZZ_CHECK(r->body == NULL && r->content_type == NULL);
		FUZZ_CHECK(current_url(st, cfg, key) == NULL);
		return;
	}
	FUZZ_CHECK(r->content_type != NULL &&
	    strcmp(r->content_type, "application/json") == 0);
	o = json_strict(r->body, r->body_len);
	if (r->status == 201) {
		FUZZ_CHECK(req->method == REQ_POST && r->location != NULL);
		FUZZ_CHECK(r->location[0] == '/' && r->location[1] != '/' &&
		    r->location[1] != '\\');
		FUZZ_CHECK(strpbrk(r->location, "\r\n") == NULL);
		FUZZ_CHECK(strncmp(json_str(o, "signingSecret"), "whsec_", 6) == 0);
	} else
		FUZZ_CHECK(r->location == NULL);
	if (body_method && json_object_object_get_ex(o, "callbackUrl", NULL)) {
		/* What was stored is what GET shows, and a URL we accept. */
		url = json_str(o, "callbackUrl");
		FUZZ_CHECK(fuzz_storable_url(url));
		FUZZ_CHECK(url_check_callback(url, strlen(url),
		    cfg->allow_private, &detail) == 0);
		now = current_url(st, cfg, key);
		FUZZ_CHECK(now != NULL && strcmp(now, url) == 0);
		free(now);
	}
	json_object_put(o);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input		 in = { { NULL }, NULL, 0, 0, 0, 0 };
	struct req_source	 src = { input_param, input_read, &in };
	struct app_config	 cfg = { false };
	struct webhook		 w = { 0 };
	struct store		*st;
	struct request		*req;
	struct response		*r;
	uint8_t			 hash[KEY_HASH_LEN], present = 0, opt = 0;
	const uint8_t		*p = data, *end = data + size, *nul;
	static const size_t	 chunks[8] = {
		1u << 20, 1, 2, 7, 64, 1000, 4096, 8192,
	};
	size_t			 i;

	if (size > 0)
		present = *p++;
	if (size > 1)
		opt = *p++;
	for (i = 0; i < NPARAMS && p < end; i++) {
		nul = memchr(p, '\0', (size_t)(end - p));
		if (nul == NULL)
			break;		/* the last value runs into the end */
		if (present & (1u << i))
			in.value[i] = (const char *)p;
		p = nul + 1;
	}
	if (i == NPARAMS) {
		in.body = p;
		in.body_len = (size_t)(end - p);
	}
	in.pad = opt & OPT_PAD ? REQ_BODY_MAX : 0;
	in.chunk = chunks[(opt >> OPT_CHUNK_SHIFT) & 7];
	cfg.allow_private = (opt & OPT_PRIVATE) != 0;

	st = store_mem_new();
	store_mem_add_key(st, KEY_A, 1);
	store_mem_add_key(st, KEY_B, 2);
	secret_key_hash(KEY_A, hash);
	FUZZ_CHECK(st->ops->webhook_create(st->ctx, hash, URL_A,
	    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &w) == DLR_OK);
	webhook_clear(&w);

	req = req_from_source(&src);
	check_request(req, &in);
	if (opt & OPT_STORE_FAILS)
		store_mem_fail(st, 1);
	r = handle_request(req, st, &cfg);
	FUZZ_CHECK(r != NULL);
	store_mem_fail(st, 0);
	check_response(req, r, st, &cfg, (opt & OPT_STORE_FAILS) != 0);

	resp_free(r);
	req_free(req);
	store_free(st);
	return 0;
}
