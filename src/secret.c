/* secret.c: signing secrets and API key hashes. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "secret.h"
#include "util.h"

char *
secret_new(void)
{
	unsigned char	 raw[SECRET_RAW_LEN];
	/* base64 of 32 bytes is 44 characters, plus the NUL. */
	char		 b64[4 * ((SECRET_RAW_LEN + 2) / 3) + 1];

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return NULL;
	EVP_EncodeBlock((unsigned char *)b64, raw, sizeof(raw));
	OPENSSL_cleanse(raw, sizeof(raw));
	return xasprintf("%s%s", SECRET_PREFIX, b64);
}

/*
 * SHA-256, fetched from the provider once per process: EVP_sha256() makes
 * EVP_Digest look it up again at every call, two thirds of the cost of
 * hashing a key. Kept for the life of the process.
 */
static const EVP_MD *
secret_sha256(void)
{
	static EVP_MD	*md;

	if (md == NULL && (md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		return EVP_sha256();
	return md;
}

void
secret_key_hash(const char *key, uint8_t out[KEY_HASH_LEN])
{
	unsigned int	 n = KEY_HASH_LEN;

	if (EVP_Digest(key, strlen(key), out, &n, secret_sha256(), NULL) != 1 ||
	    n != KEY_HASH_LEN)
		abort();	/* SHA-256 cannot fail short of a broken libcrypto */
}
