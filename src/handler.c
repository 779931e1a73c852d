/* handler.c: the API's request handlers: request and store in, response out. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "handler.h"
#include "route.h"
#include "secret.h"
#include "util.h"

/* Longer keys are refused without asking the database. */
#define KEY_MAX_LEN	256

/* A webhook response; secret, when given, is added as signingSecret. */
static struct response *
webhook_response(int status, const struct webhook *w, const char *secret)
{
	struct response	*r;
	struct buf	 b;

	buf_init(&b);
	buf_reserve(&b, 256);
	buf_puts(&b, "{");
	buf_json_str(&b, "id", w->id);
	buf_json_str(&b, "callbackUrl", w->callback_url);
	buf_json_str(&b, "status", webhook_status_name(w->status));
	buf_json_str(&b, "createdAt", w->created_at);
	buf_json_str(&b, "updatedAt", w->updated_at);
	if (secret != NULL)
		buf_json_str(&b, "signingSecret", secret);
	buf_puts(&b, "}");
	r = resp_new(status);
	resp_set_json(r, buf_release(&b));
	return r;
}

static struct response *
secret_response(const char *secret)
{
	struct response	*r;
	struct buf	 b;

	buf_init(&b);
	buf_puts(&b, "{");
	buf_json_str(&b, "signingSecret", secret);
	buf_puts(&b, "}");
	r = resp_new(200);
	resp_set_json(r, buf_release(&b));
	return r;
}

/*
 * Checks the body of POST and PUT. The key is checked first even here: a
 * bad body with a bad key must give 401, so when the body is wrong the
 * store is asked only whether the key is good, and the body's error is
 * returned only to a caller who may see it.
 */
static struct response *
body_check(const struct request *req, struct store *st, const uint8_t *hash,
    const struct app_config *cfg, char **url)
{
	struct response	*r;
	enum dlr_err	 e = DLR_OK, auth;
	char		*detail = NULL;

	if (!req_is_json(req->content_type))
		e = DLR_ERR_MEDIA_TYPE;
	else if (req->body_too_large)
		e = DLR_ERR_TOO_LARGE;
	else if (body_parse_callback(req->body != NULL ? req->body : "",
	    req->body_len, cfg->allow_private, url, &detail) == -1)
		e = DLR_ERR_BAD_REQUEST;
	if (e == DLR_OK)
		return NULL;
	if ((auth = st->ops->authenticate(st->ctx, hash)) != DLR_OK)
		r = resp_problem(auth, NULL);
	else
		r = resp_problem(e, detail);
	free(detail);
	return r;
}

static struct response *
webhook_create(const struct request *req, struct store *st,
    const uint8_t *hash, const struct app_config *cfg)
{
	struct webhook	 w = { 0 };
	struct response	*r;
	enum dlr_err	 e;
	char		*url = NULL, *secret = NULL;

	if ((r = body_check(req, st, hash, cfg, &url)) != NULL)
		return r;
	if ((secret = secret_new()) == NULL) {
		r = resp_problem(DLR_ERR_INTERNAL, NULL);
		goto done;
	}
	if ((e = st->ops->webhook_create(st->ctx, hash, url, secret, &w)) != DLR_OK) {
		r = resp_problem(e, NULL);
		goto done;
	}
	r = webhook_response(201, &w, secret);
	r->location = xstrdup(req->uri_path != NULL ? req->uri_path :
	    "/webhooks/delivery-status");
 done:
	webhook_clear(&w);
	free(url);
	free(secret);
	return r;
}

static struct response *
webhook_replace(const struct request *req, struct store *st,
    const uint8_t *hash, const struct app_config *cfg)
{
	struct webhook	 w = { 0 };
	struct response	*r;
	enum dlr_err	 e;
	char		*url = NULL;

	if ((r = body_check(req, st, hash, cfg, &url)) != NULL)
		return r;
	if ((e = st->ops->webhook_replace(st->ctx, hash, url, &w)) != DLR_OK)
		r = resp_problem(e, NULL);
	else
		r = webhook_response(200, &w, NULL);
	webhook_clear(&w);
	free(url);
	return r;
}

static struct response *
webhook_get(struct store *st, const uint8_t *hash)
{
	struct webhook	 w = { 0 };
	struct response	*r;
	enum dlr_err	 e;

	if ((e = st->ops->webhook_get(st->ctx, hash, &w)) != DLR_OK)
		return resp_problem(e, NULL);
	r = webhook_response(200, &w, NULL);
	webhook_clear(&w);
	return r;
}

static struct response *
webhook_delete(struct store *st, const uint8_t *hash)
{
	enum dlr_err	 e;

	if ((e = st->ops->webhook_delete(st->ctx, hash)) != DLR_OK)
		return resp_problem(e, NULL);
	return resp_new(204);
}

static struct response *
secret_get(struct store *st, const uint8_t *hash)
{
	struct response	*r;
	enum dlr_err	 e;
	char		*secret = NULL;

	if ((e = st->ops->secret_get(st->ctx, hash, &secret)) != DLR_OK)
		return resp_problem(e, NULL);
	r = secret_response(secret);
	free(secret);
	return r;
}

static struct response *
secret_rotate(struct store *st, const uint8_t *hash)
{
	struct response	*r;
	enum dlr_err	 e;
	char		*secret;

	if ((secret = secret_new()) == NULL)
		return resp_problem(DLR_ERR_INTERNAL, NULL);
	if ((e = st->ops->secret_rotate(st->ctx, hash, secret)) != DLR_OK)
		r = resp_problem(e, NULL);
	else
		r = secret_response(secret);
	free(secret);
	return r;
}

/*
 * Order of checks: the path (404) and method (405) are about the resource
 * and cost nothing; then the key (401) before anything about the body;
 * then, in body_check, 415, 413 and 400; last the store's 404 and 409.
 */
struct response *
handle_request(const struct request *req, struct store *st,
    const struct app_config *cfg)
{
	struct response	*r;
	enum route	 route;
	uint8_t		 hash[KEY_HASH_LEN];

	route = route_match(req->path);
	if (route == ROUTE_NONE)
		return resp_problem(DLR_ERR_NOT_FOUND, NULL);
	if (!route_allows(route, req->method)) {
		r = resp_problem(DLR_ERR_METHOD, NULL);
		r->allow = xstrdup(route_allow_header(route));
		return r;
	}
	if (req->api_key == NULL || req->api_key[0] == '\0' ||
	    strlen(req->api_key) > KEY_MAX_LEN)
		return resp_problem(DLR_ERR_UNAUTHORIZED, NULL);
	secret_key_hash(req->api_key, hash);

	switch (route) {
	case ROUTE_WEBHOOK:
		switch (req->method) {
		case REQ_GET:
			return webhook_get(st, hash);
		case REQ_POST:
			return webhook_create(req, st, hash, cfg);
		case REQ_PUT:
			return webhook_replace(req, st, hash, cfg);
		case REQ_DELETE:
			return webhook_delete(st, hash);
		default:
			break;
		}
		break;
	case ROUTE_SECRET:
		return secret_get(st, hash);
	case ROUTE_ROTATE:
		return secret_rotate(st, hash);
	default:
		break;
	}
	return resp_problem(DLR_ERR_INTERNAL, NULL);
}
