/* sender.c: dlrhook-send, which delivers pending notifications. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "log.h"
#include "resolve.h"
#include "retry.h"
#include "snd.h"
#include "util.h"

#define PROG		"dlrhook-send"
#define DNS_TTL		5.0	/* seconds a resolved host is reused */
#define LEASE_SLACK	5	/* lease must exceed timeout by this much */

static volatile sig_atomic_t	 stop_flag;
static int			 wake_pipe[2] = { -1, -1 };

/* The first signal finishes in-flight work; a second one leaves at once. */
static void
on_signal(int sig)
{
	int	 saved = errno;
	ssize_t	 rc;

	(void)sig;
	if (stop_flag < 2)
		stop_flag++;
	if (wake_pipe[1] != -1)
		rc = write(wake_pipe[1], "x", 1);
	(void)rc;
	errno = saved;
}

static void
usage(FILE *f)
{
	fputs(
"usage: " PROG " [--once | --follow] [options]\n"
"\n"
"Delivers due delivery-status notifications: claims them from PostgreSQL\n"
"with a lease, POSTs them signed (Standard Webhooks) over HTTPS, and\n"
"records every attempt. Each option may also be set by the environment\n"
"variable shown.\n"
"\n"
"  --once                  (default) run until nothing is due or\n"
"                          --max-seconds are spent, then exit: for cron\n"
"  --follow                run as a daemon, woken by LISTEN dlrhook_pending\n"
"                          and by the next retry time\n"
"  --batch N               most rows per claim (DLRHOOK_BATCH, default 500)\n"
"  --concurrency N         most requests in flight (DLRHOOK_CONCURRENCY,\n"
"                          default 64); as many more are kept claimed,\n"
"                          ready for a slot (up to 8 times as many while\n"
"                          attempts take under half a second), and\n"
"                          given back at exit\n"
"  --per-host N            most of them to one host (DLRHOOK_PER_HOST,\n"
"                          default a quarter of --concurrency; 0: no\n"
"                          cap), so that a host that does not answer\n"
"                          cannot hold every slot; while a host has N in\n"
"                          flight and N waiting (up to 8 N while its\n"
"                          attempts take under half a second), claims\n"
"                          pass over it, and a claim takes no more of one\n"
"                          webhook than its host has room for\n"
"  --timeout S             seconds for a whole attempt (DLRHOOK_TIMEOUT,\n"
"                          default 15)\n"
"  --connect-timeout S     seconds to connect, TLS included\n"
"                          (DLRHOOK_CONNECT_TIMEOUT, default 5, or the\n"
"                          timeout if that is shorter)\n"
"  --lease S               seconds a claimed notification is held before\n"
"                          another sender may retry it; at least\n"
"                          --timeout + 5 (DLRHOOK_LEASE, default 60, or\n"
"                          twice the timeout if that is longer)\n"
"  --retry-schedule LIST   delays after each failed attempt, units s m h d\n"
"                          (DLRHOOK_RETRY_SCHEDULE, default\n"
"                          " RETRY_DEFAULT "); each is jittered by\n"
"                          +-20%; after the last, the notification is kept\n"
"                          as a dead letter\n"
"  --max-seconds S         --once: stop claiming after S seconds; work in\n"
"                          flight then gets up to --timeout more\n"
"                          (DLRHOOK_MAX_SECONDS, default 50)\n"
"  --cacert FILE           also trust the CA certificates in this PEM file\n"
"                          (DLRHOOK_CA_FILE): they are added to the system\n"
"                          bundle (joined with it in memory, or where there\n"
"                          is no memfd in a private file in $TMPDIR)\n"
"  --dry-run               claim and record as delivered without any HTTP:\n"
"                          measures the queue alone\n"
"  --help, --version\n"
"\n"
"Environment: DLRHOOK_DATABASE (a libpq conninfo; else the PG* variables),\n"
"DLRHOOK_ALLOW_PRIVATE=1 (development only: allow private and loopback\n"
"destinations), DLRHOOK_DEBUG=1.\n"
"Exit status: 0 when the run went through, 1 when it failed (no database,\n"
"results not recorded), 2 on bad usage.\n", f);
}

