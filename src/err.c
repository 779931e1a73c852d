/* err.c: the one place where an error becomes an HTTP status and a problem. */
#include "config.h"

#include <stddef.h>

#include "err.h"

/* Problem types are URNs: stable names that promise no web page. */
#define TYPE_BASE	"urn:problem-type:dlrhook:"

static const struct {
	int		 status;
	const char	*title;
	const char	*type;
	const char	*detail;
} errs[DLR_ERR__MAX] = {
	[DLR_OK] = { 200, "OK", "about:blank", "" },
	[DLR_ERR_BAD_REQUEST] = { 400, "Bad Request", TYPE_BASE "invalid-body",
	    "The request body is invalid; send {\"callbackUrl\":\"https://...\"}." },
	[DLR_ERR_UNAUTHORIZED] = { 401, "Unauthorized", TYPE_BASE "unauthorized",
	    "Missing or invalid API key; send a valid key in the X-API-Key header." },
	[DLR_ERR_NOT_FOUND] = { 404, "Not Found", TYPE_BASE "not-found",
	    "No such resource; the webhook lives at /webhooks/delivery-status." },
	[DLR_ERR_NO_WEBHOOK] = { 404, "Not Found", TYPE_BASE "no-webhook",
	    "No delivery-status webhook is configured for this account; "
	    "create one with POST /webhooks/delivery-status." },
	[DLR_ERR_METHOD] = { 405, "Method Not Allowed", TYPE_BASE "method-not-allowed",
	    "This method is not supported on this resource; see the Allow header." },
	[DLR_ERR_CONFLICT] = { 409, "Conflict", TYPE_BASE "webhook-exists",
	    "A delivery-status webhook is already configured for this account; "
	    "use PUT /webhooks/delivery-status to change its URL, or DELETE it first." },
	[DLR_ERR_TOO_LARGE] = { 413, "Content Too Large", TYPE_BASE "body-too-large",
	    "The request body is larger than 65536 bytes; send only "
	    "{\"callbackUrl\":\"https://...\"}." },
	[DLR_ERR_MEDIA_TYPE] = { 415, "Unsupported Media Type",
	    TYPE_BASE "unsupported-media-type",
	    "Send the body as JSON with the header Content-Type: application/json." },
	[DLR_ERR_INTERNAL] = { 500, "Internal Server Error", TYPE_BASE "internal",
	    "The service could not complete the request; try again later." },
};

int
err_status(enum dlr_err e)
{
	return e < DLR_ERR__MAX ? errs[e].status : 500;
}

const char *
err_title(enum dlr_err e)
{
	return e < DLR_ERR__MAX ? errs[e].title : errs[DLR_ERR_INTERNAL].title;
}

const char *
err_type(enum dlr_err e)
{
	return e < DLR_ERR__MAX ? errs[e].type : errs[DLR_ERR_INTERNAL].type;
}

const char *
err_detail(enum dlr_err e)
{
	return e < DLR_ERR__MAX ? errs[e].detail : errs[DLR_ERR_INTERNAL].detail;
}

const char *
err_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 500: return "Internal Server Error";
	default: return "Unknown";
	}
}
