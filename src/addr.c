/* addr.c: decides whether an IP address may be contacted (SSRF guard). */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "addr.h"

/*
 * The blocked IPv4 ranges, most specific first (broadcast lies inside
 * 240/4). X-macro so that the reason tables of the IPv6 forms embedding a
 * v4 address are built from the same list and stay in step with it.
 */
#define ADDR_V4_RANGES(X)						\
	X(0x00000000, 8,  "unspecified (0.0.0.0/8)")			\
	X(0x0a000000, 8,  "private (10.0.0.0/8)")			\
	X(0x64400000, 10, "carrier-grade NAT (100.64.0.0/10)")		\
	X(0x7f000000, 8,  "loopback (127.0.0.0/8)")			\
	X(0xa9fe0000, 16, "link-local (169.254.0.0/16)")		\
	X(0xac100000, 12, "private (172.16.0.0/12)")			\
	X(0xc0000000, 24, "IETF-reserved (192.0.0.0/24)")		\
	X(0xc0000200, 24, "documentation (192.0.2.0/24)")		\
	X(0xc0a80000, 16, "private (192.168.0.0/16)")			\
	X(0xc6120000, 15, "benchmarking (198.18.0.0/15)")		\
	X(0xc6336400, 24, "documentation (198.51.100.0/24)")		\
	X(0xcb007100, 24, "documentation (203.0.113.0/24)")		\
	X(0xe0000000, 4,  "multicast (224.0.0.0/4)")			\
	X(0xffffffff, 32, "broadcast (255.255.255.255)")		\
	X(0xf0000000, 4,  "reserved (240.0.0.0/4)")

struct addr_v4_range {
	uint32_t	 net;
	unsigned int	 plen;
};

#define ADDR_V4_RANGE(net, plen, why)	{ (net), (plen) },
static const struct addr_v4_range addr_v4_ranges[] = {
	ADDR_V4_RANGES(ADDR_V4_RANGE)
};
#undef ADDR_V4_RANGE

#define ADDR_V4_NRANGES	(sizeof(addr_v4_ranges) / sizeof(addr_v4_ranges[0]))

/* How an IPv6 address carries an IPv4 one; names the reason prefix. */
enum addr_embed {
	ADDR_EMBED_NONE,
	ADDR_EMBED_MAPPED,
	ADDR_EMBED_COMPAT,
	ADDR_EMBED_6TO4,
	ADDR_EMBED_NAT64,
	ADDR_EMBED_TEREDO,
	ADDR_EMBED_TEREDO_SERVER,
	ADDR_EMBED__MAX
};

#define ADDR_REASON(net, plen, why)		why,
#define ADDR_REASON_MAPPED(net, plen, why)	"IPv4-mapped " why,
#define ADDR_REASON_COMPAT(net, plen, why)	"IPv4-compatible " why,
#define ADDR_REASON_6TO4(net, plen, why)	"6to4 " why,
#define ADDR_REASON_NAT64(net, plen, why)	"NAT64 " why,
#define ADDR_REASON_TEREDO(net, plen, why)	"Teredo client " why,
#define ADDR_REASON_TEREDO_S(net, plen, why)	"Teredo server " why,
static const char *const addr_reasons[ADDR_EMBED__MAX][ADDR_V4_NRANGES] = {
	[ADDR_EMBED_NONE] = { ADDR_V4_RANGES(ADDR_REASON) },
	[ADDR_EMBED_MAPPED] = { ADDR_V4_RANGES(ADDR_REASON_MAPPED) },
	[ADDR_EMBED_COMPAT] = { ADDR_V4_RANGES(ADDR_REASON_COMPAT) },
	[ADDR_EMBED_6TO4] = { ADDR_V4_RANGES(ADDR_REASON_6TO4) },
	[ADDR_EMBED_NAT64] = { ADDR_V4_RANGES(ADDR_REASON_NAT64) },
	[ADDR_EMBED_TEREDO] = { ADDR_V4_RANGES(ADDR_REASON_TEREDO) },
	[ADDR_EMBED_TEREDO_SERVER] = { ADDR_V4_RANGES(ADDR_REASON_TEREDO_S) },
};
#undef ADDR_REASON
#undef ADDR_REASON_MAPPED
#undef ADDR_REASON_COMPAT
#undef ADDR_REASON_6TO4
#undef ADDR_REASON_NAT64
#undef ADDR_REASON_TEREDO
#undef ADDR_REASON_TEREDO_S

/* An IPv6 prefix; for embedding forms, where the v4 address sits. */
struct addr_v6_range {
	uint8_t		 prefix[16];
	unsigned int	 plen;
	const char	*why;		/* blocked outright when non-NULL */
	enum addr_embed	 embed;		/* else judged by the embedded v4 */
	size_t		 v4_off;	/* byte offset of the embedded v4 */
	uint8_t		 v4_xor;	/* Teredo obfuscates the client address */
};

/*
 * Checked in order. :: and ::1 come before ::/96 (IPv4-compatible) so that
 * they get their own reasons; a Teredo address is checked for both its
 * client and its server address.
 */
