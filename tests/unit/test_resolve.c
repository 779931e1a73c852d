/* test_resolve.c: the send-time SSRF guard resolves once per host, refuses
 * a host with any blocked address, and pins libcurl to checked ones. */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <locale.h>
#include <netdb.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "resolve.h"

/* The fake DNS: a host, its addresses (comma-separated), or an error. */
static const struct {
	const char	*host;
	const char	*addrs;
	int		 error;
} zone[] = {
	{ "hooks.example", "93.184.216.34", 0 },
	{ "two.example", "93.184.216.34,93.184.216.35", 0 },
	{ "dup.example", "93.184.216.34,93.184.216.34", 0 },
	{ "v6.example", "2606:2800:220:1::1,93.184.216.34", 0 },
	{ "mixed.example", "93.184.216.34,10.0.0.1", 0 },
	{ "localhost", "::1,127.0.0.1", 0 },
	{ "mapped.example", "::ffff:127.0.0.1", 0 },
	{ "meta.example", "169.254.169.254", 0 },
	{ "xn--bcher-kva.example", "93.184.216.36", 0 },
	{ "gone.example", NULL, EAI_NONAME },
	{ "flaky.example", NULL, EAI_AGAIN },
};

static int	 gai_calls;

static struct addrinfo *
fake_ai(const char *text)
{
	struct addrinfo		*ai = calloc(1, sizeof(*ai));
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;

	assert_non_null(ai);
	ai->ai_socktype = SOCK_STREAM;
	if (strchr(text, ':') != NULL) {
		sin6 = calloc(1, sizeof(*sin6));
		assert_non_null(sin6);
		sin6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, text, &sin6->sin6_addr),
		    1);
		ai->ai_family = AF_INET6;
		ai->ai_addr = (struct sockaddr *)sin6;
		ai->ai_addrlen = sizeof(*sin6);
	} else {
		sin = calloc(1, sizeof(*sin));
		assert_non_null(sin);
		sin->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, text, &sin->sin_addr), 1);
		ai->ai_family = AF_INET;
		ai->ai_addr = (struct sockaddr *)sin;
		ai->ai_addrlen = sizeof(*sin);
	}
	return ai;
}

static int
fake_gai(const char *node, const char *service, const struct addrinfo *hints,
    struct addrinfo **res)
{
	struct addrinfo	**tail = res;
	char		  copy[256], *p, *tok;
	size_t		  i;

	(void)service;
	assert_int_equal(hints->ai_family, AF_UNSPEC);
	gai_calls++;
	*res = NULL;
	for (i = 0; i < sizeof(zone) / sizeof(zone[0]); i++) {
		if (strcmp(zone[i].host, node) != 0)
			continue;
		if (zone[i].error != 0)
			return zone[i].error;
		strcpy(copy, zone[i].addrs);
		for (p = copy; (tok = strsep(&p, ",")) != NULL;) {
			*tail = fake_ai(tok);
			tail = &(*tail)->ai_next;
		}
		return 0;
	}
	return EAI_NONAME;
}

static void
fake_freeai(struct addrinfo *ai)
{
	struct addrinfo	*next;

	for (; ai != NULL; ai = next) {
		next = ai->ai_next;
		free(ai->ai_addr);
		free(ai);
	}
}

/* A name server that takes 0.3 s to answer. */
static int
slow_gai(const char *node, const char *service, const struct addrinfo *hints,
    struct addrinfo **res)
{
	struct timespec	 ts = { 0, 300 * 1000 * 1000 };

	while (nanosleep(&ts, &ts) == -1)
		;
	return fake_gai(node, service, hints, res);
}

static struct resolve *
fake_resolver(int allow_private)
{
	struct resolve	*r = resolve_new(allow_private, 5.0);

	resolve_set_gai(r, fake_gai, fake_freeai);
	gai_calls = 0;
	return r;
}

