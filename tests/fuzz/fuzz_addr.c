/* fuzz_addr.c: the SSRF address classifier, its IPv6 embeddings and its text. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "addr.h"
#include "fuzz.h"

/*
 * The input: its first 16 bytes (zero-padded) are an IPv6 address and its
 * first 4 an IPv4 one; the whole input, cut at a NUL, is also host text.
 * The verdicts are judged against the ranges as the documentation lists
 * them (docs/OPERATIONS.md, "Safety"), written here independently, and
 * every IPv6 form that carries an IPv4 address must share its verdict.
 */

struct range {
	const char	*net;
	unsigned int	 plen;
};

static const struct range v4_blocked[] = {
	{ "0.0.0.0", 8 }, { "10.0.0.0", 8 }, { "100.64.0.0", 10 },
	{ "127.0.0.0", 8 }, { "169.254.0.0", 16 }, { "172.16.0.0", 12 },
	{ "192.0.0.0", 24 }, { "192.0.2.0", 24 }, { "192.168.0.0", 16 },
	{ "198.18.0.0", 15 }, { "198.51.100.0", 24 }, { "203.0.113.0", 24 },
	{ "224.0.0.0", 4 }, { "240.0.0.0", 4 },
};

static const struct range v6_blocked[] = {
	{ "::", 128 }, { "::1", 128 }, { "fc00::", 7 }, { "fe80::", 10 },
	{ "fec0::", 10 }, { "ff00::", 8 }, { "2001:db8::", 32 },
	{ "100::", 64 },
};

static bool
in_prefix(const uint8_t *a, const uint8_t *net, unsigned int plen)
{
	unsigned int	 i;

	for (i = 0; i < plen; i++)
		if (((a[i / 8] ^ net[i / 8]) >> (7 - i % 8)) & 1)
			return false;
	return true;
}

static bool
oracle_v4(const uint8_t a[4])
{
	uint8_t	 net[4];
	size_t	 i;

	for (i = 0; i < sizeof(v4_blocked) / sizeof(v4_blocked[0]); i++) {
		FUZZ_CHECK(inet_pton(AF_INET, v4_blocked[i].net, net) == 1);
		if (in_prefix(a, net, v4_blocked[i].plen))
			return true;
	}
	return false;
}

static bool
oracle_v6_outright(const uint8_t a[16])
{
	uint8_t	 net[16];
	size_t	 i;

	for (i = 0; i < sizeof(v6_blocked) / sizeof(v6_blocked[0]); i++) {
		FUZZ_CHECK(inet_pton(AF_INET6, v6_blocked[i].net, net) == 1);
		if (in_prefix(a, net, v6_blocked[i].plen))
			return true;
	}
	return false;
}

/*
 * The whole IPv6 verdict: blocked outright, or an IPv4-mapped, -compatible,
 * NAT64 (well-known and local-use, /96 embedding), 6to4 or Teredo (server
 * or client) form of a blocked IPv4 address.
 */
static bool
oracle_v6(const uint8_t a[16])
{
	static const struct {
		const char	*net;
		unsigned int	 plen;
		size_t		 off;
	} forms[] = {
		{ "::ffff:0:0", 96, 12 }, { "::", 96, 12 },
		{ "64:ff9b::", 96, 12 }, { "64:ff9b:1::", 48, 12 },
		{ "2002::", 16, 2 }, { "2001::", 32, 4 },
	};
	uint8_t	 net[16], cli[4];
	size_t	 i;

	if (oracle_v6_outright(a))
		return true;
	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		FUZZ_CHECK(inet_pton(AF_INET6, forms[i].net, net) == 1);
		if (in_prefix(a, net, forms[i].plen) &&
		    oracle_v4(a + forms[i].off))
			return true;
	}
	FUZZ_CHECK(inet_pton(AF_INET6, "2001::", net) == 1);
	for (i = 0; i < 4; i++)
		cli[i] = a[12 + i] ^ 0xff;
	return in_prefix(a, net, 32) && oracle_v4(cli);
}

/* a6 = prefix (plen bits of pfx, the rest zero), v4 at byte off. */
static void
embed(uint8_t a6[16], const char *pfx, size_t off, const uint8_t v4[4])
{
	FUZZ_CHECK(inet_pton(AF_INET6, pfx, a6) == 1);
	memcpy(a6 + off, v4, 4);
}

/* why6 is the v4 verdict with the form's name in front, or both NULL. */
static void
check_embedded(const char *why4, const char *why6, const char *form)
{
	char	 want[128];

	if (why4 == NULL) {
		FUZZ_CHECK(why6 == NULL);
		return;
	}
	FUZZ_CHECK(why6 != NULL);
	snprintf(want, sizeof(want), "%s %s", form, why4);
	FUZZ_CHECK(strcmp(why6, want) == 0);
}

