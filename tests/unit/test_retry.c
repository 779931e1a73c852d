/* test_retry.c: the retry schedule parses strictly, jitters within 20%,
 * and a Retry-After is parsed and clamped. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "retry.h"

static void
default_schedule_parses(void **state)
{
	static const unsigned int want[] = {
		5, 300, 1800, 7200, 18000, 36000, 36000,
	};
	struct retry_sched	 s;
	char			 err[256];
	size_t			 i;

	(void)state;
	assert_int_equal(retry_parse(RETRY_DEFAULT, &s, err, sizeof(err)), 0);
	assert_int_equal(s.n, 7);
	for (i = 0; i < 7; i++)
		assert_int_equal(s.secs[i], want[i]);
}

static void
good_schedules_parse(void **state)
{
	static const struct {
		const char	*text;
		unsigned int	 n;
		unsigned int	 first, last;
	} good[] = {
		{ "5s", 1, 5, 5 },
		{ "1m", 1, 60, 60 },
		{ "2h", 1, 7200, 7200 },
		{ "1d", 1, 86400, 86400 },
		{ "30d", 1, 2592000, 2592000 },
		{ "2592000s", 1, 2592000, 2592000 },
		{ " 5s , 10m ", 2, 5, 600 },
		{ "1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,"
		  "1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,2s", 32, 1, 2 },
	};
	struct retry_sched	 s;
	char			 err[256];
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (retry_parse(good[i].text, &s, err, sizeof(err)) != 0)
			fail_msg("\"%s\" refused: %s", good[i].text, err);
		assert_int_equal(s.n, good[i].n);
		assert_int_equal(s.secs[0], good[i].first);
		assert_int_equal(s.secs[s.n - 1], good[i].last);
	}
}

static void
bad_schedules_are_refused_with_the_reason(void **state)
{
	static const struct {
		const char	*text;
		const char	*why;
	} bad[] = {
		{ "", "retry schedule is empty" },
		{ "  ", "retry schedule is empty" },
		{ "5s,,5m", "item 2 is empty" },
		{ "5s,", "item 2 is empty" },
		{ ",5s", "item 1 is empty" },
		{ "-5s", "item 1 (\"-5s\") is not a whole number" },
		{ "+5s", "item 1 (\"+5s\") is not a whole number" },
		{ "5", "item 1 (\"5\") is not a whole number followed by "
		  "s, m, h or d" },
		{ "5x", "item 1 (\"5x\") is not a whole number" },
		{ "s", "item 1 (\"s\") is not a whole number" },
		{ "5 s", "item 1 (\"5 s\") is not a whole number" },
		{ "5ss", "item 1 (\"5ss\") is not a whole number" },
		{ "1.5h", "item 1 (\"1.5h\") is not a whole number" },
		{ "5S", "item 1 (\"5S\") is not a whole number" },
		{ "5s;5m", "item 1 (\"5s;5m\") is not a whole number" },
		{ "5s,0s", "item 2 (\"0s\") must be at least 1 second" },
		{ "31d", "item 1 (\"31d\") is longer than 30 days" },
		{ "721h", "item 1 (\"721h\") is longer than 30 days" },
		{ "99999999999999999999999s", "is longer than 30 days" },
		{ "1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,"
		  "1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s",
		  "more than 32 items" },
	};
	struct retry_sched	 s;
	char			 err[256];
	size_t			 i;

	(void)state;
	s.n = 99;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (retry_parse(bad[i].text, &s, err, sizeof(err)) != -1)
			fail_msg("\"%s\" accepted", bad[i].text);
		if (strstr(err, bad[i].why) == NULL)
			fail_msg("\"%s\": error \"%s\" lacks \"%s\"",
			    bad[i].text, err, bad[i].why);
		assert_int_equal(s.n, 99);	/* untouched on failure */
	}
}

