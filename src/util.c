/* util.c: allocation that aborts on failure, and a growable byte buffer. */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

static void
oom(void)
{
	fputs("dlrhook: out of memory\n", stderr);
	abort();
}

void *
xmalloc(size_t n)
{
	void	*p;

	if ((p = malloc(n == 0 ? 1 : n)) == NULL)
		oom();
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void	*p;

	if ((p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size)) == NULL)
		oom();
	return p;
}

void *
xrealloc(void *old, size_t n)
{
	void	*p;

	if ((p = realloc(old, n == 0 ? 1 : n)) == NULL)
		oom();
	return p;
}

char *
xstrdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL)
		oom();
	return p;
}

char *
xstrndup(const char *s, size_t n)
{
	char	*p;

	if ((p = strndup(s, n)) == NULL)
		oom();
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list	 ap;
	char	*p;
	int	 rc;

	va_start(ap, fmt);
	rc = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (rc < 0)
		oom();
	return p;
}

void
buf_init(struct buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

/* Makes room for n more bytes plus the terminating NUL. */
static void
buf_grow(struct buf *b, size_t n)
{
	size_t	 need;

	if (n > SIZE_MAX - b->len - 1)
		oom();
	need = b->len + n + 1;
	if (need <= b->cap)
		return;
	if (b->cap == 0)
		b->cap = 256;
	while (b->cap < need)
		b->cap = b->cap > SIZE_MAX / 2 ? need : b->cap * 2;
	b->data = xrealloc(b->data, b->cap);
}

void
buf_append(struct buf *b, const void *p, size_t n)
{
	buf_grow(b, n);
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
buf_puts(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

/* Formats in place when it fits, which it mostly does: one pass, not two. */
void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	buf_grow(b, 0);
	va_start(ap, fmt);
	n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom();
	if ((size_t)n >= b->cap - b->len) {
		buf_grow(b, (size_t)n);
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

void
buf_reserve(struct buf *b, size_t n)
{
	buf_grow(b, n);
}

/* A JSON string: quotes, backslashes and control characters escaped,
 * everything else (UTF-8 included) as it is. */
static void
buf_json_string(struct buf *b, const char *s)
{
	static const char	 hex[] = "0123456789abcdef";
	const char		*run;
	char			 esc[6] = { '\\', 'u', '0', '0' };
	unsigned char		 c;

	buf_append(b, "\"", 1);
	for (run = s; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		buf_append(b, run, (size_t)(s - run));
		run = s + 1;
		switch (c) {
		case '"':	buf_append(b, "\\\"", 2); break;
		case '\\':	buf_append(b, "\\\\", 2); break;
		case '\n':	buf_append(b, "\\n", 2); break;
		case '\r':	buf_append(b, "\\r", 2); break;
		case '\t':	buf_append(b, "\\t", 2); break;
		case '\b':	buf_append(b, "\\b", 2); break;
		case '\f':	buf_append(b, "\\f", 2); break;
		default:
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xf];
			buf_append(b, esc, sizeof(esc));
			break;
		}
	}
	buf_append(b, run, (size_t)(s - run));
	buf_append(b, "\"", 1);
}

/* The separator before a member: none after the opening brace. */
static void
buf_json_name(struct buf *b, const char *name)
{
	if (b->len > 0 && b->data[b->len - 1] != '{')
		buf_append(b, ",", 1);
	buf_json_string(b, name);
	buf_append(b, ":", 1);
}

void
buf_json_str(struct buf *b, const char *name, const char *value)
{
	buf_json_name(b, name);
	if (value == NULL)
		buf_puts(b, "null");
	else
		buf_json_string(b, value);
}

void
buf_json_int(struct buf *b, const char *name, long long value)
{
	buf_json_name(b, name);
	buf_printf(b, "%lld", value);
}

char *
buf_release(struct buf *b)
{
	char	*p;

	if (b->data == NULL)
		p = xstrdup("");
	else
		p = b->data;
	buf_init(b);
	return p;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b);
}

int
utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char	 lo = 0x80, hi = 0xbf;
	int		 len, i;

	if (n == 0)
		return -1;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		if (s[0] == 0xe0)
			lo = 0xa0;	/* overlong */
		if (s[0] == 0xed)
			hi = 0x9f;	/* surrogates */
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		if (s[0] == 0xf0)
			lo = 0x90;	/* overlong */
		if (s[0] == 0xf4)
			hi = 0x8f;	/* past U+10FFFF */
	} else
		return 0;
	for (i = 1; i < len; i++) {
		if ((size_t)i >= n)
			return -1;
		if (s[i] < lo || s[i] > hi)
			return 0;
		lo = 0x80;
		hi = 0xbf;
	}
	return len;
}

int
timingsafe_eq(const void *a, const void *b, size_t n)
{
	const unsigned char	*p = a, *q = b;
	unsigned char		 d = 0;
	size_t			 i;

	for (i = 0; i < n; i++)
		d |= p[i] ^ q[i];
	return d == 0;
}

double
clock_seconds(clockid_t id)
{
	struct timespec	 ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}
