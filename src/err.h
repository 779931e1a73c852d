/* err.h: the one error enum, and its mapping to HTTP statuses. */
#ifndef DLR_ERR_H
#define DLR_ERR_H

enum dlr_err {
	DLR_OK = 0,
	DLR_ERR_BAD_REQUEST,		/* 400 */
	DLR_ERR_UNAUTHORIZED,		/* 401 */
	DLR_ERR_NOT_FOUND,		/* 404: no such path */
	DLR_ERR_NO_WEBHOOK,		/* 404: the account has no webhook */
	DLR_ERR_METHOD,			/* 405 */
	DLR_ERR_CONFLICT,		/* 409 */
	DLR_ERR_TOO_LARGE,		/* 413 */
	DLR_ERR_MEDIA_TYPE,		/* 415 */
	DLR_ERR_INTERNAL,		/* 500 */
	DLR_ERR__MAX
};

/* HTTP status of an error (200 for DLR_OK). */
int		 err_status(enum dlr_err);
/* RFC 9457 "title": the reason phrase. */
const char	*err_title(enum dlr_err);
/* RFC 9457 "type": a stable URI naming the problem. */
const char	*err_type(enum dlr_err);
/* A default detail, used when the caller has nothing more specific. */
const char	*err_detail(enum dlr_err);
/* Reason phrase for a numeric status, for the Status: line. */
const char	*err_reason(int status);

#endif