/* Checks one URL: pin (NULL: none; "+": an entry that ages out of
 * libcurl's DNS cache) or error (NULL: allowed). */
static void
expect(struct resolve *r, const char *url, const char *pin, const char *error)
{
	struct resolve_dest	 d;
	int			 rc;

	rc = resolve_dest(r, url, 100.0, &d);
	if (error != NULL) {
		assert_int_equal(rc, -1);
		assert_non_null(d.error);
		assert_string_equal(d.error, error);
		assert_null(d.pin);
	} else {
		if (rc != 0)
			fail_msg("%s: %s", url, d.error);
		assert_null(d.error);
		if (pin == NULL)
			assert_null(d.pin);
		else {
			assert_non_null(d.pin);
			assert_string_equal(d.pin, pin);
		}
	}
	resolve_dest_clear(&d);
}

static void
public_host_is_pinned_to_its_addresses(void **state)
{
	struct resolve	*r = fake_resolver(0);

	(void)state;
	expect(r, "https://hooks.example/dlr",
	    "+hooks.example:443:93.184.216.34", NULL);
	expect(r, "https://hooks.example:8443/dlr",
	    "+hooks.example:8443:93.184.216.34", NULL);
	expect(r, "https://two.example/",
	    "+two.example:443:93.184.216.34,93.184.216.35", NULL);
	expect(r, "https://dup.example/", "+dup.example:443:93.184.216.34",
	    NULL);
	expect(r, "https://v6.example/",
	    "+v6.example:443:[2606:2800:220:1::1],93.184.216.34", NULL);
	resolve_free(r);
}

static void
one_blocked_address_refuses_the_host(void **state)
{
	struct resolve	*r = fake_resolver(0);

	(void)state;
	expect(r, "https://mixed.example/", NULL,
	    "blocked destination: 10.0.0.1 is private (10.0.0.0/8)");
	expect(r, "https://localhost/", NULL,
	    "blocked destination: ::1 is loopback (::1/128)");
	expect(r, "https://meta.example/latest", NULL,
	    "blocked destination: 169.254.169.254 is link-local "
	    "(169.254.0.0/16)");
	expect(r, "https://mapped.example/", NULL,
	    "blocked destination: ::ffff:127.0.0.1 is IPv4-mapped loopback "
	    "(127.0.0.0/8)");
	resolve_free(r);
}

static void
ip_literals_are_checked_without_dns(void **state)
{
	struct resolve	*r = fake_resolver(0);

	(void)state;
	expect(r, "https://10.1.2.3/x", NULL,
	    "blocked destination: 10.1.2.3 is private (10.0.0.0/8)");
	expect(r, "https://[::1]:8443/x", NULL,
	    "blocked destination: ::1 is loopback (::1/128)");
	expect(r, "https://127.1/x", NULL,
	    "blocked destination: 127.0.0.1 is loopback (127.0.0.0/8)");
	expect(r, "https://93.184.216.34/x", NULL, NULL);
	expect(r, "https://[2606:2800:220:1::1]/x", NULL, NULL);
	assert_int_equal(gai_calls, 0);
	resolve_free(r);
}

static void
allow_private_still_resolves_and_pins(void **state)
{
	struct resolve	*r = fake_resolver(1);

	(void)state;
	expect(r, "https://localhost:9443/", "+localhost:9443:[::1],127.0.0.1",
	    NULL);
	expect(r, "https://10.1.2.3/x", NULL, NULL);
	assert_int_equal(gai_calls, 1);
	resolve_free(r);
}

/* libcurl resolves the punycode form of a name: that is what is pinned. */
static void
idn_host_is_pinned_as_punycode(void **state)
{
	struct resolve	*r = fake_resolver(0);

	(void)state;
	expect(r, "https://b\xc3\xbc" "cher.example/",
	    "+xn--bcher-kva.example:443:93.184.216.36", NULL);
	resolve_free(r);
}

