/* snd_http.c: the sender's HTTP side: signed POSTs over libcurl's multi API. */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <curl/curl.h>

#include "addr.h"
#include "log.h"
#include "snd.h"
#include "util.h"

#define SND_HTTP_KEEP_PER_SLOT	4	/* idle connections kept per slot */
#define SND_HTTP_BODY_MAX	(1024 * 1024)	/* more response is not read */
#define SND_HTTP_CA_MAX		(16 * 1024 * 1024)

struct snd_http;

/* One reusable transfer: its easy handle keeps its connection cache. */
struct snd_http_slot {
	struct snd_http		*h;
	CURL			*easy;
	struct snd_job		*job;
	struct curl_slist	*headers;
	struct curl_slist	*resolve;
	size_t			 body;		/* response bytes seen */
	char			 blocked[160];	/* set by the socket check */
	char			 errbuf[CURL_ERROR_SIZE];
};

struct snd_http {
	struct snd_http_config	 cfg;
	CURLM			*multi;
	struct snd_http_slot	*slots;
	int			*idle;		/* stack of free slot indexes */
	int			 nidle;
	struct snd_jobq		 done;
	const char		*cainfo;	/* CA file in use, or NULL */
	char			*cajoined;	/* path of our joined bundle */
	int			 cafd;		/* its memfd, or -1 */
	int			 catmp;		/* cajoined is to be removed */
};

static size_t
snd_http_write(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct snd_http_slot	*s = ctx;
	struct snd_job		*j = s->job;
	size_t			 n = size * nmemb, room;

	room = SND_EXCERPT_MAX - j->excerpt_len;
	if (room > n)
		room = n;
	memcpy(j->excerpt + j->excerpt_len, data, room);
	j->excerpt_len += room;
	j->excerpt[j->excerpt_len] = '\0';
	/* The status is what counts; a receiver that streams on is cut. */
	s->body += n;
	return s->body > SND_HTTP_BODY_MAX ? 0 : n;
}

/* Keeps Retry-After, of the last response only (after any 1xx). */
static size_t
snd_http_header(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct snd_http_slot	*s = ctx;
	struct snd_job		*j = s->job;
	size_t			 n = size * nmemb, len;
	const char		*name = "retry-after:";
	const char		*v;

	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		free(j->retry_after);
		j->retry_after = NULL;
		return n;
	}
	len = strlen(name);
	if (n > len && strncasecmp(data, name, len) == 0 && n - len < 128) {
		v = data + len;
		free(j->retry_after);
		/* Blanks and CRLF are trimmed by the parser. */
		j->retry_after = xstrndup(v, n - len);
	}
	return n;
}

/*
 * The second line of the SSRF defence: whatever name resolution libcurl
 * ended up with, no socket is opened to a blocked address.
 */
static curl_socket_t
snd_http_socket(void *ctx, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct snd_http_slot	*s = ctx;
	const char		*why;
	char			 text[INET6_ADDRSTRLEN];
	const void		*raw;
	int			 type;

	(void)purpose;
	if (a->family != AF_INET && a->family != AF_INET6) {
		snprintf(s->blocked, sizeof(s->blocked),
		    "blocked destination: not an IP address");
		return CURL_SOCKET_BAD;
	}
	if (!s->h->cfg.allow_private &&
	    (why = addr_blocked_sa(&a->addr)) != NULL) {
		if (a->family == AF_INET)
			raw = &((struct sockaddr_in *)(void *)
			    &a->addr)->sin_addr;
		else
			raw = &((struct sockaddr_in6 *)(void *)
			    &a->addr)->sin6_addr;
		if (inet_ntop(a->family, raw, text, sizeof(text)) == NULL)
			strcpy(text, "address");
		snprintf(s->blocked, sizeof(s->blocked),
		    "blocked destination: %s is %s", text, why);
		return CURL_SOCKET_BAD;
	}
	type = a->socktype;
#ifdef SOCK_CLOEXEC
	type |= SOCK_CLOEXEC;
#endif
	return socket(a->family, type, a->protocol);
}

/* libcurl's detail on a TLS failure, without its "SSL...: " prefix. */
static const char *
snd_http_tls_detail(const char *errbuf)
{
	static const char *const prefixes[] = {
		"SSL certificate problem: ",
		"SSL peer certificate or SSH remote key was not OK",
		"SSL: ", "OpenSSL SSL_connect: ",
	};
	size_t	 i, len;

	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		len = strlen(prefixes[i]);
		if (strncmp(errbuf, prefixes[i], len) == 0)
			return errbuf + len;
	}
	return errbuf;
}

