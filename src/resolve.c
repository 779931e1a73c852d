/* resolve.c: SSRF guard at send time: resolve, check every address, pin. */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "addr.h"
#include "resolve.h"
#include "util.h"

#define RESOLVE_BUCKETS		256
#define RESOLVE_MAX_ENTRIES	4096	/* beyond this the cache starts over */
#define RESOLVE_MAX_ADDRS	16	/* addresses pinned per host */

/* The outcome of resolving one host: addresses, or why not to connect. */
struct resolve_entry {
	char			*host;
	char			*addrs;	/* "1.2.3.4,[2001:db8::1]" */
	char			*error;
	double			 expires;
	struct resolve_entry	*next;
};

struct resolve {
	int			 allow_private;
	double			 ttl;
	resolve_gai_fn		 gai;
	resolve_freeai_fn	 freeai;
	size_t			 count;
	struct resolve_entry	*buckets[RESOLVE_BUCKETS];
};

struct resolve *
resolve_new(int allow_private, double ttl)
{
	struct resolve	*r;

	r = xcalloc(1, sizeof(*r));
	r->allow_private = allow_private;
	r->ttl = ttl;
	r->gai = getaddrinfo;
	r->freeai = freeaddrinfo;
	return r;
}

void
resolve_set_gai(struct resolve *r, resolve_gai_fn gai, resolve_freeai_fn fr)
{
	r->gai = gai;
	r->freeai = fr;
}

static void
resolve_entry_free(struct resolve_entry *e)
{
	if (e == NULL)
		return;
	free(e->host);
	free(e->addrs);
	free(e->error);
	free(e);
}

/* Drops the expired entries, or all of them. */
static void
resolve_sweep(struct resolve *r, double now, int all)
{
	struct resolve_entry	**pp, *e;
	size_t			  i;

	for (i = 0; i < RESOLVE_BUCKETS; i++) {
		for (pp = &r->buckets[i]; (e = *pp) != NULL;) {
			if (all || e->expires <= now) {
				*pp = e->next;
				resolve_entry_free(e);
				r->count--;
			} else
				pp = &e->next;
		}
	}
}

void
resolve_expire(struct resolve *r, double now)
{
	resolve_sweep(r, now, 0);
}

void
resolve_free(struct resolve *r)
{
	if (r == NULL)
		return;
	resolve_sweep(r, 0, 1);
	free(r);
}

void
resolve_dest_clear(struct resolve_dest *d)
{
	free(d->host);
	free(d->pin);
	free(d->error);
	memset(d, 0, sizeof(*d));
}

/* FNV-1a: host names are short and the table only needs to spread them. */
static size_t
resolve_hash(const char *s)
{
	uint32_t	 h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % RESOLVE_BUCKETS;
}

/* Whether addr is one of the items of the comma-separated list. */
static int
resolve_listed(const char *list, const char *addr)
{
	size_t	 len = strlen(addr);

	for (; list != NULL; list = strchr(list, ',')) {
		if (*list == ',')
			list++;
		if (strncmp(list, addr, len) == 0 &&
		    (list[len] == ',' || list[len] == '\0'))
			return 1;
	}
	return 0;
}

static char *
resolve_blocked(const char *addr, const char *why)
{
	return xasprintf("blocked destination: %s is %s", addr, why);
}

static char *
resolve_gai_error(int rc)
{
	switch (rc) {
	case EAI_NONAME:
#ifdef EAI_NODATA
	case EAI_NODATA:
#endif
		return xstrdup("DNS: host not found");
	case EAI_AGAIN:
		return xstrdup("DNS: temporary failure, try again");
	default:
		return xasprintf("DNS: %s", gai_strerror(rc));
	}
}

/*
 * Resolves host and fills a new entry: the deduplicated addresses, or the
 * first blocked one (any blocked address refuses the host: a name that
 * mixes public and internal addresses is not to be trusted).
 */
static struct resolve_entry *
resolve_lookup(struct resolve *r, const char *host)
{
	struct resolve_entry	*e;
	struct addrinfo		 hints, *res = NULL, *ai;
	struct buf		 addrs;
	char			 text[INET6_ADDRSTRLEN];
	char			 item[INET6_ADDRSTRLEN + 2];
	const void		*raw;
	const char		*why;
	int			 rc, n = 0;

	e = xcalloc(1, sizeof(*e));
	e->host = xstrdup(host);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = r->gai(host, NULL, &hints, &res)) != 0) {
		e->error = resolve_gai_error(rc);
		return e;
	}
	buf_init(&addrs);
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET)
			raw = &((const struct sockaddr_in *)(void *)
			    ai->ai_addr)->sin_addr;
		else if (ai->ai_family == AF_INET6)
			raw = &((const struct sockaddr_in6 *)(void *)
			    ai->ai_addr)->sin6_addr;
		else
			continue;
		if (inet_ntop(ai->ai_family, raw, text, sizeof(text)) == NULL)
			continue;
		if (!r->allow_private &&
		    (why = addr_blocked_sa(ai->ai_addr)) != NULL) {
			e->error = resolve_blocked(text, why);
			break;
		}
		/* CURLOPT_RESOLVE takes IPv6 addresses bracketed. */
		snprintf(item, sizeof(item), ai->ai_family == AF_INET6 ?
		    "[%s]" : "%s", text);
		if (resolve_listed(addrs.data, item))
			continue;	/* the same address twice */
		if (n == RESOLVE_MAX_ADDRS)
			continue;
		if (n++ > 0)
			buf_puts(&addrs, ",");
		buf_puts(&addrs, item);
	}
	r->freeai(res);
	if (e->error == NULL && n == 0)
		e->error = xstrdup("DNS: no IPv4 or IPv6 address for host");
	if (e->error == NULL)
		e->addrs = buf_release(&addrs);
	buf_free(&addrs);
	return e;
}

