/* util.h: allocation that aborts on failure, and a growable byte buffer. */
#ifndef DLR_UTIL_H
#define DLR_UTIL_H

#include <stddef.h>
#include <time.h>

/*
 * Allocation failure is not recoverable in a request handler; these abort
 * in one place instead of spreading NULL checks through every caller.
 */
void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
char	*xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));

/* A byte buffer that is always NUL-terminated; len excludes the NUL. */
struct buf {
	char	*data;
	size_t	 len;
	size_t	 cap;
};

void	 buf_init(struct buf *);
void	 buf_append(struct buf *, const void *, size_t);
void	 buf_puts(struct buf *, const char *);
void	 buf_printf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* Makes room for n more bytes, for a caller who knows what is coming. */
void	 buf_reserve(struct buf *, size_t n);
/*
 * JSON object members, appended in order between a "{" and a "}" the
 * caller writes: the API's responses are flat objects of strings and
 * integers, and writing them straight out takes about a quarter of the
 * instructions of building a json-c object and serialising it (callgrind,
 * a GET's body). A NULL value is JSON null.
 */
void	 buf_json_str(struct buf *, const char *name, const char *value);
void	 buf_json_int(struct buf *, const char *name, long long value);
/* Hands the data to the caller (who frees it) and resets the buffer. */
char	*buf_release(struct buf *);
void	 buf_free(struct buf *);

/*
 * Length of the well-formed UTF-8 sequence at s, n bytes left (RFC 3629: no
 * overlong forms, no surrogates, nothing past U+10FFFF): 1 to 4; 0 when it
 * is malformed; -1 when the end cuts it off. json-c lets such bytes through
 * and PostgreSQL refuses to store them, so what we store is checked here.
 */
int	 utf8_seq_len(const unsigned char *s, size_t n);

/* Seconds by clock id (CLOCK_MONOTONIC, CLOCK_REALTIME), as a double. */
double	 clock_seconds(clockid_t);

/* Constant-time comparison of two equal-length byte strings. */
int	 timingsafe_eq(const void *, const void *, size_t);

#endif