/* A short, clear sentence for a transfer that got no HTTP response. */
static char *
snd_http_error(struct snd_http_slot *s, CURLcode code)
{
	const struct snd_http_config	*c = &s->h->cfg;
	const char			*detail;
	double				 total = 0;
	long				 oserr = 0;

	switch (code) {
	case CURLE_OPERATION_TIMEDOUT:
		curl_easy_getinfo(s->easy, CURLINFO_TOTAL_TIME, &total);
		if (total + 0.5 < c->timeout)
			return xasprintf("connect timeout after %d s",
			    c->connect_timeout);
		return xasprintf("timeout after %d s", c->timeout);
	case CURLE_COULDNT_CONNECT:
		if (s->blocked[0] != '\0')
			return xstrdup(s->blocked);
		curl_easy_getinfo(s->easy, CURLINFO_OS_ERRNO, &oserr);
		switch (oserr) {
		case ECONNREFUSED:
			return xstrdup("connection refused");
		case ENETUNREACH:
			return xstrdup("network unreachable");
		case EHOSTUNREACH:
			return xstrdup("host unreachable");
		case ETIMEDOUT:
			return xasprintf("connect timeout after %d s",
			    c->connect_timeout);
		default:
			return xstrdup("cannot connect");
		}
	case CURLE_PEER_FAILED_VERIFICATION:
		detail = snd_http_tls_detail(s->errbuf);
		return *detail != '\0' ? xasprintf("TLS: certificate verify "
		    "failed (%s)", detail) :
		    xstrdup("TLS: certificate verify failed");
	case CURLE_SSL_CONNECT_ERROR:
		detail = snd_http_tls_detail(s->errbuf);
		/* OpenSSL reports a bad chain here too. */
		if (strstr(detail, "certificate verify failed") != NULL)
			return xstrdup("TLS: certificate verify failed");
		return *detail != '\0' ? xasprintf("TLS: handshake failed "
		    "(%s)", detail) : xstrdup("TLS: handshake failed");
	case CURLE_SSL_CACERT_BADFILE:
		return xstrdup("TLS: cannot load the CA certificates");
	case CURLE_COULDNT_RESOLVE_HOST:
		return xstrdup("DNS: host not found");
	case CURLE_GOT_NOTHING:
		return xstrdup("empty reply from server");
	case CURLE_SEND_ERROR:
		return xstrdup("connection lost while sending");
	case CURLE_RECV_ERROR:
		return xstrdup("connection lost while receiving");
	case CURLE_UNSUPPORTED_PROTOCOL:
		return xstrdup("callback URL is not https");
	case CURLE_WEIRD_SERVER_REPLY:
		return xstrdup("malformed HTTP response");
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return s->errbuf[0] != '\0' ? xasprintf("HTTP/2 protocol "
		    "error (%s)", s->errbuf) : xstrdup("HTTP/2 protocol error");
	default:
		return xasprintf("%s", curl_easy_strerror(code));
	}
}

static void
snd_http_queue_done(struct snd_http *h, struct snd_job *j)
{
	snd_jobq_push(&h->done, j);
}

/* Takes the job out of a finished transfer and frees the slot. */
static struct snd_job *
snd_http_release(struct snd_http *h, struct snd_http_slot *s)
{
	struct snd_job	*j = s->job;

	curl_multi_remove_handle(h->multi, s->easy);
	curl_slist_free_all(s->headers);
	curl_slist_free_all(s->resolve);
	s->headers = s->resolve = NULL;
	s->job = NULL;
	h->idle[h->nidle++] = (int)(s - h->slots);
	return j;
}

static void
snd_http_finished(struct snd_http *h, struct snd_http_slot *s, CURLcode code)
{
	struct snd_job	*j;
	long		 status = 0;

	curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
	j = s->job;
	j->http_status = status;
	if (code != CURLE_OK && status == 0)
		j->error = snd_http_error(s, code);
	snd_http_queue_done(h, snd_http_release(h, s));
}

static struct curl_slist *
snd_http_add(struct curl_slist *l, const char *s)
{
	struct curl_slist	*n;

	if ((n = curl_slist_append(l, s)) == NULL) {
		fputs("dlrhook-send: out of memory\n", stderr);
		abort();
	}
	return n;
}

