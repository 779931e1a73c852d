/* test_addr.c: the SSRF classifier blocks every listed range and no more. */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "addr.h"

/* One address and the exact reason expected (NULL: must be allowed). */
struct addr_case {
	const char	*text;
	const char	*why;
};

static const struct addr_case addr_cases[] = {
	/* IPv4 ranges, with their edges. */
	{ "0.0.0.0", "unspecified (0.0.0.0/8)" },
	{ "0.255.255.255", "unspecified (0.0.0.0/8)" },
	{ "1.0.0.0", NULL },
	{ "9.255.255.255", NULL },
	{ "10.0.0.0", "private (10.0.0.0/8)" },
	{ "10.255.255.255", "private (10.0.0.0/8)" },
	{ "11.0.0.0", NULL },
	{ "100.63.255.255", NULL },
	{ "100.64.0.0", "carrier-grade NAT (100.64.0.0/10)" },
	{ "100.127.255.255", "carrier-grade NAT (100.64.0.0/10)" },
	{ "100.128.0.0", NULL },
	{ "126.255.255.255", NULL },
	{ "127.0.0.1", "loopback (127.0.0.0/8)" },
	{ "127.255.255.254", "loopback (127.0.0.0/8)" },
	{ "128.0.0.0", NULL },
	{ "169.254.169.254", "link-local (169.254.0.0/16)" },
	{ "169.255.0.0", NULL },
	{ "172.15.255.255", NULL },
	{ "172.16.0.0", "private (172.16.0.0/12)" },
	{ "172.31.255.255", "private (172.16.0.0/12)" },
	{ "172.32.0.0", NULL },
	{ "192.0.0.8", "IETF-reserved (192.0.0.0/24)" },
	{ "192.0.1.1", NULL },
	{ "192.0.2.1", "documentation (192.0.2.0/24)" },
	{ "192.0.3.1", NULL },
	{ "192.168.0.1", "private (192.168.0.0/16)" },
	{ "192.169.0.1", NULL },
	{ "198.17.255.255", NULL },
	{ "198.18.0.1", "benchmarking (198.18.0.0/15)" },
	{ "198.19.255.255", "benchmarking (198.18.0.0/15)" },
	{ "198.20.0.0", NULL },
	{ "198.51.100.7", "documentation (198.51.100.0/24)" },
	{ "203.0.113.9", "documentation (203.0.113.0/24)" },
	{ "203.0.114.9", NULL },
	{ "223.255.255.255", NULL },
	{ "224.0.0.1", "multicast (224.0.0.0/4)" },
	{ "239.255.255.255", "multicast (224.0.0.0/4)" },
	{ "240.0.0.1", "reserved (240.0.0.0/4)" },
	{ "255.255.255.254", "reserved (240.0.0.0/4)" },
	{ "255.255.255.255", "broadcast (255.255.255.255)" },
	{ "8.8.8.8", NULL },
	{ "1.1.1.1", NULL },
	{ "93.184.216.34", NULL },

	/* IPv6 ranges. */
	{ "::", "unspecified (::/128)" },
	{ "::1", "loopback (::1/128)" },
	{ "fc00::1", "private unique-local (fc00::/7)" },
	{ "fdff:ffff::1", "private unique-local (fc00::/7)" },
	{ "fe80::1", "link-local (fe80::/10)" },
	{ "febf:ffff::1", "link-local (fe80::/10)" },
	{ "fec0::1", "site-local (fec0::/10)" },
	{ "feff::1", "site-local (fec0::/10)" },
	{ "ff02::1", "multicast (ff00::/8)" },
	{ "ff0e::101", "multicast (ff00::/8)" },
	{ "2001:db8::1", "documentation (2001:db8::/32)" },
	{ "2001:db8:ffff:ffff::1", "documentation (2001:db8::/32)" },
	{ "2001:db9::1", NULL },
	{ "100::1", "discard-only (100::/64)" },
	{ "100::ffff:ffff:ffff:ffff", "discard-only (100::/64)" },
	/* Just outside the prefixes above: proves their lengths. */
	{ "100:0:0:1::1", NULL },
	{ "fbff:ffff::1", NULL },
	{ "fe00::1", NULL },
	{ "fe7f:ffff::1", NULL },
	{ "2606:4700::1111", NULL },
	{ "2a00:1450::1", NULL },
	{ "2001:4860:4860::8888", NULL },

	/* IPv6 forms judged by the IPv4 address they carry. */
	{ "::ffff:127.0.0.1", "IPv4-mapped loopback (127.0.0.0/8)" },
	{ "::ffff:10.1.2.3", "IPv4-mapped private (10.0.0.0/8)" },
	{ "::ffff:169.254.169.254", "IPv4-mapped link-local (169.254.0.0/16)" },
	{ "::ffff:0.0.0.0", "IPv4-mapped unspecified (0.0.0.0/8)" },
	{ "::ffff:8.8.8.8", NULL },
	{ "::127.0.0.1", "IPv4-compatible loopback (127.0.0.0/8)" },
	{ "::192.168.1.1", "IPv4-compatible private (192.168.0.0/16)" },
	{ "::2", "IPv4-compatible unspecified (0.0.0.0/8)" },
	{ "::8.8.8.8", NULL },
	{ "2002:7f00:1::", "6to4 loopback (127.0.0.0/8)" },
	{ "2002:c0a8:101::1", "6to4 private (192.168.0.0/16)" },
	{ "2002:a9fe:a9fe:1234::1", "6to4 link-local (169.254.0.0/16)" },
	{ "2002:808:808::1", NULL },
	{ "64:ff9b::127.0.0.1", "NAT64 loopback (127.0.0.0/8)" },
	{ "64:ff9b::a00:1", "NAT64 private (10.0.0.0/8)" },
	{ "64:ff9b::8.8.8.8", NULL },
	{ "64:ff9b:1::a9fe:a9fe", "NAT64 link-local (169.254.0.0/16)" },
	{ "64:ff9b:1:ffff::10.0.0.1", "NAT64 private (10.0.0.0/8)" },
	{ "64:ff9b:1::8.8.8.8", NULL },
	/* Teredo: client 127.0.0.1 is stored as ~0x7f000001 = 80ff:fffe. */
	{ "2001:0:4136:e378:8000:63bf:80ff:fffe",
	    "Teredo client loopback (127.0.0.0/8)" },
	{ "2001:0:4136:e378:8000:63bf:3f57:fefe",
	    "Teredo client private (192.168.0.0/16)" },
	/* Server 10.0.0.1 in bits 32..63, client 8.8.8.8 (f7f7:f7f7). */
	{ "2001:0:a00:1:8000:63bf:f7f7:f7f7",
	    "Teredo server private (10.0.0.0/8)" },
	{ "2001:0:4136:e378:8000:63bf:f7f7:f7f7", NULL },
	/* Without the XOR this would read as 127.0.0.1; it is 128.255.255.254. */
	{ "2001:0:4136:e378:8000:63bf:7f00:1", NULL },
};

