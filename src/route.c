/* route.c: maps a request path to one of the API's resources. */
#include "config.h"

#include <string.h>

#include "route.h"

static const struct {
	const char	*path;
	const char	*allow;
	unsigned	 methods;	/* bit per enum req_method */
} routes[ROUTE__MAX] = {
	[ROUTE_WEBHOOK] = { "/delivery-status", "GET, POST, PUT, DELETE",
	    1u << REQ_GET | 1u << REQ_POST | 1u << REQ_PUT | 1u << REQ_DELETE },
	[ROUTE_SECRET] = { "/delivery-status/secret", "GET", 1u << REQ_GET },
	[ROUTE_ROTATE] = { "/delivery-status/secret/rotate", "POST",
	    1u << REQ_POST },
	[ROUTE_NONE] = { NULL, NULL, 0 },
};

enum route
route_match(const char *path)
{
	int	 i;

	if (path == NULL)
		return ROUTE_NONE;
	for (i = 0; i < ROUTE__MAX; i++)
		if (routes[i].path != NULL && strcmp(path, routes[i].path) == 0)
			return (enum route)i;
	return ROUTE_NONE;
}

int
route_allows(enum route r, enum req_method m)
{
	if (r >= ROUTE__MAX || m >= REQ__MAX)
		return 0;
	return (routes[r].methods & (1u << m)) != 0;
}

const char *
route_allow_header(enum route r)
{
	return r < ROUTE__MAX ? routes[r].allow : NULL;
}