/* The cached entry for host, resolving it when missing or stale. */
static const struct resolve_entry *
resolve_cached(struct resolve *r, const char *host, double now)
{
	struct resolve_entry	**pp, *e;
	size_t			  h = resolve_hash(host);
	double			  t0;

	for (pp = &r->buckets[h]; (e = *pp) != NULL; pp = &e->next) {
		if (strcmp(e->host, host) != 0)
			continue;
		if (e->expires > now)
			return e;
		*pp = e->next;
		resolve_entry_free(e);
		r->count--;
		break;
	}
	if (r->count >= RESOLVE_MAX_ENTRIES)
		resolve_sweep(r, now, 1);
	/* The ttl counts from the answer: a lookup slower than the ttl
	 * must still serve the jobs that waited for it. */
	t0 = clock_seconds(CLOCK_MONOTONIC);
	e = resolve_lookup(r, host);
	e->expires = now + (clock_seconds(CLOCK_MONOTONIC) - t0) + r->ttl;
	e->next = r->buckets[h];
	r->buckets[h] = e;
	r->count++;
	return e;
}

/* Copies a URL part, or NULL; the curl_url allocation is freed here. */
static char *
resolve_part(CURLU *u, CURLUPart part, unsigned int flags, CURLUcode *rc)
{
	char	*s = NULL, *copy;

	if ((*rc = curl_url_get(u, part, &s, flags)) != CURLUE_OK) {
		curl_free(s);	/* libcurl 7.88 leaves it set when IDN fails */
		return NULL;
	}
	copy = xstrdup(s);
	curl_free(s);
	return copy;
}

int
resolve_dest(struct resolve *r, const char *url, double now,
    struct resolve_dest *d)
{
	const struct resolve_entry	*e;
	CURLU				*u;
	CURLUcode			 rc;
	char				*scheme = NULL, *host = NULL;
	char				*port = NULL;
	const char			*why;
	unsigned int			 hflags = 0;
	size_t				 len;
	long				 p;

	memset(d, 0, sizeof(*d));
#ifdef CURLU_PUNYCODE
	hflags |= CURLU_PUNYCODE;	/* the name curl itself resolves */
#endif
	if ((u = curl_url()) == NULL)
		abort();
	if ((rc = curl_url_set(u, CURLUPART_URL, url, 0)) != CURLUE_OK ||
	    (scheme = resolve_part(u, CURLUPART_SCHEME, 0, &rc)) == NULL ||
	    (port = resolve_part(u, CURLUPART_PORT, CURLU_DEFAULT_PORT,
	    &rc)) == NULL) {
		d->error = xasprintf("invalid callback URL: %s",
		    curl_url_strerror(rc));
		goto done;
	}
	/* libidn2 reads the name in the locale's charset: main() sets a
	 * UTF-8 LC_CTYPE; without one an international name fails here. */
	if ((host = resolve_part(u, CURLUPART_HOST, hflags, &rc)) == NULL) {
		d->error = xasprintf("invalid callback URL: the host name "
		    "cannot be converted to ASCII (%s)", curl_url_strerror(rc));
		goto done;
	}
	if (strcmp(scheme, "https") != 0) {
		d->error = xstrdup("callback URL is not https");
		goto done;
	}
	p = strtol(port, NULL, 10);
	d->port = p > 0 && p < 65536 ? (unsigned int)p : 443;

	/* IPv6 literals come bracketed: checked as such, kept bare. */
	len = strlen(host);
	if (host[0] == '[' && len > 2 && host[len - 1] == ']')
		d->host = xstrndup(host + 1, len - 2);
	else
		d->host = xstrdup(host);

	if (addr_literal_check(host, &why)) {
		if (why != NULL && !r->allow_private)
			d->error = resolve_blocked(d->host, why);
		goto done;
	}
	e = resolve_cached(r, d->host, now);
	if (e->error != NULL)
		d->error = xstrdup(e->error);
	else
		/* "+": libcurl lets the entry age out of its DNS cache like
		 * one it resolved itself. Without it the entry is kept for
		 * good, and a --follow sender delivering to ever more hosts
		 * would grow that cache (and the walk over it that ends each
		 * transfer) for as long as it runs. Every transfer pins its
		 * host again, so the entry is there whenever it is used. */
		d->pin = xasprintf("+%s:%u:%s", d->host, d->port, e->addrs);
done:
	curl_url_cleanup(u);
	free(scheme);
	free(host);
	free(port);
	return d->error == NULL ? 0 : -1;
}