static void
dns_failures_are_clear(void **state)
{
	struct resolve	*r = fake_resolver(0);

	(void)state;
	expect(r, "https://gone.example/", NULL, "DNS: host not found");
	expect(r, "https://flaky.example/", NULL,
	    "DNS: temporary failure, try again");
	resolve_free(r);
}

static void
bad_urls_are_refused(void **state)
{
	struct resolve		*r = fake_resolver(0);
	struct resolve_dest	 d;

	(void)state;
	expect(r, "http://hooks.example/", NULL, "callback URL is not https");
	assert_int_equal(resolve_dest(r, "not a url", 100.0, &d), -1);
	assert_non_null(d.error);
	assert_non_null(strstr(d.error, "invalid callback URL"));
	resolve_dest_clear(&d);
	assert_int_equal(gai_calls, 0);
	resolve_free(r);
}

static void
a_host_resolves_once_per_ttl(void **state)
{
	struct resolve		*r = fake_resolver(0);
	struct resolve_dest	 d;
	int			 i;

	(void)state;
	for (i = 0; i < 1000; i++) {
		assert_int_equal(resolve_dest(r, "https://hooks.example/a",
		    100.0 + i * 0.001, &d), 0);
		resolve_dest_clear(&d);
		assert_int_equal(resolve_dest(r, "https://gone.example/a",
		    100.0 + i * 0.001, &d), -1);
		resolve_dest_clear(&d);
	}
	assert_int_equal(gai_calls, 2);
	/* Past the ttl the name is looked up again. */
	assert_int_equal(resolve_dest(r, "https://hooks.example/a", 105.5, &d),
	    0);
	resolve_dest_clear(&d);
	assert_int_equal(gai_calls, 3);
	resolve_expire(r, 200.0);
	assert_int_equal(resolve_dest(r, "https://hooks.example/a", 200.5, &d),
	    0);
	resolve_dest_clear(&d);
	assert_int_equal(gai_calls, 4);
	resolve_free(r);
}

/*
 * The caller's clock moves on while a lookup runs: the next job of the
 * same claim asks 0.3 s later. An entry lasts its ttl from the end of its
 * lookup; counted from the start, every lookup slower than the ttl left
 * an entry already stale, and each job of a slow host paid a lookup.
 */
static void
a_slow_lookup_is_cached_from_when_it_ends(void **state)
{
	struct resolve		*r = resolve_new(0, 0.2);
	struct resolve_dest	 d;

	(void)state;
	resolve_set_gai(r, slow_gai, fake_freeai);
	gai_calls = 0;
	assert_int_equal(resolve_dest(r, "https://hooks.example/a", 100.0, &d),
	    0);
	resolve_dest_clear(&d);
	assert_int_equal(resolve_dest(r, "https://hooks.example/b", 100.3, &d),
	    0);
	resolve_dest_clear(&d);
	assert_int_equal(gai_calls, 1);
	/* Its ttl runs out 0.2 s after the lookup ended, not later. */
	assert_int_equal(resolve_dest(r, "https://hooks.example/c", 101.0, &d),
	    0);
	resolve_dest_clear(&d);
	assert_int_equal(gai_calls, 2);
	resolve_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(public_host_is_pinned_to_its_addresses),
		cmocka_unit_test(one_blocked_address_refuses_the_host),
		cmocka_unit_test(ip_literals_are_checked_without_dns),
		cmocka_unit_test(allow_private_still_resolves_and_pins),
		cmocka_unit_test(idn_host_is_pinned_as_punycode),
		cmocka_unit_test(dns_failures_are_clear),
		cmocka_unit_test(bad_urls_are_refused),
		cmocka_unit_test(a_host_resolves_once_per_ttl),
		cmocka_unit_test(a_slow_lookup_is_cached_from_when_it_ends),
	};

	setlocale(LC_CTYPE, "C.UTF-8");		/* as dlrhook-send does */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
