/* sig.h: Standard Webhooks signatures (HMAC-SHA256 of "id.timestamp.body"). */
#ifndef DLR_SIG_H
#define DLR_SIG_H

#include <stddef.h>

/* The longest decoded signing key accepted; "whsec_" secrets hold 24-64. */
#define SIG_KEY_MAX	128

/*
 * Signs one attempt with the "whsec_" secret (the prefix may be omitted,
 * as the reference libraries allow) and returns the webhook-signature
 * header value, "v1,<base64>". When prev is not NULL (a rotation is in
 * progress) the old secret's signature follows, space-separated:
 * "v1,<new> v1,<old>" (an unusable old secret is left out). Returns NULL
 * when secret is not valid base64 or decodes to nothing; the caller frees
 * the result.
 */
char	*sig_header(const char *secret, const char *prev, const char *id,
	    long long timestamp, const char *body, size_t bodylen);

/* Decodes the key part of a secret into key (SIG_KEY_MAX bytes); returns
 * its length, or -1 when the secret is malformed. */
int	 sig_key(const char *secret, unsigned char *key);

#endif