#define NCASES	(sizeof(addr_cases) / sizeof(addr_cases[0]))

static char	addr_names[NCASES][80];

static void
assert_why(const char *got, const char *want)
{
	if (want == NULL) {
		assert_null(got);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
}

/*
 * Each row is checked through all three entry points: the byte-array
 * classifier, the sockaddr one, and the textual literal check.
 */
static void
classifies_address(void **state)
{
	const struct addr_case	*c = *state;
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
	char			 bracketed[80];
	const char		*why;

	if (strchr(c->text, ':') == NULL) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, c->text, &sin.sin_addr), 1);
		assert_why(addr_blocked_v4((const uint8_t *)&sin.sin_addr),
		    c->why);
		assert_why(addr_blocked_sa((struct sockaddr *)&sin), c->why);
		assert_int_equal(addr_literal_check(c->text, &why), 1);
		assert_why(why, c->why);
		return;
	}
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, c->text, &sin6.sin6_addr), 1);
	assert_why(addr_blocked_v6(sin6.sin6_addr.s6_addr), c->why);
	assert_why(addr_blocked_sa((struct sockaddr *)&sin6), c->why);
	assert_int_equal(addr_literal_check(c->text, &why), 1);
	assert_why(why, c->why);
	snprintf(bracketed, sizeof(bracketed), "[%s]", c->text);
	assert_int_equal(addr_literal_check(bracketed, &why), 1);
	assert_why(why, c->why);
}

