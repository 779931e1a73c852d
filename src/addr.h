/* addr.h: classifies IP addresses as public or blocked (SSRF guard). */
#ifndef DLR_ADDR_H
#define DLR_ADDR_H

#include <stdint.h>
#include <sys/socket.h>

/*
 * Returns NULL when the address may be contacted, otherwise a short
 * human-readable reason ("loopback", "private (10.0.0.0/8)", ...).
 * IPv6 forms that embed an IPv4 address (IPv4-mapped, IPv4-compatible,
 * 6to4, NAT64, Teredo) are judged by the embedded address too.
 */
const char	*addr_blocked_v4(const uint8_t a[4]);
const char	*addr_blocked_v6(const uint8_t a[16]);
const char	*addr_blocked_sa(const struct sockaddr *);
/* Parses a textual IP literal (IPv6 may be bracketed, with a zone id);
 * returns 1 and sets *why (NULL when allowed) if it is one, 0 if not. */
int		 addr_literal_check(const char *host, const char **why);

#endif
