/* url.c: checks customer callback URLs with libcurl's URL API. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "addr.h"
#include "url.h"
#include "util.h"

#define URL_EXAMPLE	"https://example.com/dlr"

/* The sentence for a URL that libcurl itself refuses to parse. */
static const char *
url_curl_detail(CURLUcode rc)
{
	switch (rc) {
	case CURLUE_BAD_SCHEME:
		return "callbackUrl must be an absolute URL starting with "
		    "https://, such as " URL_EXAMPLE;
	case CURLUE_UNSUPPORTED_SCHEME:
		return "callbackUrl must use https; start it with https://";
	case CURLUE_BAD_SLASHES:
		return "callbackUrl must start with https:// (two slashes)";
	case CURLUE_NO_HOST:
		return "callbackUrl must have a host, such as " URL_EXAMPLE;
	case CURLUE_BAD_HOSTNAME:
		return "callbackUrl host is not a valid host name";
	case CURLUE_BAD_IPV6:
		return "callbackUrl host is not a valid IPv6 address; write it "
		    "in brackets, such as https://[2001:db8::1]/";
	case CURLUE_BAD_PORT_NUMBER:
		return "callbackUrl port must be a number from 1 to 65535";
	case CURLUE_BAD_LOGIN:
	case CURLUE_BAD_USER:
	case CURLUE_BAD_PASSWORD:
		return "callbackUrl must not contain a user name or password";
	default:
		return "callbackUrl is not a valid URL; percent-encode any "
		    "reserved characters in its path and query";
	}
}

/* True when curl has a value for the part (an empty user counts). */
static bool
url_has(CURLU *u, CURLUPart part)
{
	char		*s = NULL;
	CURLUcode	 rc;

	rc = curl_url_get(u, part, &s, 0);
	curl_free(s);
	if (rc == CURLUE_OUT_OF_MEMORY)
		abort();
	return rc == CURLUE_OK;
}

/* True for "localhost" and "*.localhost", which resolve to this machine. */
static bool
url_is_localhost(const char *name, size_t n)
{
	static const char	 suffix[] = ".localhost";
	const size_t		 slen = sizeof(suffix) - 1;

	if (n == slen - 1 && strncasecmp(name, suffix + 1, n) == 0)
		return true;
	return n >= slen && strncasecmp(name + n - slen, suffix, slen) == 0;
}

/*
 * The verdict on a host that getaddrinfo reads as an IPv4 number ("1",
 * "127.1", "0x7f.1"); NULL for any other. libcurl normalises such hosts
 * in a URL, but not in the name libidn2 makes of one.
 */
static const char *
url_number_blocked(const char *name)
{
	struct in_addr	 a;

	if (name[strspn(name, "0123456789abcdefABCDEFxX.")] != '\0' ||
	    inet_aton(name, &a) == 0)
		return NULL;
	return addr_blocked_v4((const uint8_t *)&a.s_addr);
}

/* "an" before a reason such as "IPv4-mapped ...", "a" before "private". */
static const char *
url_article(const char *reason)
{
	return strchr("aeiouAEIOU", reason[0]) != NULL ? "an" : "a";
}

/*
 * The checks, in order. On failure *detail is a static sentence and *msg
 * may be a malloc'd one naming the offending value (NULL when the static
 * one says it all).
 */
