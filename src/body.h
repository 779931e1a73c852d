/* body.h: parses the JSON body of POST and PUT /webhooks/delivery-status. */
#ifndef DLR_BODY_H
#define DLR_BODY_H

#include <stdbool.h>
#include <stddef.h>

/* Deepest JSON nesting accepted; the body is one flat object. */
#define BODY_MAX_DEPTH	8

/*
 * Parses {"callbackUrl":"https://..."} and validates the URL. On success
 * returns 0 and *url is a malloc'd copy for the caller to free. On failure
 * returns -1 and *detail is a malloc'd sentence saying what to fix.
 */
int	body_parse_callback(const char *body, size_t len, bool allow_private,
	    char **url, char **detail);

#endif