static struct curl_slist *
snd_http_append(struct curl_slist *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A header of ours: the longest, two signatures during a rotation, is
 * under 100 bytes. */
static struct curl_slist *
snd_http_append(struct curl_slist *l, const char *fmt, ...)
{
	va_list	 ap;
	char	 s[256];
	int	 len;

	va_start(ap, fmt);
	len = vsnprintf(s, sizeof(s), fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(s))
		abort();
	return snd_http_add(l, s);
}

static void
snd_http_start(void *ctx, struct snd_job *j)
{
	struct snd_http		*h = ctx;
	struct snd_http_slot	*s;
	CURLMcode		 mc;

	if (h->nidle == 0) {
		/* The core never starts more than concurrency transfers. */
		j->error = xstrdup("internal error: no free transfer slot");
		snd_http_queue_done(h, j);
		return;
	}
	s = &h->slots[h->idle[--h->nidle]];
	s->job = j;
	s->body = 0;
	s->blocked[0] = '\0';
	s->errbuf[0] = '\0';
	s->headers = snd_http_add(NULL, "Content-Type: application/json");
	s->headers = snd_http_append(s->headers, "webhook-id: %s", j->id);
	s->headers = snd_http_append(s->headers, "webhook-timestamp: %lld",
	    j->timestamp);
	s->headers = snd_http_append(s->headers, "webhook-signature: %s",
	    j->signature);
	s->headers = snd_http_add(s->headers, "Expect:");
	s->resolve = j->pin != NULL ? snd_http_add(NULL, j->pin) : NULL;
	curl_easy_setopt(s->easy, CURLOPT_URL, j->url);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, j->payload);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)strlen(j->payload));
	curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->headers);
	curl_easy_setopt(s->easy, CURLOPT_RESOLVE, s->resolve);
	if ((mc = curl_multi_add_handle(h->multi, s->easy)) != CURLM_OK) {
		j->error = xasprintf("internal error: %s",
		    curl_multi_strerror(mc));
		curl_slist_free_all(s->headers);
		curl_slist_free_all(s->resolve);
		s->headers = s->resolve = NULL;
		s->job = NULL;
		h->nidle++;
		snd_http_queue_done(h, j);
	}
}

/* Moves the transfers libcurl reports finished to the done queue. */
static void
snd_http_collect(struct snd_http *h)
{
	struct snd_http_slot	*s;
	CURLMsg			*msg;
	int			 left;

	while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		s = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
		    (char **)&s);
		if (s != NULL && s->job != NULL)
			snd_http_finished(h, s, msg->data.result);
	}
}

static int
snd_http_wait(void *ctx, struct pollfd *fds, int nfds, int timeout_ms)
{
	struct snd_http		*h = ctx;
	struct curl_waitfd	 w[4];
	CURLMcode		 mc;
	int			 i, running;

	if (nfds > 4)
		nfds = 4;
	for (i = 0; i < nfds; i++) {
		w[i].fd = fds[i].fd;
		w[i].events = CURL_WAIT_POLLIN;
		w[i].revents = 0;
	}
	/* Drive what is ready first: a transfer may end right here (a
	 * refused connection, a failed handshake), and must not wait. */
	mc = curl_multi_perform(h->multi, &running);
	snd_http_collect(h);
	if (mc == CURLM_OK)
		mc = curl_multi_poll(h->multi, w, (unsigned int)nfds,
		    h->done.head != NULL ? 0 : timeout_ms, NULL);
	if (mc == CURLM_OK)
		mc = curl_multi_perform(h->multi, &running);
	snd_http_collect(h);
	if (mc != CURLM_OK) {
		log_warnx("libcurl: %s", curl_multi_strerror(mc));
		return -1;
	}
	for (i = 0; i < nfds; i++)
		fds[i].revents = (w[i].revents & CURL_WAIT_POLLIN) ? POLLIN : 0;
	return 0;
}

static struct snd_job *
snd_http_done(void *ctx)
{
	struct snd_http	*h = ctx;

	return snd_jobq_pop(&h->done);
}

static void
snd_http_free(void *ctx)
{
	struct snd_http	*h = ctx;
	struct snd_job	*j;
	int		 i;

	if (h == NULL)
		return;
	for (i = 0; h->slots != NULL && i < h->cfg.concurrency; i++) {
		if (h->slots[i].job != NULL)
			snd_job_free(snd_http_release(h, &h->slots[i]));
		if (h->slots[i].easy != NULL)
			curl_easy_cleanup(h->slots[i].easy);
	}
	while ((j = snd_http_done(h)) != NULL)
		snd_job_free(j);
	if (h->multi != NULL)
		curl_multi_cleanup(h->multi);
	free(h->slots);
	free(h->idle);
	if (h->catmp)
		unlink(h->cajoined);
	if (h->cafd != -1)
		close(h->cafd);
	free(h->cajoined);
	free(h);
}

