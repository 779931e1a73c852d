/* fuzz_retry.c: the retry-schedule parser and the Retry-After parser. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fuzz.h"
#include "retry.h"

/*
 * The input: byte 0 sizes the error buffer (1..64 bytes, to try the
 * parser's truncation), the rest is the text, cut at a NUL as a C string.
 * The same text goes to retry_parse, judged against a small grammar of its
 * own, and to retry_after_parse.
 */

/* A fixed "now": 2026-04-09T10:30:00Z. */
#define NOW	((time_t)1775730600)

/*
 * The schedule grammar, written independently of retry.c: items split at
 * commas, each blanks (space, tab), digits, one unit letter, blanks; at
 * most RETRY_MAX items, each 1 s to 30 days. Returns the item count, or -1.
 */
static int
oracle_parse(const char *text, unsigned int *secs)
{
	const char	*p = text;
	unsigned long long v;
	unsigned int	 n = 0;
	int		 digits;

	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		v = 0;
		digits = 0;
		while (*p >= '0' && *p <= '9') {
			if (v <= RETRY_ITEM_MAX)
				v = v * 10 + (unsigned)(*p - '0');
			p++;
			digits++;
		}
		if (digits == 0)
			return -1;
		switch (*p++) {
		case 's': break;
		case 'm': v *= 60; break;
		case 'h': v *= 3600; break;
		case 'd': v *= 86400; break;
		default: return -1;
		}
		if (v < 1 || v > RETRY_ITEM_MAX || n == RETRY_MAX)
			return -1;
		secs[n++] = (unsigned int)v;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			return (int)n;
		if (*p++ != ',')
			return -1;
	}
}

static void
check_schedule(const char *text, size_t errlen)
{
	struct retry_sched	 s, again, before;
	unsigned int		 secs[RETRY_MAX];
	char			 err[64], out[RETRY_MAX * 16];
	size_t			 i, off;
	double			 d;
	int			 n, rc;

	memset(&s, 0xa5, sizeof(s));
	before = s;
	memset(err, 'X', sizeof(err));
	rc = retry_parse(text, &s, err, errlen);
	n = oracle_parse(text, secs);
	FUZZ_CHECK(rc == 0 || rc == -1);
	FUZZ_CHECK((rc == 0) == (n >= 0));
	if (rc == -1) {
		/* The schedule is left alone; the message fits, NUL and all. */
		FUZZ_CHECK(memcmp(&s, &before, sizeof(s)) == 0);
		FUZZ_CHECK(memchr(err, '\0', errlen) != NULL);
		FUZZ_CHECK(errlen == 1 || err[0] != '\0');
		for (i = errlen; i < sizeof(err); i++)
			FUZZ_CHECK(err[i] == 'X');
		return;
	}
	FUZZ_CHECK(s.n == (unsigned int)n && s.n >= 1 && s.n <= RETRY_MAX);
	for (i = 0; i < s.n; i++) {
		FUZZ_CHECK(s.secs[i] == secs[i]);
		/* The jitter keeps each delay within +-20 %, ends included. */
		d = retry_delay(&s, (int)i + 1, 0);
		FUZZ_CHECK(d == s.secs[i] * 4.0 / 5);
		d = retry_delay(&s, (int)i + 1, 1);
		FUZZ_CHECK(d == s.secs[i] * 6.0 / 5);
		d = retry_delay(&s, (int)i + 1, 0.5);
		FUZZ_CHECK(d == s.secs[i]);
	}
	FUZZ_CHECK(retry_delay(&s, 0, 0.5) < 0);
	FUZZ_CHECK(retry_delay(&s, (int)s.n + 1, 0.5) < 0);

	/* Written back in seconds, it parses to the same schedule. */
	for (i = 0, off = 0; i < s.n; i++)
		off += (size_t)snprintf(out + off, sizeof(out) - off, "%s%us",
		    i > 0 ? "," : "", s.secs[i]);
	FUZZ_CHECK(retry_parse(out, &again, err, sizeof(err)) == 0);
	FUZZ_CHECK(again.n == s.n &&
	    memcmp(again.secs, s.secs, s.n * sizeof(s.secs[0])) == 0);
}

static void
check_retry_after(const char *text)
{
	double		 secs, later, c;
	const char	*p;
	size_t		 n;
	bool		 delta;
	int		 rc;

	rc = retry_after_parse(text, NOW, &secs);
	FUZZ_CHECK(rc == 0 || rc == -1);
	/* Delta-seconds (up to 63 digits), blanks around them, always parse. */
	p = text + strspn(text, " \t");
	n = strspn(p, "0123456789");
	delta = n > 0 && strspn(p + n, " \t\r\n\v\f") == strlen(p + n);
	if (delta && n < 64)
		FUZZ_CHECK(rc == 0);
	if (rc == -1)
		return;
	FUZZ_CHECK(isfinite(secs) && secs >= 0 && secs <= 1e9);
	if (delta && n <= 9)
		FUZZ_CHECK(secs == strtod(p, NULL));
	/* A date is a point in time: an hour later, an hour less to wait. */
	FUZZ_CHECK(retry_after_parse(text, NOW + 3600, &later) == 0);
	if (delta)
		FUZZ_CHECK(later == secs);
	else if (secs < 1e9)
		FUZZ_CHECK(later == (secs > 3600 ? secs - 3600 : 0));
	/* Honoured within [scheduled, 2 x scheduled]. */
	c = retry_clamp(300, secs);
	FUZZ_CHECK(c >= 300 && c <= 600);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*text;
	size_t	 errlen;

	if (size == 0)
		return 0;
	errlen = 1 + data[0] % 64;
	text = fuzz_cstr(data + 1, size - 1);
	check_schedule(text, errlen);
	check_retry_after(text);
	free(text);
	return 0;
}
