/* fcgi.c: the FastCGI adapter, the only file that speaks libfcgi. */
#include "config.h"

#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcgiapp.h>

#include "handler.h"
#include "log.h"

/* The request's parameters and body, for req_from_source. */
static const char *
fcgi_param(void *arg, const char *name)
{
	FCGX_Request	*fr = arg;

	return FCGX_GetParam(name, fr->envp);
}

static int
fcgi_read(void *arg, char *buf, int n)
{
	FCGX_Request	*fr = arg;

	return FCGX_GetStr(buf, n, fr->in);
}

/*
 * Ends the request and closes its connection. libfcgi's close is a
 * lingering one: shutdown, then wait up to 2 s for the web server to close
 * its end, reading and dropping whatever comes, so that unread input cannot
 * make the kernel reset the connection and lose the response. The web
 * server closes only after it has read the response, so the process slept
 * on every request before it could accept the next: a sixth of a GET's CPU
 * time across dlrhook, lighttpd and PostgreSQL (docs/BENCHMARKS.md,
 * finding 20). req_from_source reads the body to its end, so once the end
 * of stdin has been seen there is no input left unread, and the
 * connection is closed at once: a detached request is closed without the
 * lingering (libfcgi 2.4, FCGX_Free). After a read error it lingers.
 */
static void
fcgi_finish(FCGX_Request *fr)
{
	if (FCGX_HasSeenEOF(fr->in) == EOF && FCGX_GetError(fr->in) == 0)
		FCGX_Detach(fr);
	FCGX_Finish_r(fr);
}

static int
env_flag(const char *name)
{
	const char	*v = getenv(name);

	return v != NULL && strcmp(v, "1") == 0;
}

int
main(void)
{
	FCGX_Request		 fr;
	struct app_config	 cfg = { 0 };
	struct store		*st;
	struct req_source	 src = { fcgi_param, fcgi_read, &fr };
	struct request		*req;
	struct response		*resp;
	char			*out;
	size_t			 len;

	log_init("dlrhook.fcgi");
	/* As in dlrhook-send: libidn2 reads host names in the locale's
	 * charset, and url.c judges what it makes of them. */
	if (setlocale(LC_CTYPE, "C.UTF-8") == NULL)
		setlocale(LC_CTYPE, "");
	signal(SIGPIPE, SIG_IGN);
	cfg.allow_private = env_flag("DLRHOOK_ALLOW_PRIVATE");
	if (cfg.allow_private)
		log_warnx("DLRHOOK_ALLOW_PRIVATE=1: private and loopback "
		    "callback URLs are accepted; never use this in production");
	if (FCGX_Init() != 0) {
		log_warnx("%s: FCGX_Init failed", __func__);
		return 1;
	}
	if (FCGX_InitRequest(&fr, 0, 0) != 0) {
		log_warnx("%s: FCGX_InitRequest failed", __func__);
		return 1;
	}
	st = store_pg_new(getenv("DLRHOOK_DATABASE"));

	while (FCGX_Accept_r(&fr) == 0) {
		req = req_from_source(&src);
		resp = handle_request(req, st, &cfg);
		out = resp_render(resp, &len);
		if (FCGX_PutStr(out, (int)len, fr.out) != (int)len)
			log_warnx("%s: client went away before the response "
			    "was written", __func__);
		free(out);
		resp_free(resp);
		req_free(req);
		fcgi_finish(&fr);
	}
	store_free(st);
	return 0;
}
