/* fuzz.h: what the libFuzzer targets share: the entry points and checks. */
#ifndef DLR_FUZZ_H
#define DLR_FUZZ_H

#include <locale.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
/* Optional; libFuzzer calls it once before the first input. */
int	LLVMFuzzerInitialize(int *, char ***);

/*
 * An invariant of the code under test. A violation is reported and
 * aborts, so that libFuzzer keeps the input as a crash like any ASan or
 * UBSan finding.
 */
#define FUZZ_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: invariant violated: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

/* LC_CTYPE as both programs set it, so that libidn2 converts host names. */
static inline void
fuzz_utf8_locale(void)
{
	if (setlocale(LC_CTYPE, "C.UTF-8") == NULL)
		setlocale(LC_CTYPE, "");
}

/* The input as a C string, cut at the first NUL as a C caller would. */
static inline char *
fuzz_cstr(const uint8_t *data, size_t size)
{
	const uint8_t	*nul = memchr(data, '\0', size);
	size_t		 n = nul != NULL ? (size_t)(nul - data) : size;
	char		*s;

	if ((s = malloc(n + 1)) == NULL)
		abort();
	memcpy(s, data, n);
	s[n] = '\0';
	return s;
}

/*
 * Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
 * U+10FFFF. Written here rather than borrowed, to judge the code under
 * test independently.
 */
static inline bool
fuzz_utf8_valid(const char *str, size_t n)
{
	const unsigned char	*s = (const unsigned char *)str;
	size_t			 i = 0, len, k;
	uint32_t		 cp, min;

	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xe0) == 0xc0) {
			len = 2, cp = s[i] & 0x1f, min = 0x80;
		} else if ((s[i] & 0xf0) == 0xe0) {
			len = 3, cp = s[i] & 0x0f, min = 0x800;
		} else if ((s[i] & 0xf8) == 0xf0) {
			len = 4, cp = s[i] & 0x07, min = 0x10000;
		} else
			return false;
		if (n - i < len)
			return false;
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

/*
 * Whether PostgreSQL stores url as a callback_url: the CHECK constraints of
 * sql/001_api.sql (LIKE 'https://%', at most 2048 bytes) and the database's
 * UTF-8 encoding. A URL the API accepts but the database refuses is a 500.
 */
static inline bool
fuzz_storable_url(const char *url)
{
	size_t	 n = strlen(url);

	return strncmp(url, "https://", 8) == 0 && n <= 2048 &&
	    fuzz_utf8_valid(url, n);
}

#endif
