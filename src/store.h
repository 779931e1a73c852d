/* store.h: the API's storage, behind an ops struct (PostgreSQL or memory). */
#ifndef DLR_STORE_H
#define DLR_STORE_H

#include <stdint.h>

#include "err.h"
#include "secret.h"

enum webhook_status {
	WEBHOOK_ACTIVE,
	WEBHOOK_DISABLED,
	WEBHOOK__MAX
};

/* A webhook as the API shows it. Strings are owned; see webhook_clear. */
struct webhook {
	char			*id;		/* "wh_..." */
	char			*callback_url;
	enum webhook_status	 status;
	char			*created_at;	/* RFC 3339 UTC, milliseconds */
	char			*updated_at;
};

void		 webhook_clear(struct webhook *);
const char	*webhook_status_name(enum webhook_status);

/*
 * Every operation authenticates the key hash and acts in one round trip.
 * They return DLR_OK, DLR_ERR_UNAUTHORIZED (unknown or revoked key),
 * DLR_ERR_NO_WEBHOOK, DLR_ERR_CONFLICT (create only) or DLR_ERR_INTERNAL.
 * On DLR_OK the out parameters are filled and owned by the caller.
 */
struct store_ops {
	enum dlr_err	(*authenticate)(void *, const uint8_t *key_hash);
	enum dlr_err	(*webhook_get)(void *, const uint8_t *key_hash,
			    struct webhook *);
	/* Creates the account's webhook with its first signing secret. */
	enum dlr_err	(*webhook_create)(void *, const uint8_t *key_hash,
			    const char *url, const char *secret,
			    struct webhook *);
	/* Replaces the URL (never creates); a DISABLED webhook turns ACTIVE. */
	enum dlr_err	(*webhook_replace)(void *, const uint8_t *key_hash,
			    const char *url, struct webhook *);
	/* Deletes the webhook and cancels its pending notifications. */
	enum dlr_err	(*webhook_delete)(void *, const uint8_t *key_hash);
	enum dlr_err	(*secret_get)(void *, const uint8_t *key_hash,
			    char **secret);
	/* Makes new_secret current; the old one keeps signing for 24 h. */
	enum dlr_err	(*secret_rotate)(void *, const uint8_t *key_hash,
			    const char *new_secret);
	void		(*free)(void *);
};

struct store {
	const struct store_ops	*ops;
	void			*ctx;
};

/* libpq backend; conninfo NULL or "" uses the PG* environment. */
struct store	*store_pg_new(const char *conninfo);
/* In-memory backend for tests: accounts are added with store_mem_add_key. */
struct store	*store_mem_new(void);
void		 store_mem_add_key(struct store *, const char *key,
		    long long account_id);
/* Makes every following operation fail with DLR_ERR_INTERNAL (or not). */
void		 store_mem_fail(struct store *, int fail);
void		 store_free(struct store *);

#endif
