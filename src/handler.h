/* handler.h: the API's request handlers: request and store in, response out. */
#ifndef DLR_HANDLER_H
#define DLR_HANDLER_H

#include <stdbool.h>

#include "req.h"
#include "resp.h"
#include "store.h"

struct app_config {
	bool	allow_private;	/* DLRHOOK_ALLOW_PRIVATE=1 */
};

/* Never returns NULL; the caller frees the response. */
struct response	*handle_request(const struct request *, struct store *,
		    const struct app_config *);

#endif
