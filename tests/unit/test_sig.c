/* test_sig.c: signatures match Standard Webhooks, rotations sign twice. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
