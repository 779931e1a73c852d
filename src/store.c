/* store.c: what all storage backends share. */
#include "config.h"

#include <stdlib.h>

#include "store.h"

static const char *const status_names[WEBHOOK__MAX] = {
	[WEBHOOK_ACTIVE] = "ACTIVE",
	[WEBHOOK_DISABLED] = "DISABLED",
};

const char *
webhook_status_name(enum webhook_status s)
{
	return s < WEBHOOK__MAX ? status_names[s] : "DISABLED";
}

void
webhook_clear(struct webhook *w)
{
	if (w == NULL)
		return;
	free(w->id);
	free(w->callback_url);
	free(w->created_at);
	free(w->updated_at);
	w->id = w->callback_url = w->created_at = w->updated_at = NULL;
	w->status = WEBHOOK_ACTIVE;
}

void
store_free(struct store *s)
{
	if (s == NULL)
		return;
	s->ops->free(s->ctx);
	free(s);
}
