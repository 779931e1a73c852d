/* url.h: validation of customer callback URLs with libcurl's URL API. */
#ifndef DLR_URL_H
#define DLR_URL_H

#include <stdbool.h>
#include <stddef.h>

#define URL_MAX_LEN	2048

/*
 * Checks a callbackUrl. Returns 0 when acceptable; otherwise -1 and sets
 * *detail to a malloc'd sentence, for the caller to free, saying what to fix
 * and naming the offending address and its range where that helps
 * ("callbackUrl host 10.0.0.1 is a private (10.0.0.0/8) address").
 * allow_private lifts the refusal of private, loopback and reserved IP
 * literals and of localhost.
 */
int	url_check_callback(const char *url, size_t len, bool allow_private,
	    char **detail);

#endif
