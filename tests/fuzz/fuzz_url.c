/* fuzz_url.c: callbackUrl validation, judged against libcurl and inet_aton. */
#include "config.h"

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <netdb.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "addr.h"
#include "fuzz.h"
#include "resolve.h"
#include "url.h"

/*
 * The input is the URL, bytes as sent (NUL and all). A URL the API accepts
 * must be one the sender accepts too: it is handed to resolve_dest, the
 * sender's check, with a DNS that answers numeric names the way the C
 * library does ("127.1" and "0x7f.1" are 127.0.0.1) and every other name
 * with a public address. Its host is also judged independently: whatever
 * inet_aton or inet_pton take for an address must be a public one.
 */

/* A public address for names; numeric hosts are what libc makes of them. */
static int
fake_gai(const char *host, const char *serv, const struct addrinfo *hints,
    struct addrinfo **res)
{
	struct addrinfo	 h = *hints;

	h.ai_flags |= AI_NUMERICHOST;
	if (getaddrinfo(host, serv, &h, res) == 0)
		return 0;
	return getaddrinfo("93.184.216.34", serv, &h, res);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_utf8_locale();
	return 0;
}

/* What the sender makes of an accepted URL: never a blocked address. */
static void
check_sender(const char *url)
{
	struct resolve		*r;
	struct resolve_dest	 d;

	r = resolve_new(0, 0);
	resolve_set_gai(r, fake_gai, freeaddrinfo);
	if (resolve_dest(r, url, 1, &d) == -1) {
		FUZZ_CHECK(d.error != NULL);
		if (strncmp(d.error, "blocked destination", 19) == 0) {
			fprintf(stderr, "API accepts %s, sender refuses: %s\n",
			    url, d.error);
			FUZZ_CHECK(!"the sender refuses a URL the API accepted");
		}
	}
	resolve_dest_clear(&d);
	resolve_free(r);
}

/* The host as libcurl gives it with flags, without brackets or zone. */
static char *
curl_host(const char *url, unsigned int flags)
{
	CURLU	*u;
	char	*host = NULL, *scheme = NULL, *user = NULL, *copy;
	size_t	 n;

	if ((u = curl_url()) == NULL)
		abort();
	FUZZ_CHECK(curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK);
	FUZZ_CHECK(curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK);
	FUZZ_CHECK(strcasecmp(scheme, "https") == 0);
	FUZZ_CHECK(curl_url_get(u, CURLUPART_USER, &user, 0) != CURLUE_OK);
	if (curl_url_get(u, CURLUPART_HOST, &host, flags) != CURLUE_OK) {
		/* Only a name IDN cannot convert fails; the sender refuses it. */
		FUZZ_CHECK(flags != 0);
		curl_free(host);	/* libcurl 7.88 may leave it set */
		curl_free(scheme);
		curl_url_cleanup(u);
		return NULL;
	}
	n = strlen(host);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		copy = strndup(host + 1, n - 2);
		copy[strcspn(copy, "%")] = '\0';
	} else
		copy = strdup(host);
	if (copy == NULL)
		abort();
	curl_free(scheme);
	curl_free(user);
	curl_free(host);
	curl_url_cleanup(u);
	return copy;
}

static void
check_accepted_host(const char *url, unsigned int flags)
{
	struct in_addr	 a4;
	struct in6_addr	 a6;
	char		*host;
	size_t		 n;

	if ((host = curl_host(url, flags)) == NULL)
		return;
	/* As getaddrinfo reads a numeric host ("127.0." is not one). */
	if (inet_aton(host, &a4) == 1)
		FUZZ_CHECK(addr_blocked_v4((const uint8_t *)&a4.s_addr) == NULL);
	if (inet_pton(AF_INET6, host, &a6) == 1)
		FUZZ_CHECK(addr_blocked_v6(a6.s6_addr) == NULL);
	n = strlen(host);
	while (n > 0 && host[n - 1] == '.')
		host[--n] = '\0';
	FUZZ_CHECK(n > 0);
	FUZZ_CHECK(strcasecmp(host, "localhost") != 0);
	FUZZ_CHECK(n < 10 || strcasecmp(host + n - 10, ".localhost") != 0);
	free(host);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*url = (const char *)data;
	char		*strict = NULL, *lax = NULL, *copy;
	int		 rs, rl;
	size_t		 i;

	rs = url_check_callback(url, size, false, &strict);
	rl = url_check_callback(url, size, true, &lax);
	FUZZ_CHECK(rs == 0 || rs == -1);
	FUZZ_CHECK(rl == 0 || rl == -1);
	FUZZ_CHECK((rs == 0) == (strict == NULL));
	FUZZ_CHECK((rl == 0) == (lax == NULL));
	if (strict != NULL)
		FUZZ_CHECK(strict[0] != '\0');
	if (lax != NULL)
		FUZZ_CHECK(lax[0] != '\0');
	/* allow_private only lifts refusals, never adds one. */
	if (rs == 0)
		FUZZ_CHECK(rl == 0);

	if (rl == 0) {
		FUZZ_CHECK(size > 0 && size <= URL_MAX_LEN);
		for (i = 0; i < size; i++)
			FUZZ_CHECK(data[i] > 0x20 && data[i] != 0x7f &&
			    data[i] != '#');
	}
	if (rs == 0) {
		copy = fuzz_cstr(data, size);
		/* As checked, and as the sender resolves it (IDN). Neither
		 * URL-decodes the host ("0.1%2520x" is not 0.0.0.1). */
		check_accepted_host(copy, 0);
#ifdef CURLU_PUNYCODE
		check_accepted_host(copy, CURLU_PUNYCODE);
#endif
		check_sender(copy);
		free(copy);
	}
	free(strict);
	free(lax);
	return 0;
}
