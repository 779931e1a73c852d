/* test_url.c: which callbackUrls are accepted, and what refusals say. */
#include "config.h"

#include <setjmp.h>
#include <locale.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "url.h"

/*
 * One callbackUrl. len 0 means strlen(url). want NULL means accepted;
 * otherwise the malloc'd detail must contain want.
 */
struct url_case {
	const char	*name;
	const char	*url;
	size_t		 len;
	bool		 allow_private;
	const char	*want;
};

#define OK(n, u)		{ n, u, 0, false, NULL }
#define BAD(n, u, w)		{ n, u, 0, false, w }
#define OK_PRIV(n, u)		{ n, u, 0, true, NULL }
#define BAD_PRIV(n, u, w)	{ n, u, 0, true, w }
#define BAD_LEN(n, u, w)	{ n, u, sizeof(u) - 1, false, w }

static const struct url_case url_cases[] = {
	OK("accepts_plain_https", "https://example.com/dlr"),
	BAD("refuses_fullwidth_digits_that_become_loopback",
	    "https://\xef\xbc\x91\xef\xbc\x92\xef\xbc\x97\xef\xbc\x8e\xef\xbc\x90\xef\xbc\x8e\xef\xbc\x90\xef\xbc\x8e\xef\xbc\x91/",
	    "loopback"),
	BAD("refuses_one_slash_after_scheme", "https:/example.com/dlr",
	    "two slashes"),
	BAD("refuses_overlong_utf8", "https://example.com/\xc0\xaf",
	    "not valid UTF-8"),
	BAD("refuses_utf8_surrogate", "https://example.com/\xed\xa0\x80",
	    "not valid UTF-8"),
	BAD("refuses_utf8_past_u10ffff", "https://example.com/\xf4\x90\x80\x80",
	    "not valid UTF-8"),
	BAD("refuses_truncated_utf8", "https://example.com/\xe2\x82",
	    "not valid UTF-8"),
	OK("accepts_uppercase_scheme_and_host", "HTTPS://Example.COM/dlr"),
	OK("accepts_query_string", "https://example.com/cb?token=abc&x=1"),
	OK("accepts_percent_encoding_in_path",
	    "https://example.com/a%20b/%E2%82%AC?q=%2F"),
	OK("accepts_idn_host", "https://bücher.example/dlr"),
	OK("accepts_punycode_host", "https://xn--bcher-kva.example/dlr"),
	OK("accepts_port_1", "https://example.com:1/"),
	OK("accepts_port_443", "https://example.com:443/"),
	OK("accepts_port_65535", "https://example.com:65535/"),
	OK("accepts_empty_port", "https://example.com:/dlr"),
	OK("accepts_public_ipv4", "https://8.8.8.8/dlr"),
	OK("accepts_public_ipv6", "https://[2606:4700::1111]:8443/dlr"),
	OK("accepts_ipv4_mapped_public", "https://[::ffff:8.8.8.8]/"),
	OK("accepts_trailing_dot_name", "https://example.com./dlr"),
	OK("accepts_localhost_as_first_label",
	    "https://localhost.example.com/"),
	OK("accepts_name_ending_in_localhost_without_dot",
	    "https://mylocalhost/"),
	OK("accepts_no_path", "https://example.com"),

	BAD("refuses_empty", "", "callbackUrl is empty"),
	BAD("refuses_missing_scheme", "example.com/dlr",
	    "must be an absolute URL starting with https://"),
	BAD("refuses_scheme_relative", "//example.com/dlr",
	    "must be an absolute URL"),
	BAD("refuses_http", "http://example.com/dlr",
	    "callbackUrl must use https, not http"),
	BAD("refuses_ftp", "ftp://example.com/dlr",
	    "callbackUrl must use https, not ftp"),
	BAD("refuses_unknown_scheme", "gopherx://example.com/",
	    "callbackUrl must use https"),
	BAD("refuses_host_port_without_scheme", "example.com:443/dlr",
	    "callbackUrl must use https"),
	BAD("refuses_scheme_without_slashes", "https:example.com",
	    "must start with https://"),
	BAD("refuses_missing_host", "https://", "must have a host"),
	BAD("refuses_port_without_host", "https://:443/",
	    "must have a host"),
	BAD("refuses_dot_as_host", "https://./", "must have a host"),
	BAD("refuses_user", "https://user@example.com/",
	    "must not contain a user name or password"),
	BAD("refuses_user_and_password", "https://user:pw@example.com/",
	    "must not contain a user name or password"),
	BAD("refuses_password_only", "https://:pw@example.com/",
	    "must not contain a user name or password"),
	BAD("refuses_empty_userinfo", "https://@example.com/",
	    "must not contain a user name or password"),
	BAD("refuses_fragment", "https://example.com/dlr#top",
	    "must not contain a fragment"),
	BAD("refuses_empty_fragment", "https://example.com/dlr#",
	    "must not contain a fragment"),
	BAD("refuses_port_0", "https://example.com:0/",
	    "callbackUrl port 0 is not allowed"),
	BAD("refuses_port_00", "https://example.com:00/",
	    "callbackUrl port 0 is not allowed"),
	BAD("refuses_port_65536", "https://example.com:65536/",
	    "port must be a number from 1 to 65535"),
	BAD("refuses_port_99999", "https://example.com:99999/",
	    "port must be a number from 1 to 65535"),
	BAD("refuses_port_with_sign", "https://example.com:+443/",
	    "port must be a number from 1 to 65535"),
	BAD("refuses_space_in_path", "https://example.com/a b",
	    "must not contain spaces"),
	BAD("refuses_space_in_host", "https://exa mple.com/",
	    "must not contain spaces"),
	BAD("refuses_crlf", "https://example.com/\r\nX-Evil: 1",
	    "must not contain control characters"),
	BAD("refuses_lf", "https://example.com/\n", "control characters"),
	BAD("refuses_tab", "https://example.com/\tx", "control characters"),
	BAD("refuses_del", "https://example.com/\x7f", "control characters"),
	BAD_LEN("refuses_nul", "https://example.com/\0evil",
	    "must not contain NUL characters"),
	BAD("refuses_bad_host_character", "https://exa<mple.com/",
	    "host is not a valid host name"),
	BAD("refuses_unclosed_ipv6", "https://[::1/",
	    "not a valid IPv6 address"),
	BAD("refuses_private_ipv4", "https://10.0.0.1/dlr",
	    "callbackUrl host 10.0.0.1 is a private (10.0.0.0/8) address; "
	    "use a public address"),
	BAD("refuses_private_172", "https://172.20.1.1:8443/",
	    "host 172.20.1.1 is a private (172.16.0.0/12) address"),
	BAD("refuses_cgnat", "https://100.100.1.1/",
	    "carrier-grade NAT (100.64.0.0/10)"),
	BAD("refuses_metadata_address", "https://169.254.169.254/latest",
	    "host 169.254.169.254 is a link-local (169.254.0.0/16) address"),
	BAD("refuses_loopback", "https://127.0.0.1/",
	    "host 127.0.0.1 is a loopback (127.0.0.0/8) address"),
	BAD("refuses_decimal_loopback", "https://2130706433/",
	    "host 127.0.0.1 is a loopback (127.0.0.0/8)"),
	BAD("refuses_hex_loopback", "https://0x7f000001/",
	    "host 127.0.0.1 is a loopback (127.0.0.0/8)"),
	BAD("refuses_hex_short_loopback", "https://0x7f.1/",
	    "host 127.0.0.1 is a loopback (127.0.0.0/8)"),
	BAD("refuses_octal_loopback", "https://0177.0.0.1/",
	    "host 127.0.0.1 is a loopback (127.0.0.0/8)"),
	BAD("refuses_short_loopback", "https://127.1/",
	    "host 127.0.0.1 is a loopback (127.0.0.0/8)"),
	BAD("refuses_percent_encoded_loopback", "https://%31%32%37.0.0.1/",
	    "host 127.0.0.1 is a loopback (127.0.0.0/8)"),
	BAD("refuses_trailing_dot_loopback", "https://127.0.0.1./",
	    "loopback (127.0.0.0/8)"),
	BAD("refuses_zero_address", "https://0/",
	    "host 0.0.0.0 is an unspecified (0.0.0.0/8) address"),
	BAD("refuses_broadcast", "https://255.255.255.255/",
	    "broadcast (255.255.255.255)"),
	BAD("refuses_multicast", "https://239.1.1.1/", "multicast"),
	BAD("refuses_ipv6_loopback", "https://[::1]:8443/",
	    "host [::1] is a loopback (::1/128) address"),
	BAD("refuses_ipv6_unique_local", "https://[fd00::1]/",
	    "private unique-local (fc00::/7)"),
	BAD("refuses_ipv6_link_local_with_zone", "https://[fe80::1%25eth0]/",
	    "link-local (fe80::/10)"),
	BAD("refuses_ipv6_documentation", "https://[2001:db8::1]/",
	    "documentation (2001:db8::/32)"),
	BAD("refuses_ipv4_mapped_loopback", "https://[::ffff:127.0.0.1]/",
	    "is an IPv4-mapped loopback (127.0.0.0/8) address"),
	BAD("refuses_ipv4_mapped_hex_private", "https://[::FFFF:a00:1]/",
	    "IPv4-mapped private (10.0.0.0/8)"),
	BAD("refuses_nat64_private", "https://[64:ff9b::10.0.0.1]/",
	    "NAT64 private (10.0.0.0/8)"),
	BAD("refuses_6to4_loopback", "https://[2002:7f00:1::1]/",
	    "6to4 loopback (127.0.0.0/8)"),
	BAD("refuses_localhost", "https://localhost/dlr",
	    "must not point at localhost"),
	BAD("refuses_localhost_uppercase", "https://LOCALHOST/",
	    "must not point at localhost"),
	BAD("refuses_localhost_subdomain", "https://foo.localhost/",
	    "must not point at localhost"),
	BAD("refuses_localhost_subdomain_mixed_case", "https://a.b.LocalHost/",
	    "must not point at localhost"),
	BAD("refuses_localhost_trailing_dot", "https://localhost./",
	    "must not point at localhost"),
	BAD("refuses_localhost_subdomain_trailing_dots",
	    "https://foo.localhost../", "must not point at localhost"),
	BAD("refuses_percent_encoded_localhost", "https://%6c%6fcalhost:8443/",
	    "must not point at localhost"),

	OK_PRIV("allow_private_accepts_private_ipv4", "https://10.0.0.1/dlr"),
	OK_PRIV("allow_private_accepts_loopback", "https://127.0.0.1:8443/"),
	OK_PRIV("allow_private_accepts_localhost", "https://localhost:8443/"),
	OK_PRIV("allow_private_accepts_ipv6_loopback", "https://[::1]/"),
	BAD_PRIV("allow_private_still_refuses_http", "http://127.0.0.1/",
	    "must use https, not http"),
	BAD_PRIV("allow_private_still_refuses_userinfo",
	    "https://u:p@localhost/", "user name or password"),
	BAD_PRIV("allow_private_still_refuses_port_0", "https://localhost:0/",
	    "port 0"),
	BAD_PRIV("allow_private_still_refuses_fragment",
	    "https://10.0.0.1/#x", "fragment"),
};

