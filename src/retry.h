/* retry.h: the retry schedule, its jitter, and Retry-After handling. */
#ifndef DLR_RETRY_H
#define DLR_RETRY_H

#include <stddef.h>
#include <time.h>

#define RETRY_DEFAULT	"5s,5m,30m,2h,5h,10h,10h"
#define RETRY_MAX	32		/* entries */
#define RETRY_ITEM_MAX	(30 * 86400)	/* seconds in one entry */

/* secs[i] is the delay after failed attempt i + 1. */
struct retry_sched {
	unsigned int	 n;
	unsigned int	 secs[RETRY_MAX];
};

/*
 * Parses a comma-separated list of whole numbers, each with a unit s, m,
 * h or d ("5s,5m,30m"); blanks around an item are allowed, nothing else.
 * Returns 0, or -1 with a sentence in err (errlen bytes) naming the item.
 */
int	 retry_parse(const char *text, struct retry_sched *, char *err,
	    size_t errlen);

/*
 * The delay in seconds after failed attempt n (1-based): the entry times
 * a jitter factor 0.8 + 0.4u, u a uniform draw in [0, 1]. Returns -1 when
 * n is past the last entry: the notification is then a dead letter.
 */
double	 retry_delay(const struct retry_sched *, int n, double u);

/* A uniform draw in [0, 1) from the system's random source. */
double	 retry_uniform(void);

/*
 * Parses a Retry-After value, delta-seconds or an HTTP-date (IMF-fixdate,
 * RFC 850 or asctime form), into seconds from now (a date in the past
 * gives 0; absurdly large values saturate). Returns -1 when the value is
 * neither, so that the caller ignores it.
 */
int	 retry_after_parse(const char *value, time_t now, double *secs);

/* A server's Retry-After is honoured within [scheduled, 2 x scheduled]. */
double	 retry_clamp(double scheduled, double retry_after);

#endif
