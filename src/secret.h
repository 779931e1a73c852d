/* secret.h: signing secrets and API key hashes. */
#ifndef DLR_SECRET_H
#define DLR_SECRET_H

#include <stddef.h>
#include <stdint.h>

#define SECRET_PREFIX		"whsec_"
#define SECRET_RAW_LEN		32
#define KEY_HASH_LEN		32	/* SHA-256 */

/* A new "whsec_" + base64(32 random bytes) secret; NULL if the RNG fails. */
char	*secret_new(void);
/* SHA-256 of the API key as sent; keys are stored only as this hash. */
void	 secret_key_hash(const char *key, uint8_t out[KEY_HASH_LEN]);

#endif