static void
sockaddr_of_other_family_is_blocked(void **state)
{
	struct sockaddr_un	 sun;

	(void)state;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	assert_string_equal(addr_blocked_sa((struct sockaddr *)&sun),
	    "unsupported address family");
	assert_string_equal(addr_blocked_sa(NULL),
	    "unsupported address family");
}

static void
literal_check_says_names_are_not_literals(void **state)
{
	const char	*why = "unset";

	(void)state;
	assert_int_equal(addr_literal_check("example.com", &why), 0);
	assert_null(why);
	assert_int_equal(addr_literal_check("localhost", &why), 0);
	assert_int_equal(addr_literal_check("", &why), 0);
	assert_int_equal(addr_literal_check("bücher.example", &why), 0);
	/* inet_pton takes only dotted quads; curl normalises the rest. */
	assert_int_equal(addr_literal_check("127.1", &why), 0);
	assert_int_equal(addr_literal_check("1.2.3.4.5", &why), 0);
	assert_int_equal(addr_literal_check(NULL, &why), 0);
}

static void
literal_check_reads_zones_brackets_and_trailing_dot(void **state)
{
	const char	*why;

	(void)state;
	assert_int_equal(addr_literal_check("[fe80::1%25eth0]", &why), 1);
	assert_string_equal(why, "link-local (fe80::/10)");
	assert_int_equal(addr_literal_check("fe80::1%eth0", &why), 1);
	assert_string_equal(why, "link-local (fe80::/10)");
	assert_int_equal(addr_literal_check("[2606:4700::1111]", &why), 1);
	assert_null(why);
	assert_int_equal(addr_literal_check("127.0.0.1.", &why), 1);
	assert_string_equal(why, "loopback (127.0.0.0/8)");
	assert_int_equal(addr_literal_check("8.8.8.8.", &why), 1);
	assert_null(why);
}

static void
literal_check_blocks_malformed_ipv6_text(void **state)
{
	const char	*why;

	(void)state;
	assert_int_equal(addr_literal_check("[not-an-address]", &why), 1);
	assert_string_equal(why, "invalid IP literal");
	assert_int_equal(addr_literal_check("1::2::3", &why), 1);
	assert_string_equal(why, "invalid IP literal");
	assert_int_equal(addr_literal_check("[1.2.3.4]", &why), 1);
	assert_string_equal(why, "invalid IP literal");
	assert_int_equal(addr_literal_check(
	    "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]", &why),
	    1);
	assert_string_equal(why, "invalid IP literal");
}

int
main(void)
{
	struct CMUnitTest	 tests[NCASES + 4];
	size_t			 i;

	for (i = 0; i < NCASES; i++) {
		snprintf(addr_names[i], sizeof(addr_names[i]), "%s_%s",
		    addr_cases[i].why != NULL ? "blocks" : "allows",
		    addr_cases[i].text);
		tests[i] = (struct CMUnitTest)cmocka_unit_test_prestate(
		    classifies_address, (void *)&addr_cases[i]);
		tests[i].name = addr_names[i];
	}
	tests[i++] = (struct CMUnitTest)cmocka_unit_test(
	    sockaddr_of_other_family_is_blocked);
	tests[i++] = (struct CMUnitTest)cmocka_unit_test(
	    literal_check_says_names_are_not_literals);
	tests[i++] = (struct CMUnitTest)cmocka_unit_test(
	    literal_check_reads_zones_brackets_and_trailing_dot);
	tests[i++] = (struct CMUnitTest)cmocka_unit_test(
	    literal_check_blocks_malformed_ipv6_text);
	return cmocka_run_group_tests_name("addr", tests, NULL, NULL);
}