/* strtonum-style: the whole string a decimal integer in [min, max]. */
static int
parse_int(const char *s, long long min, long long max, long long *out)
{
	char		*end;
	long long	 v;

	if (s == NULL || *s == '\0' || *s == ' ' || *s == '+')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* An option's text: the command line wins over the environment. */
struct opt_src {
	const char	*value;
	const char	*origin;	/* "--batch" or "DLRHOOK_BATCH" */
};

static void
opt_env(struct opt_src *o, const char *env)
{
	const char	*v = getenv(env);

	if (v != NULL && *v != '\0') {
		o->value = v;
		o->origin = env;
	}
}

static void
opt_arg(struct opt_src *o, const char *flag, const char *value)
{
	o->value = value;
	o->origin = flag;
}

static void
bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2),
    noreturn));

static void
bad_usage(const char *fmt, ...)
{
	va_list	 ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(" PROG " --help lists the options)\n", stderr);
	exit(2);
}

static int
opt_int(const struct opt_src *o, long long min, long long max, int def)
{
	long long	 v;

	if (o->value == NULL)
		return def;
	if (parse_int(o->value, min, max, &v) == -1)
		bad_usage("%s: \"%s\" is not a whole number from %lld to %lld",
		    o->origin, o->value, min, max);
	return (int)v;
}

static int
env_flag(const char *name)
{
	const char	*v = getenv(name);

	return v != NULL && strcmp(v, "1") == 0;
}

