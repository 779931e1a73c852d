/* retry.c: the retry schedule, its jitter, and Retry-After handling. */
#include "config.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "retry.h"

/* Saturation point for Retry-After: far beyond any clamp (about 31 years). */
#define RETRY_RA_MAX	1e9

static const struct {
	char		 unit;
	unsigned int	 secs;
} retry_units[] = {
	{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
};
#define RETRY_NUNITS	(sizeof(retry_units) / sizeof(retry_units[0]))

/* Parses one item [start, end) into seconds; -1 with err set if bad. */
static int
retry_item(const char *start, const char *end, unsigned int idx,
    unsigned int *out, char *err, size_t errlen)
{
	const char	*p, *q;
	uint64_t	 v = 0;
	size_t		 i;
	int		 len;

	while (start < end && (*start == ' ' || *start == '\t'))
		start++;
	while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	len = end - start > 32 ? 32 : (int)(end - start);
	if (start == end) {
		snprintf(err, errlen, "retry schedule item %u is empty", idx);
		return -1;
	}
	for (p = start; p < end && isdigit((unsigned char)*p); p++) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > RETRY_ITEM_MAX) {
			snprintf(err, errlen, "retry schedule item %u "
			    "(\"%.*s\") is longer than 30 days", idx, len,
			    start);
			return -1;
		}
	}
	/* Exactly one unit letter must follow the digits, and end the item. */
	q = p;
	i = RETRY_NUNITS;
	if (q != start && q + 1 == end)
		for (i = 0; i < RETRY_NUNITS; i++)
			if (retry_units[i].unit == *q)
				break;
	if (i == RETRY_NUNITS) {
		snprintf(err, errlen, "retry schedule item %u (\"%.*s\") is "
		    "not a whole number followed by s, m, h or d", idx, len,
		    start);
		return -1;
	}
	v *= retry_units[i].secs;
	if (v == 0) {
		snprintf(err, errlen, "retry schedule item %u (\"%.*s\") must "
		    "be at least 1 second", idx, len, start);
		return -1;
	}
	if (v > RETRY_ITEM_MAX) {
		snprintf(err, errlen, "retry schedule item %u (\"%.*s\") is "
		    "longer than 30 days", idx, len, start);
		return -1;
	}
	*out = (unsigned int)v;
	return 0;
}

int
retry_parse(const char *text, struct retry_sched *s, char *err,
    size_t errlen)
{
	const char	*p, *comma;
	struct retry_sched	 tmp;

	memset(&tmp, 0, sizeof(tmp));
	if (text == NULL || text[strspn(text, " \t")] == '\0') {
		snprintf(err, errlen, "retry schedule is empty");
		return -1;
	}
	for (p = text;; p = comma + 1) {
		if ((comma = strchr(p, ',')) == NULL)
			comma = p + strlen(p);
		if (tmp.n == RETRY_MAX) {
			snprintf(err, errlen, "retry schedule has more than %d "
			    "items", RETRY_MAX);
			return -1;
		}
		if (retry_item(p, comma, tmp.n + 1, &tmp.secs[tmp.n], err,
		    errlen) == -1)
			return -1;
		tmp.n++;
		if (*comma == '\0')
			break;
	}
	*s = tmp;
	return 0;
}

double
retry_delay(const struct retry_sched *s, int n, double u)
{
	if (n < 1 || (unsigned int)n > s->n)
		return -1;
	if (u < 0)
		u = 0;
	if (u > 1)
		u = 1;
	/* 0.8 + 0.4u, written so that both ends are exact. */
	return s->secs[n - 1] * (4 + 2 * u) / 5;
}

double
retry_uniform(void)
{
	uint32_t	 r;

	/* Jitter spreads retries out; a failed RNG only loses the spread. */
	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		return 0.5;
	return r / 4294967296.0;
}

/* Matches value against one strptime format, the whole of it. */
static int
retry_date(const char *value, const char *fmt, time_t *t)
{
	struct tm	 tm;
	const char	*end;

	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(value, fmt, &tm)) == NULL || *end != '\0')
		return -1;
	if ((*t = timegm(&tm)) == (time_t)-1)
		return -1;
	return 0;
}

int
retry_after_parse(const char *value, time_t now, double *secs)
{
	/* RFC 9110 section 5.6.7: the preferred form and two obsolete ones. */
	static const char *const fmts[] = {
		"%a, %d %b %Y %H:%M:%S GMT",
		"%A, %d-%b-%y %H:%M:%S GMT",
		"%a %b %e %H:%M:%S %Y",
	};
	char		 v[64];
	size_t		 len, i;
	double		 d;
	time_t		 t;

	while (*value == ' ' || *value == '\t')
		value++;
	len = strlen(value);
	while (len > 0 && isspace((unsigned char)value[len - 1]))
		len--;
	if (len == 0 || len >= sizeof(v))
		return -1;
	memcpy(v, value, len);
	v[len] = '\0';

	if (strspn(v, "0123456789") == len) {
		d = 0;
		for (i = 0; i < len && d < RETRY_RA_MAX; i++)
			d = d * 10 + (v[i] - '0');
		*secs = d < RETRY_RA_MAX ? d : RETRY_RA_MAX;
		return 0;
	}
	for (i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		if (retry_date(v, fmts[i], &t) == 0) {
			d = difftime(t, now);
			*secs = d < 0 ? 0 : d > RETRY_RA_MAX ? RETRY_RA_MAX : d;
			return 0;
		}
	}
	return -1;
}

double
retry_clamp(double scheduled, double retry_after)
{
	if (retry_after < scheduled)
		return scheduled;
	if (retry_after > 2 * scheduled)
		return 2 * scheduled;
	return retry_after;
}