/* Reads a whole PEM file into *b (appending); -1 (logged) on failure. */
static int
snd_http_read_pem(const char *path, struct buf *b)
{
	FILE	*f;
	char	 chunk[8192];
	size_t	 n, before = b->len;
	int	 rc = 0;

	if ((f = fopen(path, "r")) == NULL) {
		log_warn("cannot read %s", path);
		return -1;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (b->len - before + n > SND_HTTP_CA_MAX) {
			log_warnx("%s: larger than %d bytes", path,
			    SND_HTTP_CA_MAX);
			rc = -1;
			break;
		}
		buf_append(b, chunk, n);
	}
	if (rc == 0 && ferror(f)) {
		log_warn("cannot read %s", path);
		rc = -1;
	}
	fclose(f);
	if (rc == 0 && strstr(b->data != NULL ? b->data + before : "",
	    "-----BEGIN CERTIFICATE-----") == NULL) {
		log_warnx("%s: no PEM certificate in it", path);
		rc = -1;
	}
	buf_append(b, "\n", 1);
	return rc;
}

/* Writes all of b to fd; 0, or -1 with errno set. */
static int
snd_http_write_all(int fd, const struct buf *b)
{
	size_t	 off = 0;
	ssize_t	 n;

	while (off < b->len) {
		if ((n = write(fd, b->data + off, b->len - off)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

/*
 * Puts the joined bundle where OpenSSL can open it by name. On Linux an
 * anonymous memfd, opened as /proc/self/fd/N: nothing is left on disk,
 * even after a kill -9. Elsewhere (or without /proc) a private file in
 * $TMPDIR, removed at exit.
 */
static int
snd_http_store_ca(struct snd_http *h, const struct buf *b)
{
	const char	*tmpdir;
	int		 fd;

#ifdef MFD_CLOEXEC
	if ((fd = memfd_create("dlrhook-send-ca", MFD_CLOEXEC)) != -1) {
		h->cajoined = xasprintf("/proc/self/fd/%d", fd);
		if (snd_http_write_all(fd, b) == 0 &&
		    access(h->cajoined, R_OK) == 0) {
			h->cafd = fd;
			return 0;
		}
		close(fd);
		free(h->cajoined);
		h->cajoined = NULL;
	}
#endif
	if ((tmpdir = getenv("TMPDIR")) == NULL || *tmpdir == '\0')
		tmpdir = "/tmp";
	h->cajoined = xasprintf("%s/dlrhook-send-ca.XXXXXX", tmpdir);
	if ((fd = mkstemp(h->cajoined)) == -1) {
		log_warn("cannot create %s", h->cajoined);
		return -1;
	}
	h->catmp = 1;
	if (snd_http_write_all(fd, b) == -1) {
		log_warn("cannot write %s", h->cajoined);
		close(fd);
		return -1;
	}
	if (close(fd) == -1) {
		log_warn("cannot write %s", h->cajoined);
		return -1;
	}
	return 0;
}

/*
 * Which CA certificates to trust. libcurl builds the X509 store once and
 * keeps it (CURLOPT_CA_CACHE_TIMEOUT) only when it comes from a CAINFO file
 * alone; Debian's libcurl also sets CAPATH by default, which rebuilds the
 * store for every new connection (some 40 ms of CPU each). So CAPATH is
 * cleared whenever the default bundle file exists: on Debian both hold the
 * same certificates (update-ca-certificates writes both).
 *
 * --cacert adds a CA rather than replacing the bundle, as CURLOPT_CAINFO
 * alone would: the default bundle and the file are joined once, and the
 * joined copy is the CAINFO.
 */
static int
snd_http_load_ca(struct snd_http *h, CURL *probe, const char *cafile)
{
	struct buf	 b;
	char		*def = NULL;
	int		 rc;

#if LIBCURL_VERSION_NUM >= 0x075400	/* CURLINFO_CAINFO: 7.84.0 */
	curl_easy_getinfo(probe, CURLINFO_CAINFO, &def);
#else
	(void)probe;
#endif
	if (def != NULL && access(def, R_OK) == -1)
		def = NULL;
	if (cafile == NULL) {
		h->cainfo = def;	/* NULL: libcurl's defaults stand */
		return 0;
	}
	buf_init(&b);
	if (def == NULL || snd_http_read_pem(def, &b) == -1) {
		log_warnx("the default CA bundle could not be read: only %s "
		    "is trusted", cafile);
		buf_free(&b);
	}
	if (snd_http_read_pem(cafile, &b) == -1) {
		buf_free(&b);
		return -1;
	}
	rc = snd_http_store_ca(h, &b);
	buf_free(&b);
	if (rc == 0)
		h->cainfo = h->cajoined;
	return rc;
}

static int
snd_http_setup(struct snd_http *h, struct snd_http_slot *s)
{
	CURL			*e = s->easy;
	CURLcode		 rc = CURLE_OK;

#define SET(opt, val)	do {						\
		if (rc == CURLE_OK)					\
			rc = curl_easy_setopt(e, (opt), (val));		\
	} while (0)
	SET(CURLOPT_PRIVATE, s);
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_PROXY, "");		/* never a proxy from the environment */
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_TIMEOUT, (long)h->cfg.timeout);
	SET(CURLOPT_CONNECTTIMEOUT, (long)h->cfg.connect_timeout);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	/*
	 * HTTP/1.1 with keep-alive. Over HTTP/2 libcurl 7.88 opens streams
	 * beyond a server's SETTINGS_MAX_CONCURRENT_STREAMS before it knows
	 * the limit, and the refused streams fail as attempts: with lighttpd
	 * one in nine. One attempt per connection at a time is predictable.
	 */
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SET(CURLOPT_USERAGENT, "dlrhook/" VERSION);
	SET(CURLOPT_POST, 1L);
	SET(CURLOPT_WRITEFUNCTION, snd_http_write);
	SET(CURLOPT_WRITEDATA, s);
	SET(CURLOPT_HEADERFUNCTION, snd_http_header);
	SET(CURLOPT_HEADERDATA, s);
	SET(CURLOPT_OPENSOCKETFUNCTION, snd_http_socket);
	SET(CURLOPT_OPENSOCKETDATA, s);
	SET(CURLOPT_ERRORBUFFER, s->errbuf);
	if (h->cainfo != NULL) {
		SET(CURLOPT_CAINFO, h->cainfo);
		SET(CURLOPT_CAPATH, NULL);	/* so the store is cached */
	}
#if LIBCURL_VERSION_NUM >= 0x075700	/* CURLOPT_CA_CACHE_TIMEOUT: 7.87.0 */
	/* The joined bundle is read once: a temporary file may not last. */
	if (h->cajoined != NULL)
		SET(CURLOPT_CA_CACHE_TIMEOUT, -1L);
#endif
#undef SET
	if (rc != CURLE_OK) {
		log_warnx("libcurl: %s", curl_easy_strerror(rc));
		return -1;
	}
	return 0;
}

void *
snd_http_new(const struct snd_http_config *cfg)
{
	struct snd_http	*h;
	int		 i;

	h = xcalloc(1, sizeof(*h));
	h->cfg = *cfg;
	h->cafd = -1;
	h->cfg.cafile = NULL;
	h->slots = xcalloc((size_t)cfg->concurrency, sizeof(*h->slots));
	h->idle = xcalloc((size_t)cfg->concurrency, sizeof(*h->idle));
	if ((h->multi = curl_multi_init()) == NULL)
		goto fail;
	/*
	 * Idle connections kept for reuse. Which hosts the slots go to
	 * shifts from claim to claim; with only --concurrency kept, a
	 * sender spread over more hosts than its slots closed connections
	 * it needed again a moment later, and a new TLS handshake per
	 * request halved its rate (bench/sender, isolation: 19 hosts).
	 */
	curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS,
	    (long)SND_HTTP_KEEP_PER_SLOT * (cfg->concurrency < 16 ? 16 :
	    cfg->concurrency));
	for (i = 0; i < cfg->concurrency; i++) {
		h->slots[i].h = h;
		if ((h->slots[i].easy = curl_easy_init()) == NULL)
			goto fail;
	}
	if (snd_http_load_ca(h, h->slots[0].easy, cfg->cafile) == -1)
		goto fail;
	for (i = cfg->concurrency - 1; i >= 0; i--) {
		if (snd_http_setup(h, &h->slots[i]) == -1)
			goto fail;
		h->idle[h->nidle++] = i;
	}
	return h;
fail:
	log_warnx("cannot set up the HTTP client");
	snd_http_free(h);
	return NULL;
}

const struct snd_http_ops snd_http_curl_ops = {
	.start = snd_http_start,
	.wait = snd_http_wait,
	.done = snd_http_done,
	.free = snd_http_free,
};