static void
jitter_stays_within_twenty_percent(void **state)
{
	struct retry_sched	 s;
	char			 err[256];
	double			 d, lo = 1e18, hi = 0, sum = 0;
	int			 i, n = 100000;

	(void)state;
	assert_int_equal(retry_parse("5m", &s, err, sizeof(err)), 0);
	for (i = 0; i < n; i++) {
		d = retry_delay(&s, 1, retry_uniform());
		assert_true(d >= 240.0 && d <= 360.0);
		if (d < lo)
			lo = d;
		if (d > hi)
			hi = d;
		sum += d;
	}
	/* Spread over the whole range, centred on the entry. */
	assert_true(lo < 242.0);
	assert_true(hi > 358.0);
	assert_true(sum / n > 297.0 && sum / n < 303.0);
	assert_true(retry_delay(&s, 1, 0.0) == 240.0);
	assert_true(retry_delay(&s, 1, 1.0) == 360.0);
}

static void
attempt_past_the_schedule_is_dead(void **state)
{
	struct retry_sched	 s;
	char			 err[256];

	(void)state;
	assert_int_equal(retry_parse(RETRY_DEFAULT, &s, err, sizeof(err)), 0);
	assert_true(retry_delay(&s, 1, 0.5) == 5.0);
	assert_true(retry_delay(&s, 7, 0.5) == 36000.0);
	assert_true(retry_delay(&s, 8, 0.5) < 0);
	assert_true(retry_delay(&s, 0, 0.5) < 0);
}

static void
retry_after_seconds_parse(void **state)
{
	static const struct {
		const char	*text;
		double		 secs;
	} good[] = {
		{ "120", 120 }, { " 7 ", 7 }, { "0", 0 }, { "7\r\n", 7 },
		{ "99999999999999999999999", 1e9 },
	};
	double	 d;
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (retry_after_parse(good[i].text, 0, &d) != 0)
			fail_msg("\"%s\" refused", good[i].text);
		assert_true(d == good[i].secs);
	}
}

static void
retry_after_dates_parse(void **state)
{
	/* Sun, 06 Nov 1994 08:49:37 GMT, as RFC 9110 writes it. */
	time_t	 t = 784111777;
	double	 d;

	(void)state;
	assert_int_equal(retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT",
	    t - 90, &d), 0);
	assert_true(d == 90);
	assert_int_equal(retry_after_parse("Sunday, 06-Nov-94 08:49:37 GMT",
	    t - 90, &d), 0);
	assert_true(d == 90);
	assert_int_equal(retry_after_parse("Sun Nov  6 08:49:37 1994",
	    t - 90, &d), 0);
	assert_true(d == 90);
	/* A date already past means "now". */
	assert_int_equal(retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT",
	    t + 3600, &d), 0);
	assert_true(d == 0);
}

static void
bad_retry_after_is_ignored(void **state)
{
	static const char *const bad[] = {
		"", " ", "-5", "5.5", "1e3", "0x10", "soon", "120 s",
		"Sun, 06 Nov 1994 08:49:37 CET",
		"Sun, 32 Nov 1994 08:49:37 GMT",
		"Sun, 06 Nov 1994 25:49:37 GMT", "Sun, 06 Nov 1994",
		"Sun, 06 Nov 1994 08:49:37 GMT trailing",
	};
	double	 d = -1;
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (retry_after_parse(bad[i], 784111777, &d) != -1)
			fail_msg("\"%s\" accepted as %f", bad[i], d);
}

static void
retry_after_is_clamped_to_one_or_two_entries(void **state)
{
	(void)state;
	assert_true(retry_clamp(300, 10) == 300);
	assert_true(retry_clamp(300, 300) == 300);
	assert_true(retry_clamp(300, 450) == 450);
	assert_true(retry_clamp(300, 600) == 600);
	assert_true(retry_clamp(300, 86400) == 600);
	assert_true(retry_clamp(300, 1e9) == 600);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(default_schedule_parses),
		cmocka_unit_test(good_schedules_parse),
		cmocka_unit_test(bad_schedules_are_refused_with_the_reason),
		cmocka_unit_test(jitter_stays_within_twenty_percent),
		cmocka_unit_test(attempt_past_the_schedule_is_dead),
		cmocka_unit_test(retry_after_seconds_parse),
		cmocka_unit_test(retry_after_dates_parse),
		cmocka_unit_test(bad_retry_after_is_ignored),
		cmocka_unit_test(retry_after_is_clamped_to_one_or_two_entries),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
