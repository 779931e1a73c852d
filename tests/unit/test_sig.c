/* test_sig.c: signatures match Standard Webhooks, rotations sign twice;
 * API key hashes and new secrets. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "secret.h"
#include "sig.h"

/* The published Standard Webhooks / Svix reference vector. */
#define REF_SECRET	"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define REF_ID		"msg_p5jXN8AQM9LWM0D4loKWxJek"
#define REF_TS		1614265330LL
#define REF_BODY	"{\"test\": 2432232314}"
#define REF_SIG		"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

/* Bytes 1..24 as a secret, signed by Python's hmac over the same input. */
#define OLD_SECRET	"whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcY"
#define OLD_SIG		"v1,MgneuxIdyx2BA5iLTwGJaPuHo+BBfrNLG+Yvp7hhc38="

static char *
sign(const char *secret, const char *prev, long long ts, const char *body)
{
	return sig_header(secret, prev, REF_ID, ts, body, strlen(body));
}

static void
reference_vector_reproduces_exactly(void **state)
{
	char	*s = sign(REF_SECRET, NULL, REF_TS, REF_BODY);

	(void)state;
	assert_non_null(s);
	assert_string_equal(s, REF_SIG);
	free(s);
}

static void
secret_without_prefix_signs_the_same(void **state)
{
	char	*s = sign(REF_SECRET + strlen("whsec_"), NULL, REF_TS,
	    REF_BODY);

	(void)state;
	assert_non_null(s);
	assert_string_equal(s, REF_SIG);
	free(s);
}

static void
rotation_sends_new_then_old_signature(void **state)
{
	char	*s = sign(REF_SECRET, OLD_SECRET, REF_TS, REF_BODY);

	(void)state;
	assert_non_null(s);
	assert_string_equal(s, REF_SIG " " OLD_SIG);
	free(s);
}

static void
damaged_old_secret_still_signs_with_new(void **state)
{
	char	*s = sign(REF_SECRET, "whsec_***", REF_TS, REF_BODY);

	(void)state;
	assert_non_null(s);
	assert_string_equal(s, REF_SIG);
	free(s);
}

static void
timestamp_and_body_change_the_signature(void **state)
{
	char	*a = sign(REF_SECRET, NULL, REF_TS + 1, REF_BODY);
	char	*b = sign(REF_SECRET, NULL, REF_TS, "{\"test\": 2432232315}");

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	assert_string_not_equal(a, REF_SIG);
	assert_string_not_equal(b, REF_SIG);
	assert_string_not_equal(a, b);
	free(a);
	free(b);
}

static void
malformed_secrets_are_refused(void **state)
{
	static const char *const bad[] = {
		"", "whsec_", "whsec_abc", "whsec_ab=c", "whsec_a===",
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!", "whsec_ MfKQ",
		"whsec_====",
	};
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char	*s = sign(bad[i], NULL, REF_TS, REF_BODY);

		if (s != NULL)
			fail_msg("secret \"%s\" was accepted", bad[i]);
	}
}

static void
key_length_ignores_padding(void **state)
{
	unsigned char	 key[SIG_KEY_MAX];

	(void)state;
	assert_int_equal(sig_key("whsec_AAAA", key), 3);
	assert_int_equal(sig_key("whsec_AAA=", key), 2);
	assert_int_equal(sig_key("whsec_AA==", key), 1);
	assert_int_equal(sig_key(OLD_SECRET, key), 24);
	assert_int_equal(key[0], 1);
	assert_int_equal(key[23], 24);
	assert_int_equal(sig_key(REF_SECRET, key), 24);
}

/* The key hash is SHA-256, as create_api_key's in SQL (FIPS 180-2's
 * vectors), the same at every call; new secrets differ and look right. */
static void
key_hashes_are_sha256_and_secrets_are_fresh(void **state)
{
	static const uint8_t	 abc[KEY_HASH_LEN] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41,
		0x40, 0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3,
		0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00,
		0x15, 0xad };
	static const uint8_t	 empty[KEY_HASH_LEN] = {
		0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb,
		0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4,
		0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52,
		0xb8, 0x55 };
	uint8_t			 h[KEY_HASH_LEN];
	char			*a, *b;
	int			 i;

	(void)state;
	for (i = 0; i < 3; i++) {
		secret_key_hash("abc", h);
		assert_memory_equal(h, abc, KEY_HASH_LEN);
		secret_key_hash("", h);
		assert_memory_equal(h, empty, KEY_HASH_LEN);
	}
	a = secret_new();
	b = secret_new();
	assert_non_null(a);
	assert_non_null(b);
	assert_string_not_equal(a, b);
	assert_int_equal(strncmp(a, SECRET_PREFIX, strlen(SECRET_PREFIX)), 0);
	free(a);
	free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reference_vector_reproduces_exactly),
		cmocka_unit_test(secret_without_prefix_signs_the_same),
		cmocka_unit_test(rotation_sends_new_then_old_signature),
		cmocka_unit_test(damaged_old_secret_still_signs_with_new),
		cmocka_unit_test(timestamp_and_body_change_the_signature),
		cmocka_unit_test(malformed_secrets_are_refused),
		cmocka_unit_test(key_length_ignores_padding),
		cmocka_unit_test(key_hashes_are_sha256_and_secrets_are_fresh),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