#define NCASES	(sizeof(url_cases) / sizeof(url_cases[0]))

/*
 * The verdict must match, and a refusal's detail must be a sentence about
 * callbackUrl that contains the expected text.
 */
static void
checks_callback_url(void **state)
{
	const struct url_case	*c = *state;
	char			*detail = (char *)"unset";
	size_t			 len;
	int			 rc;

	len = c->len != 0 ? c->len : strlen(c->url);
	rc = url_check_callback(c->url, len, c->allow_private, &detail);
	if (c->want == NULL) {
		assert_int_equal(rc, 0);
		assert_null(detail);
		return;
	}
	assert_int_equal(rc, -1);
	assert_non_null(detail);
	assert_true(strncmp(detail, "callbackUrl ", 12) == 0);
	if (strstr(detail, c->want) == NULL)
		fail_msg("detail \"%s\" lacks \"%s\"", detail, c->want);
	free(detail);
}

static char *
url_of_length(size_t n)
{
	static const char	 head[] = "https://example.com/";
	char			*s;

	s = malloc(n + 1);
	assert_non_null(s);
	memcpy(s, head, sizeof(head) - 1);
	memset(s + sizeof(head) - 1, 'a', n - (sizeof(head) - 1));
	s[n] = '\0';
	return s;
}