static const struct addr_v6_range addr_v6_ranges[] = {
	{ { 0 }, 128, "unspecified (::/128)", ADDR_EMBED_NONE, 0, 0 },
	{ { [15] = 1 }, 128, "loopback (::1/128)", ADDR_EMBED_NONE, 0, 0 },
	{ { 0xfc }, 7, "private unique-local (fc00::/7)",
	    ADDR_EMBED_NONE, 0, 0 },
	{ { 0xfe, 0x80 }, 10, "link-local (fe80::/10)", ADDR_EMBED_NONE, 0, 0 },
	{ { 0xfe, 0xc0 }, 10, "site-local (fec0::/10)", ADDR_EMBED_NONE, 0, 0 },
	{ { 0xff }, 8, "multicast (ff00::/8)", ADDR_EMBED_NONE, 0, 0 },
	{ { 0x20, 0x01, 0x0d, 0xb8 }, 32, "documentation (2001:db8::/32)",
	    ADDR_EMBED_NONE, 0, 0 },
	{ { 0x01, 0x00 }, 64, "discard-only (100::/64)", ADDR_EMBED_NONE, 0, 0 },
	{ { [10] = 0xff, [11] = 0xff }, 96, NULL, ADDR_EMBED_MAPPED, 12, 0 },
	{ { 0 }, 96, NULL, ADDR_EMBED_COMPAT, 12, 0 },
	{ { 0x20, 0x02 }, 16, NULL, ADDR_EMBED_6TO4, 2, 0 },
	{ { 0x00, 0x64, 0xff, 0x9b }, 96, NULL, ADDR_EMBED_NAT64, 12, 0 },
	{ { 0x00, 0x64, 0xff, 0x9b, 0x00, 0x01 }, 48, NULL,
	    ADDR_EMBED_NAT64, 12, 0 },
	{ { 0x20, 0x01, 0x00, 0x00 }, 32, NULL, ADDR_EMBED_TEREDO, 12, 0xff },
	{ { 0x20, 0x01, 0x00, 0x00 }, 32, NULL, ADDR_EMBED_TEREDO_SERVER, 4, 0 },
};

#define ADDR_V6_NRANGES	(sizeof(addr_v6_ranges) / sizeof(addr_v6_ranges[0]))

/* Index of the blocked range holding a, or -1 when a is public. */
static int
addr_v4_index(const uint8_t a[4])
{
	uint32_t	 x, mask;
	size_t		 i;

	x = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 |
	    (uint32_t)a[2] << 8 | (uint32_t)a[3];
	for (i = 0; i < ADDR_V4_NRANGES; i++) {
		mask = 0xffffffffu << (32 - addr_v4_ranges[i].plen);
		if ((x & mask) == addr_v4_ranges[i].net)
			return (int)i;
	}
	return -1;
}

const char *
addr_blocked_v4(const uint8_t a[4])
{
	int	 i;

	if ((i = addr_v4_index(a)) < 0)
		return NULL;
	return addr_reasons[ADDR_EMBED_NONE][i];
}

static int
addr_v6_match(const uint8_t a[16], const uint8_t prefix[16], unsigned int plen)
{
	unsigned int	 full, rest;
	uint8_t		 mask;

	full = plen / 8;
	rest = plen % 8;
	if (memcmp(a, prefix, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (uint8_t)(0xff << (8 - rest));
	return (a[full] & mask) == (prefix[full] & mask);
}

const char *
addr_blocked_v6(const uint8_t a[16])
{
	const struct addr_v6_range	*r;
	uint8_t				 v4[4];
	size_t				 i, j;
	int				 k;

	for (i = 0; i < ADDR_V6_NRANGES; i++) {
		r = &addr_v6_ranges[i];
		if (!addr_v6_match(a, r->prefix, r->plen))
			continue;
		if (r->why != NULL)
			return r->why;
		for (j = 0; j < sizeof(v4); j++)
			v4[j] = a[r->v4_off + j] ^ r->v4_xor;
		if ((k = addr_v4_index(v4)) >= 0)
			return addr_reasons[r->embed][k];
	}
	return NULL;
}

const char *
addr_blocked_sa(const struct sockaddr *sa)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;

	if (sa == NULL)
		return "unsupported address family";
	switch (sa->sa_family) {
	case AF_INET:
		sin = (const struct sockaddr_in *)(const void *)sa;
		return addr_blocked_v4((const uint8_t *)&sin->sin_addr.s_addr);
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		return addr_blocked_v6(sin6->sin6_addr.s6_addr);
	default:
		return "unsupported address family";
	}
}

/*
 * Host text as found in URLs and configuration: "1.2.3.4", "1.2.3.4."
 * (a fully qualified literal), "::1", "[::1]", "[fe80::1%25eth0]" or
 * "fe80::1%eth0". Text with a colon or in brackets cannot be a host name,
 * so when inet_pton refuses it, it is reported as a blocked literal.
 */
int
addr_literal_check(const char *host, const char **why)
{
	char		 text[INET6_ADDRSTRLEN];
	uint8_t		 a[16];
	const char	*p, *end, *zone;
	size_t		 n;
	int		 bracketed;

	*why = NULL;
	if (host == NULL)
		return 0;
	n = strlen(host);
	p = host;
	bracketed = n >= 2 && host[0] == '[' && host[n - 1] == ']';
	if (bracketed) {
		p++;
		n -= 2;
	}
	end = p + n;
	if (!bracketed && memchr(p, ':', n) == NULL) {
		if (n > 0 && p[n - 1] == '.')
			n--;
		if (n >= sizeof(text))
			return 0;
		memcpy(text, p, n);
		text[n] = '\0';
		if (inet_pton(AF_INET, text, a) != 1)
			return 0;
		*why = addr_blocked_v4(a);
		return 1;
	}
	if ((zone = memchr(p, '%', n)) != NULL)
		end = zone;
	n = (size_t)(end - p);
	if (n >= sizeof(text)) {
		*why = "invalid IP literal";
		return 1;
	}
	memcpy(text, p, n);
	text[n] = '\0';
	if (inet_pton(AF_INET6, text, a) != 1) {
		*why = "invalid IP literal";
		return 1;
	}
	*why = addr_blocked_v6(a);
	return 1;
}
