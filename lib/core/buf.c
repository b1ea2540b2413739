/* sr_buf: the growable string the library builds request URLs, signatures and
 * reports in (internal.h). */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Room for more bytes and the NUL; on failure the buffer is marked and left as is. */
static int buf_need(sr_buf *b, size_t more)
{
	if (b->oom)
		return -1;
	if (b->len + more + 1 <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + more + 1) {
		if (cap > SIZE_MAX / 2) {
			b->oom = 1;
			return -1;
		}
		cap *= 2;
	}
	char *np = sr_realloc(b->p, cap);
	if (!np) {
		b->oom = 1;
		return -1;
	}
	b->p = np;
	b->cap = cap;
	return 0;
}

void sr_buf_put(sr_buf *b, const char *s, size_t n)
{
	if (buf_need(b, n) != 0)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void sr_buf_puts(sr_buf *b, const char *s)
{
	sr_buf_put(b, s, strlen(s));
}

void sr_buf_printf(sr_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (k < 0) {
		b->oom = 1;
		return;
	}
	if (buf_need(b, (size_t)k) != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)k + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)k;
}

void sr_buf_free(sr_buf *b)
{
	if (b->p) {
		explicit_bzero(b->p, b->cap);   /* URLs may carry a SAS, signatures a key's work */
		sr_free(b->p);
	}
	memset(b, 0, sizeof(*b));
}
