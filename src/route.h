/* route.h: maps a request path to one of the API's resources. */
#ifndef DLR_ROUTE_H
#define DLR_ROUTE_H

#include "req.h"

enum route {
	ROUTE_WEBHOOK,		/* /delivery-status */
	ROUTE_SECRET,		/* /delivery-status/secret */
	ROUTE_ROTATE,		/* /delivery-status/secret/rotate */
	ROUTE_NONE,
	ROUTE__MAX
};

/*
 * The web server mounts the application at <prefix>/webhooks, so PATH_INFO
 * is what follows: "/delivery-status", ".../secret", ".../secret/rotate".
 */
enum route	 route_match(const char *path);
/* Whether the method is served on the route. */
int		 route_allows(enum route, enum req_method);
/* The Allow header value for a route. */
const char	*route_allow_header(enum route);

#endif
