/* sig.c: Standard Webhooks signatures (HMAC-SHA256 of "id.timestamp.body"). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "secret.h"
#include "sig.h"
#include "util.h"

/* base64 of a 32-byte SHA-256 MAC: 44 characters and the NUL. */
#define SIG_B64_LEN	(4 * ((32 + 2) / 3) + 1)

int
sig_key(const char *secret, unsigned char *key)
{
	size_t		 len, pad;
	int		 n;
	unsigned char	 tmp[SIG_KEY_MAX + 3];

	if (strncmp(secret, SECRET_PREFIX, strlen(SECRET_PREFIX)) == 0)
		secret += strlen(SECRET_PREFIX);
	len = strlen(secret);
	/* EVP_DecodeBlock takes whole quanta only and skips blanks at the
	 * ends; a secret is exactly a padded base64 string, nothing else. */
	if (len == 0 || len % 4 != 0 || len / 4 * 3 > sizeof(tmp) ||
	    strspn(secret, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/=") != len)
		return -1;
	pad = 0;
	if (secret[len - 1] == '=')
		pad++;
	if (secret[len - 2] == '=')
		pad++;
	if (strcspn(secret, "=") != len - pad)
		return -1;	/* '=' only as trailing padding */
	n = EVP_DecodeBlock(tmp, (const unsigned char *)secret, (int)len);
	if (n < 0 || (size_t)n < pad || (size_t)n - pad == 0 ||
	    (size_t)n - pad > SIG_KEY_MAX) {
		OPENSSL_cleanse(tmp, sizeof(tmp));
		return -1;
	}
	n -= (int)pad;	/* DecodeBlock counts the padding as zero bytes */
	memcpy(key, tmp, (size_t)n);
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return n;
}

/* Writes "v1,<base64 MAC>" for one secret into out (SIG_B64_LEN + 3). */
static int
sig_one(const char *secret, const char *id, long long timestamp,
    const char *body, size_t bodylen, char *out)
{
	unsigned char	 key[SIG_KEY_MAX], mac[EVP_MAX_MD_SIZE];
	unsigned int	 maclen = 0;
	struct buf	 msg;
	int		 keylen, rc = -1;

	if ((keylen = sig_key(secret, key)) < 0)
		return -1;
	buf_init(&msg);
	buf_printf(&msg, "%s.%lld.", id, timestamp);
	buf_append(&msg, body, bodylen);
	if (HMAC(EVP_sha256(), key, keylen, (unsigned char *)msg.data, msg.len,
	    mac, &maclen) != NULL && maclen == 32) {
		memcpy(out, "v1,", 3);
		EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)maclen);
		rc = 0;
	}
	OPENSSL_cleanse(key, sizeof(key));
	buf_free(&msg);
	return rc;
}

char *
sig_header(const char *secret, const char *prev, const char *id,
    long long timestamp, const char *body, size_t bodylen)
{
	char	 cur[SIG_B64_LEN + 3], old[SIG_B64_LEN + 3];

	if (sig_one(secret, id, timestamp, body, bodylen, cur) == -1)
		return NULL;
	/* A damaged old secret must not stop delivery under the new one. */
	if (prev == NULL ||
	    sig_one(prev, id, timestamp, body, bodylen, old) == -1)
		return xstrdup(cur);
	return xasprintf("%s %s", cur, old);
}