/* Text forms of a: bare, bracketed, with a zone; the same verdict. */
static void
check_text6(const uint8_t a[16], const char *why6)
{
	char		 t[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN + 16];
	const char	*why;

	FUZZ_CHECK(inet_ntop(AF_INET6, a, t, sizeof(t)) != NULL);
	FUZZ_CHECK(addr_literal_check(t, &why) == 1 && why == why6);
	snprintf(b, sizeof(b), "[%s]", t);
	FUZZ_CHECK(addr_literal_check(b, &why) == 1 && why == why6);
	snprintf(b, sizeof(b), "[%s%%25eth0]", t);
	FUZZ_CHECK(addr_literal_check(b, &why) == 1 && why == why6);
	snprintf(b, sizeof(b), "%s%%eth0", t);
	FUZZ_CHECK(addr_literal_check(b, &why) == 1 && why == why6);
}

static void
check_binary(const uint8_t v4[4], const uint8_t v6[16])
{
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
	const char		*why4, *why6, *why;
	uint8_t			 a6[16], srv[4], cli[4];
	char			 t[INET_ADDRSTRLEN + 1];
	size_t			 i;

	why4 = addr_blocked_v4(v4);
	FUZZ_CHECK((why4 != NULL) == oracle_v4(v4));
	why6 = addr_blocked_v6(v6);
	FUZZ_CHECK((why6 != NULL) == oracle_v6(v6));

	/* The sockaddr forms the sender checks get the same verdicts. */
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	memcpy(&sin.sin_addr, v4, 4);
	FUZZ_CHECK(addr_blocked_sa((struct sockaddr *)&sin) == why4);
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	memcpy(&sin6.sin6_addr, v6, 16);
	FUZZ_CHECK(addr_blocked_sa((struct sockaddr *)&sin6) == why6);

	/* And their text: dotted quad (also fully qualified), IPv6 forms. */
	FUZZ_CHECK(inet_ntop(AF_INET, v4, t, sizeof(t)) != NULL);
	FUZZ_CHECK(addr_literal_check(t, &why) == 1 && why == why4);
	strcat(t, ".");
	FUZZ_CHECK(addr_literal_check(t, &why) == 1 && why == why4);
	check_text6(v6, why6);

	/* Every IPv6 form that carries v4 shares its verdict. */
	embed(a6, "::ffff:0:0", 12, v4);
	check_embedded(why4, addr_blocked_v6(a6), "IPv4-mapped");
	check_text6(a6, addr_blocked_v6(a6));
	embed(a6, "64:ff9b::", 12, v4);
	check_embedded(why4, addr_blocked_v6(a6), "NAT64");
	embed(a6, "64:ff9b:1::", 12, v4);
	check_embedded(why4, addr_blocked_v6(a6), "NAT64");
	memcpy(a6, v6, 16);		/* 2002:v4::/48, any subnet and host */
	a6[0] = 0x20, a6[1] = 0x02;
	memcpy(a6 + 2, v4, 4);
	check_embedded(why4, addr_blocked_v6(a6), "6to4");
	embed(a6, "::", 12, v4);
	if (v4[0] | v4[1] | v4[2] || v4[3] > 1)
		check_embedded(why4, addr_blocked_v6(a6), "IPv4-compatible");
	else
		FUZZ_CHECK(addr_blocked_v6(a6) != NULL);	/* :: and ::1 */

	/* Teredo: blocked when its server or its client address is. */
	memcpy(a6, v6, 16);
	a6[0] = 0x20, a6[1] = 0x01, a6[2] = 0, a6[3] = 0;
	FUZZ_CHECK((addr_blocked_v6(a6) != NULL) == oracle_v6(a6));
	memcpy(srv, a6 + 4, 4);
	for (i = 0; i < 4; i++)
		cli[i] = a6[12 + i] ^ 0xff;
	FUZZ_CHECK((addr_blocked_v6(a6) != NULL) ==
	    (addr_blocked_v4(srv) != NULL || addr_blocked_v4(cli) != NULL));
}

/* Host text: a literal is recognised as one, and parsed the way libc does. */
static void
check_text(const char *host)
{
	char		 t[256];
	uint8_t		 a[16];
	const char	*why, *p;
	size_t		 n;
	int		 rc;

	rc = addr_literal_check(host, &why);
	FUZZ_CHECK(rc == 0 || rc == 1);
	n = strlen(host);
	if (n >= sizeof(t))
		return;
	p = host;
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		p++;
		n -= 2;
	}
	memcpy(t, p, n);
	t[n] = '\0';
	if (p == host && strchr(t, ':') == NULL) {
		/* IPv4: a dotted quad, perhaps with one trailing dot. */
		if (n > 0 && t[n - 1] == '.')
			t[n - 1] = '\0';
		if (inet_pton(AF_INET, t, a) == 1)
			FUZZ_CHECK(rc == 1 && why == addr_blocked_v4(a));
		else
			FUZZ_CHECK(rc == 0 && why == NULL);
		return;
	}
	/* Brackets or a colon: never a host name. */
	FUZZ_CHECK(rc == 1);
	t[strcspn(t, "%")] = '\0';
	if (inet_pton(AF_INET6, t, a) == 1)
		FUZZ_CHECK(why == addr_blocked_v6(a));
	else
		FUZZ_CHECK(why != NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t	 v6[16] = { 0 };
	char	*host;

	memcpy(v6, data, size < 16 ? size : 16);
	check_binary(v6, v6);
	host = fuzz_cstr(data, size);
	check_text(host);
	free(host);
	return 0;
}