static int
url_check(const char *url, size_t len, bool allow_private,
    const char **detail, char **msg)
{
	char		 copy[URL_MAX_LEN + 1];
	CURLU		*u = NULL;
	char		*scheme = NULL, *host = NULL, *port = NULL, *ascii = NULL;
	const char	*why, *name;
	size_t		 i, n;
	CURLUcode	 rc;
	long		 portnum;
	int		 k, ret = -1;

	*detail = NULL;
	*msg = NULL;
	if (url == NULL || len == 0) {
		*detail = "callbackUrl is empty; give an https URL, such as "
		    URL_EXAMPLE;
		goto out;
	}
	if (len > URL_MAX_LEN) {
		*detail = "callbackUrl is longer than 2048 bytes; use a "
		    "shorter URL";
		goto out;
	}
	if (memchr(url, '\0', len) != NULL) {
		*detail = "callbackUrl must not contain NUL characters";
		goto out;
	}
	for (i = 0; i < len; i++) {
		if ((unsigned char)url[i] >= 0x80) {
			if ((k = utf8_seq_len((const unsigned char *)url + i,
			    len - i)) <= 0) {
				*detail = "callbackUrl is not valid UTF-8; "
				    "percent-encode non-ASCII characters";
				goto out;
			}
			i += (size_t)k - 1;
			continue;
		}
		if ((unsigned char)url[i] < 0x20 || url[i] == 0x7f) {
			*detail = "callbackUrl must not contain control "
			    "characters such as CR, LF or tab";
			goto out;
		}
		if (url[i] == ' ') {
			*detail = "callbackUrl must not contain spaces; "
			    "percent-encode them as %20";
			goto out;
		}
	}
	memcpy(copy, url, len);
	copy[len] = '\0';

	if ((u = curl_url()) == NULL)
		abort();
	if ((rc = curl_url_set(u, CURLUPART_URL, copy, 0)) != CURLUE_OK) {
		if (rc == CURLUE_OUT_OF_MEMORY)
			abort();
		*detail = url_curl_detail(rc);
		goto out;
	}

	rc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
	if (rc == CURLUE_OUT_OF_MEMORY)
		abort();
	if (rc != CURLUE_OK || strcasecmp(scheme, "https") != 0) {
		*detail = "callbackUrl must use https";
		if (rc == CURLUE_OK)
			*msg = xasprintf("callbackUrl must use https, not %s",
			    scheme);
		goto out;
	}
	/* libcurl takes "https:/host" too; stored URLs start with https://. */
	if (strncasecmp(copy, "https://", 8) != 0) {
		*detail = url_curl_detail(CURLUE_BAD_SLASHES);
		goto out;
	}
	if (url_has(u, CURLUPART_USER) || url_has(u, CURLUPART_PASSWORD)) {
		*detail = "callbackUrl must not contain a user name or "
		    "password; remove the part before @";
		goto out;
	}
	/* libcurl drops an empty fragment; any '#' starts one (RFC 3986). */
	if (url_has(u, CURLUPART_FRAGMENT) || memchr(url, '#', len) != NULL) {
		*detail = "callbackUrl must not contain a fragment (#...); "
		    "remove it";
		goto out;
	}

	rc = curl_url_get(u, CURLUPART_PORT, &port, 0);
	if (rc == CURLUE_OUT_OF_MEMORY)
		abort();
	if (rc == CURLUE_OK) {
		portnum = strtol(port, NULL, 10);
		if (portnum < 1 || portnum > 65535) {
			*detail = portnum == 0 ?
			    "callbackUrl port 0 is not allowed; use a port "
			    "from 1 to 65535" :
			    "callbackUrl port must be a number from 1 to 65535";
			goto out;
		}
	}

	rc = curl_url_get(u, CURLUPART_HOST, &host, 0);
	if (rc == CURLUE_OUT_OF_MEMORY)
		abort();
	/* "example.com." is example.com; "https://./" has no host at all. */
	n = rc == CURLUE_OK ? strlen(host) : 0;
	while (n > 0 && host[n - 1] == '.')
		n--;
	if (n == 0) {
		*detail = url_curl_detail(CURLUE_NO_HOST);
		goto out;
	}
#ifdef CURLU_PUNYCODE
	/*
	 * The sender resolves the name libidn2 makes of the host, and UTS #46
	 * maps some names onto others (fullwidth digits and dots spell
	 * 127.0.0.1): that name is judged too, when this process can convert
	 * it (in a UTF-8 locale, which both programs set).
	 */
	rc = curl_url_get(u, CURLUPART_HOST, &ascii, CURLU_PUNYCODE);
	/* No abort on CURLUE_OUT_OF_MEMORY here: libcurl 7.88 says that for
	 * any name libidn2 refuses, and leaves ascii set. */
	if (rc != CURLUE_OK || strcmp(ascii, host) == 0) {
		curl_free(ascii);
		ascii = NULL;
	}
#endif
	for (name = host; name != NULL; name = name == host ? ascii : NULL) {
		n = strlen(name);
		while (n > 0 && name[n - 1] == '.')
			n--;
		if (n == 0) {
			*detail = url_curl_detail(CURLUE_NO_HOST);
			goto out;
		}
		if (!allow_private && url_is_localhost(name, n)) {
			*detail = "callbackUrl must not point at localhost; "
			    "use a public host name";
			goto out;
		}
		if (!allow_private && ((addr_literal_check(name, &why) &&
		    why != NULL) || (why = url_number_blocked(name)) != NULL)) {
			*detail = "callbackUrl host is a private, loopback or "
			    "reserved IP address; use a public address";
			*msg = xasprintf("callbackUrl host %s is %s %s address; "
			    "use a public address", name, url_article(why),
			    why);
			goto out;
		}
	}
	ret = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(ascii);
	curl_free(port);
	curl_url_cleanup(u);
	if (ret == 0)
		*detail = NULL;
	return ret;
}

int
url_check_callback(const char *url, size_t len, bool allow_private,
    char **detail)
{
	const char	*fixed;
	char		*msg;

	if (url_check(url, len, allow_private, &fixed, &msg) == 0) {
		*detail = NULL;
		return 0;
	}
	*detail = msg != NULL ? msg : xstrdup(fixed);
	return -1;
}