static void
accepts_2048_bytes(void **state)
{
	char	*s, *detail;

	(void)state;
	s = url_of_length(URL_MAX_LEN);
	assert_int_equal(url_check_callback(s, strlen(s), false,
	    &detail), 0);
	assert_null(detail);
	free(s);
}

static void
refuses_2049_bytes(void **state)
{
	char	*s, *detail;

	(void)state;
	s = url_of_length(URL_MAX_LEN + 1);
	assert_int_equal(url_check_callback(s, strlen(s), false,
	    &detail), -1);
	assert_non_null(strstr(detail, "longer than 2048 bytes"));
	free(detail);
	free(s);
}

/* The length given is the URL; bytes after it are not looked at. */
static void
reads_only_len_bytes(void **state)
{
	static const char	 url[] = "https://example.com/\x01";
	char			*detail;

	(void)state;
	assert_int_equal(url_check_callback(url, sizeof(url) - 2, false,
	    &detail), 0);
	assert_int_equal(url_check_callback(url, sizeof(url) - 1, false,
	    &detail), -1);
	free(detail);
}

static void
refuses_null_url(void **state)
{
	char	*detail = NULL;

	(void)state;
	assert_int_equal(url_check_callback(NULL, 0, false, &detail), -1);
	assert_non_null(strstr(detail, "empty"));
	free(detail);
}

int
main(void)
{
	struct CMUnitTest	 tests[NCASES + 4];
	size_t			 i;

	/* As the API and the sender run: IDN conversion reads UTF-8. */
	if (setlocale(LC_CTYPE, "C.UTF-8") == NULL)
		setlocale(LC_CTYPE, "");

	for (i = 0; i < NCASES; i++) {
		tests[i] = (struct CMUnitTest)cmocka_unit_test_prestate(
		    checks_callback_url, (void *)&url_cases[i]);
		tests[i].name = url_cases[i].name;
	}
	tests[i++] = (struct CMUnitTest)cmocka_unit_test(accepts_2048_bytes);
	tests[i++] = (struct CMUnitTest)cmocka_unit_test(refuses_2049_bytes);
	tests[i++] = (struct CMUnitTest)cmocka_unit_test(reads_only_len_bytes);
	tests[i++] = (struct CMUnitTest)cmocka_unit_test(refuses_null_url);
	return cmocka_run_group_tests_name("url", tests, NULL, NULL);
}