enum {
	OPT_ONCE = 256, OPT_FOLLOW, OPT_BATCH, OPT_CONCURRENCY, OPT_PER_HOST,
	OPT_TIMEOUT,
	OPT_CONNECT_TIMEOUT, OPT_LEASE, OPT_SCHEDULE, OPT_MAX_SECONDS,
	OPT_CACERT, OPT_DRY_RUN, OPT_HELP, OPT_VERSION
};

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "once", no_argument, NULL, OPT_ONCE },
		{ "follow", no_argument, NULL, OPT_FOLLOW },
		{ "batch", required_argument, NULL, OPT_BATCH },
		{ "concurrency", required_argument, NULL, OPT_CONCURRENCY },
		{ "per-host", required_argument, NULL, OPT_PER_HOST },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "connect-timeout", required_argument, NULL,
		    OPT_CONNECT_TIMEOUT },
		{ "lease", required_argument, NULL, OPT_LEASE },
		{ "retry-schedule", required_argument, NULL, OPT_SCHEDULE },
		{ "max-seconds", required_argument, NULL, OPT_MAX_SECONDS },
		{ "cacert", required_argument, NULL, OPT_CACERT },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "help", no_argument, NULL, OPT_HELP },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 }
	};
	struct opt_src		 batch = { 0 }, conc = { 0 }, phost = { 0 },
				 tmo = { 0 },
				 ctmo = { 0 }, lease = { 0 }, sched = { 0 },
				 maxs = { 0 }, ca = { 0 };
	struct snd_http_config	 hc;
	struct snd_loop		 l;
	struct sigaction	 sa;
	char			 err[256];
	int			 ch, follow = 0, once = 0, dry_run = 0;
	int			 allow_private, rc = 1;

	log_init(PROG);
	/* libcurl converts international host names with libidn2, which
	 * reads them in the locale's charset: make that UTF-8. */
	if (setlocale(LC_CTYPE, "C.UTF-8") == NULL)
		setlocale(LC_CTYPE, "");
	opt_env(&batch, "DLRHOOK_BATCH");
	opt_env(&conc, "DLRHOOK_CONCURRENCY");
	opt_env(&phost, "DLRHOOK_PER_HOST");
	opt_env(&tmo, "DLRHOOK_TIMEOUT");
	opt_env(&ctmo, "DLRHOOK_CONNECT_TIMEOUT");
	opt_env(&lease, "DLRHOOK_LEASE");
	opt_env(&sched, "DLRHOOK_RETRY_SCHEDULE");
	opt_env(&maxs, "DLRHOOK_MAX_SECONDS");
	opt_env(&ca, "DLRHOOK_CA_FILE");
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_ONCE:
			once = 1;
			break;
		case OPT_FOLLOW:
			follow = 1;
			break;
		case OPT_BATCH:
			opt_arg(&batch, "--batch", optarg);
			break;
		case OPT_CONCURRENCY:
			opt_arg(&conc, "--concurrency", optarg);
			break;
		case OPT_PER_HOST:
			opt_arg(&phost, "--per-host", optarg);
			break;
		case OPT_TIMEOUT:
			opt_arg(&tmo, "--timeout", optarg);
			break;
		case OPT_CONNECT_TIMEOUT:
			opt_arg(&ctmo, "--connect-timeout", optarg);
			break;
		case OPT_LEASE:
			opt_arg(&lease, "--lease", optarg);
			break;
		case OPT_SCHEDULE:
			opt_arg(&sched, "--retry-schedule", optarg);
			break;
		case OPT_MAX_SECONDS:
			opt_arg(&maxs, "--max-seconds", optarg);
			break;
		case OPT_CACERT:
			opt_arg(&ca, "--cacert", optarg);
			break;
		case OPT_DRY_RUN:
			dry_run = 1;
			break;
		case OPT_HELP:
			usage(stdout);
			return 0;
		case OPT_VERSION:
			puts(PROG " " VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc)
		bad_usage("unexpected argument \"%s\"", argv[optind]);
	if (once && follow)
		bad_usage("--once and --follow exclude each other");

	memset(&l, 0, sizeof(l));
	memset(&hc, 0, sizeof(hc));
	l.cfg.follow = follow;
	l.cfg.dry_run = dry_run;
	l.cfg.batch = opt_int(&batch, 1, 10000, 500);
	l.cfg.concurrency = opt_int(&conc, 1, 4096, 64);
	l.cfg.per_host = opt_int(&phost, 0, 4096,
	    l.cfg.concurrency / 4 > 1 ? l.cfg.concurrency / 4 : 1);
	l.cfg.timeout = opt_int(&tmo, 1, 600, 15);
	/* Defaults that would contradict an explicit --timeout follow it. */
	hc.connect_timeout = opt_int(&ctmo, 1, 600,
	    l.cfg.timeout < 5 ? l.cfg.timeout : 5);
	l.cfg.lease = opt_int(&lease, 1, 86400,
	    l.cfg.timeout + LEASE_SLACK > 60 ? 2 * l.cfg.timeout : 60);
	l.cfg.max_seconds = opt_int(&maxs, 1, 86400, 50);
	if (hc.connect_timeout > l.cfg.timeout)
		bad_usage("the connect timeout (%d s) cannot exceed the "
		    "timeout (%d s)", hc.connect_timeout, l.cfg.timeout);
	if (l.cfg.lease < l.cfg.timeout + LEASE_SLACK)
		bad_usage("the lease (%d s) must exceed the timeout (%d s) by "
		    "at least %d s, or a slow attempt could be claimed twice",
		    l.cfg.lease, l.cfg.timeout, LEASE_SLACK);
	if (retry_parse(sched.value != NULL ? sched.value : RETRY_DEFAULT,
	    &l.cfg.sched, err, sizeof(err)) == -1)
		bad_usage("%s: %s", sched.origin, err);
	if (ca.value != NULL && access(ca.value, R_OK) == -1)
		bad_usage("%s: cannot read %s: %s", ca.origin, ca.value,
		    strerror(errno));

	allow_private = env_flag("DLRHOOK_ALLOW_PRIVATE");
	if (allow_private)
		log_warnx("DLRHOOK_ALLOW_PRIVATE=1: notifications may go to "
		    "private, loopback and reserved addresses; never use this "
		    "in production");

	if (pipe2(wake_pipe, O_NONBLOCK | O_CLOEXEC) == -1) {
		log_warn("pipe");
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_warnx("cannot initialise libcurl");
		return 1;
	}
	l.db_ops = &snd_pg_ops;
	l.db = snd_pg_new(getenv("DLRHOOK_DATABASE"), follow);
	if (dry_run) {
		l.http_ops = &snd_http_null_ops;
		l.http = snd_http_null_new();
	} else {
		hc.concurrency = l.cfg.concurrency;
		hc.timeout = l.cfg.timeout;
		hc.allow_private = allow_private;
		hc.cafile = ca.value;
		l.http_ops = &snd_http_curl_ops;
		l.http = snd_http_new(&hc);
	}
	l.resolver = resolve_new(allow_private, DNS_TTL);
	l.stop = &stop_flag;
	l.wake_fd = wake_pipe[0];
	if (l.http != NULL) {
		log_debug("%s: batch %d, concurrency %d, per host %d, timeout "
		    "%d s, lease %d s%s", follow ? "follow" : "once",
		    l.cfg.batch, l.cfg.concurrency, l.cfg.per_host,
		    l.cfg.timeout, l.cfg.lease,
		    dry_run ? ", dry run" : "");
		rc = snd_run(&l);
	}

	if (l.http != NULL)
		l.http_ops->free(l.http);
	l.db_ops->free(l.db);
	resolve_free(l.resolver);
	curl_global_cleanup();
	close(wake_pipe[0]);
	close(wake_pipe[1]);
	return rc;
}
