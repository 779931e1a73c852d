/* log.c: one-line log messages on stderr, which the web server or cron keeps. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static const char	*log_name = "dlrhook";
static int		 log_verbose = -1;

void
log_init(const char *progname)
{
	const char	*v;

	log_name = progname;
	v = getenv("DLRHOOK_DEBUG");
	log_verbose = v != NULL && *v != '\0' && strcmp(v, "0") != 0;
}

/* Writes the whole line with one call so that processes do not interleave. */
static void __attribute__((format(printf, 2, 0)))
log_emit(const char *level, const char *fmt, va_list ap, const char *suffix)
{
	char	 msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (suffix != NULL)
		fprintf(stderr, "%s: %s: %s: %s\n", log_name, level, msg, suffix);
	else
		fprintf(stderr, "%s: %s: %s\n", log_name, level, msg);
	fflush(stderr);
}

void
log_warn(const char *fmt, ...)
{
	va_list	 ap;
	char	 err[128];
	int	 saved = errno;

	snprintf(err, sizeof(err), "%s", strerror(saved));
	va_start(ap, fmt);
	log_emit("warning", fmt, ap, err);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_emit("warning", fmt, ap, NULL);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_emit("info", fmt, ap, NULL);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	 ap;

	if (log_verbose <= 0)
		return;
	va_start(ap, fmt);
	log_emit("debug", fmt, ap, NULL);
	va_end(ap);
}
