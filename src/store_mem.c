/* store_mem.c: an in-memory store for unit tests and fuzzing. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "store.h"
#include "util.h"

struct mem_key {
	uint8_t		 hash[KEY_HASH_LEN];
	long long	 account;
};

struct mem_hook {
	long long	 account;
	struct webhook	 w;
	char		*secret;
	char		*previous_secret;
};

struct mem {
	struct mem_key	*keys;
	size_t		 nkeys;
	struct mem_hook	*hooks;
	size_t		 nhooks;
	unsigned	 next_id;
	int		 fail;
};

static char *
mem_now(void)
{
	struct timeval	 tv;
	struct tm	 tm;
	char		 s[32];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
	return xasprintf("%s.%03ldZ", s, (long)(tv.tv_usec / 1000));
}

/* The account of a key hash, or -1. */
static long long
mem_account(struct mem *m, const uint8_t *hash)
{
	size_t	 i;

	for (i = 0; i < m->nkeys; i++)
		if (memcmp(m->keys[i].hash, hash, KEY_HASH_LEN) == 0)
			return m->keys[i].account;
	return -1;
}

static struct mem_hook *
mem_hook(struct mem *m, long long account)
{
	size_t	 i;

	for (i = 0; i < m->nhooks; i++)
		if (m->hooks[i].account == account)
			return &m->hooks[i];
	return NULL;
}

static void
mem_copy(struct webhook *dst, const struct webhook *src)
{
	dst->id = xstrdup(src->id);
	dst->callback_url = xstrdup(src->callback_url);
	dst->status = src->status;
	dst->created_at = xstrdup(src->created_at);
	dst->updated_at = xstrdup(src->updated_at);
}

/* Authenticates and finds the webhook; the common head of every operation. */
static enum dlr_err
mem_lookup(struct mem *m, const uint8_t *hash, struct mem_hook **h)
{
	long long	 account;

	if (m->fail)
		return DLR_ERR_INTERNAL;
	if ((account = mem_account(m, hash)) < 0)
		return DLR_ERR_UNAUTHORIZED;
	*h = mem_hook(m, account);
	return DLR_OK;
}

static enum dlr_err
mem_authenticate(void *ctx, const uint8_t *hash)
{
	struct mem_hook	*h;

	return mem_lookup(ctx, hash, &h);
}

static enum dlr_err
mem_get(void *ctx, const uint8_t *hash, struct webhook *out)
{
	struct mem_hook	*h;
	enum dlr_err	 e;

	if ((e = mem_lookup(ctx, hash, &h)) != DLR_OK)
		return e;
	if (h == NULL)
		return DLR_ERR_NO_WEBHOOK;
	mem_copy(out, &h->w);
	return DLR_OK;
}

static enum dlr_err
mem_create(void *ctx, const uint8_t *hash, const char *url, const char *secret,
    struct webhook *out)
{
	struct mem	*m = ctx;
	struct mem_hook	*h;
	enum dlr_err	 e;

	if ((e = mem_lookup(m, hash, &h)) != DLR_OK)
		return e;
	if (h != NULL)
		return DLR_ERR_CONFLICT;
	m->hooks = xrealloc(m->hooks, (m->nhooks + 1) * sizeof(*m->hooks));
	h = &m->hooks[m->nhooks++];
	memset(h, 0, sizeof(*h));
	h->account = mem_account(m, hash);
	h->w.id = xasprintf("wh_%08x", ++m->next_id);
	h->w.callback_url = xstrdup(url);
	h->w.status = WEBHOOK_ACTIVE;
	h->w.created_at = mem_now();
	h->w.updated_at = xstrdup(h->w.created_at);
	h->secret = xstrdup(secret);
	mem_copy(out, &h->w);
	return DLR_OK;
}

static enum dlr_err
mem_replace(void *ctx, const uint8_t *hash, const char *url,
    struct webhook *out)
{
	struct mem_hook	*h;
	enum dlr_err	 e;

	if ((e = mem_lookup(ctx, hash, &h)) != DLR_OK)
		return e;
	if (h == NULL)
		return DLR_ERR_NO_WEBHOOK;
	free(h->w.callback_url);
	h->w.callback_url = xstrdup(url);
	free(h->w.updated_at);
	h->w.updated_at = mem_now();
	h->w.status = WEBHOOK_ACTIVE;
	mem_copy(out, &h->w);
	return DLR_OK;
}

static void
mem_hook_clear(struct mem_hook *h)
{
	webhook_clear(&h->w);
	free(h->secret);
	free(h->previous_secret);
}

static enum dlr_err
mem_delete(void *ctx, const uint8_t *hash)
{
	struct mem	*m = ctx;
	struct mem_hook	*h;
	enum dlr_err	 e;

	if ((e = mem_lookup(m, hash, &h)) != DLR_OK)
		return e;
	if (h == NULL)
		return DLR_ERR_NO_WEBHOOK;
	mem_hook_clear(h);
	*h = m->hooks[--m->nhooks];
	return DLR_OK;
}

static enum dlr_err
mem_secret_get(void *ctx, const uint8_t *hash, char **secret)
{
	struct mem_hook	*h;
	enum dlr_err	 e;

	if ((e = mem_lookup(ctx, hash, &h)) != DLR_OK)
		return e;
	if (h == NULL)
		return DLR_ERR_NO_WEBHOOK;
	*secret = xstrdup(h->secret);
	return DLR_OK;
}

static enum dlr_err
mem_secret_rotate(void *ctx, const uint8_t *hash, const char *secret)
{
	struct mem_hook	*h;
	enum dlr_err	 e;

	if ((e = mem_lookup(ctx, hash, &h)) != DLR_OK)
		return e;
	if (h == NULL)
		return DLR_ERR_NO_WEBHOOK;
	free(h->previous_secret);
	h->previous_secret = h->secret;
	h->secret = xstrdup(secret);
	return DLR_OK;
}

static void
mem_free(void *ctx)
{
	struct mem	*m = ctx;
	size_t		 i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nhooks; i++)
		mem_hook_clear(&m->hooks[i]);
	free(m->hooks);
	free(m->keys);
	free(m);
}

static const struct store_ops mem_ops = {
	.authenticate = mem_authenticate,
	.webhook_get = mem_get,
	.webhook_create = mem_create,
	.webhook_replace = mem_replace,
	.webhook_delete = mem_delete,
	.secret_get = mem_secret_get,
	.secret_rotate = mem_secret_rotate,
	.free = mem_free,
};

struct store *
store_mem_new(void)
{
	struct store	*s;

	s = xcalloc(1, sizeof(*s));
	s->ops = &mem_ops;
	s->ctx = xcalloc(1, sizeof(struct mem));
	return s;
}

void
store_mem_add_key(struct store *s, const char *key, long long account)
{
	struct mem	*m = s->ctx;

	m->keys = xrealloc(m->keys, (m->nkeys + 1) * sizeof(*m->keys));
	secret_key_hash(key, m->keys[m->nkeys].hash);
	m->keys[m->nkeys].account = account;
	m->nkeys++;
}

void
store_mem_fail(struct store *s, int fail)
{
	((struct mem *)s->ctx)->fail = fail;
}
