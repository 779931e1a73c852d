/* resolve.h: SSRF guard at send time: resolve, check every address, pin. */
#ifndef DLR_RESOLVE_H
#define DLR_RESOLVE_H

#include <netdb.h>

/* getaddrinfo and freeaddrinfo, replaceable so that tests fake the DNS. */
typedef int	(*resolve_gai_fn)(const char *, const char *,
		    const struct addrinfo *, struct addrinfo **);
typedef void	(*resolve_freeai_fn)(struct addrinfo *);

/* Where one attempt may go; every member is owned (resolve_dest_clear). */
struct resolve_dest {
	char		*host;	/* the URL's host, without IPv6 brackets */
	unsigned int	 port;	/* 443 unless the URL says otherwise */
	char		*pin;	/* "+host:port:addr,..." for CURLOPT_RESOLVE;
				   NULL when the host is an IP literal */
	char		*error;	/* why not to connect; NULL when allowed */
};

/*
 * A resolver with a per-host cache of ttl seconds (from the end of each
 * lookup), so that a batch of many events for one host resolves it once.
 * allow_private lifts the address check (DLRHOOK_ALLOW_PRIVATE=1);
 * resolving and pinning remain.
 */
struct resolve	*resolve_new(int allow_private, double ttl);
void		 resolve_set_gai(struct resolve *, resolve_gai_fn,
		    resolve_freeai_fn);
void		 resolve_free(struct resolve *);

/*
 * Parses url with curl_url, resolves its host (getaddrinfo, AF_UNSPEC;
 * IP literals are checked directly) and checks every address with
 * addr_blocked_sa. now is any monotonic clock in seconds. Always fills
 * dest; returns 0 when the destination may be contacted, else -1 with
 * dest->error set ("blocked destination: 10.0.0.1 is private
 * (10.0.0.0/8)", "DNS: host not found", ...).
 */
int		 resolve_dest(struct resolve *, const char *url, double now,
		    struct resolve_dest *dest);
void		 resolve_dest_clear(struct resolve_dest *);

/* Drops cache entries older than their ttl. */
void		 resolve_expire(struct resolve *, double now);

#endif
