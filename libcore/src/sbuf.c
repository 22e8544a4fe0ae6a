/*
 * The growable buffer behind every encoder and printer in libcore. Growth
 * doubles, so appending n bytes one by one costs O(n). Allocation failure is
 * sticky (see common.h) to keep call sites free of per-append checks.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "common.h"

int lim_sb__grow(lim_sb *sb, size_t extra)
{
	size_t need, cap;
	char *p;
	if (sb->oom)
		return -1;
	need = sb->len + extra + 1;
	if (need <= sb->cap)
		return 0;
	cap = sb->cap ? sb->cap : 64;
	while (cap < need)
		cap *= 2;
	p = realloc(sb->ptr, cap);
	if (!p) {
		sb->oom = 1;
		return -1;
	}
	sb->ptr = p;
	sb->cap = cap;
	return 0;
}

void lim_sb__put(lim_sb *sb, const void *p, size_t n)
{
	if (lim_sb__grow(sb, n) < 0)
		return;
	if (n)
		memcpy(sb->ptr + sb->len, p, n);
	sb->len += n;
	sb->ptr[sb->len] = '\0';
}

void lim_sb__puts(lim_sb *sb, const char *s)
{
	lim_sb__put(sb, s, strlen(s));
}

void lim_sb__putc(lim_sb *sb, char c)
{
	lim_sb__put(sb, &c, 1);
}

void lim_sb__printf(lim_sb *sb, const char *fmt, ...)
{
	va_list ap;
	int n;
	char small[128];
	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		sb->oom = 1;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		lim_sb__put(sb, small, (size_t)n);
		return;
	}
	if (lim_sb__grow(sb, (size_t)n) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(sb->ptr + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

void lim_sb__clear(lim_sb *sb)
{
	sb->len = 0;
	sb->oom = 0;
	if (sb->ptr)
		sb->ptr[0] = '\0';
}

void lim_sb__free(lim_sb *sb)
{
	free(sb->ptr);
	sb->ptr = NULL;
	sb->len = sb->cap = 0;
	sb->oom = 0;
}

int lim_sb__check(const lim_sb *sb)
{
	if (sb->oom)
		return lim__error(LIM_ENOMEM, "out of memory");
	return 0;
}

int lim_sb__to_buf(lim_sb *sb, lim_buf *out)
{
	if (lim_sb__check(sb) < 0) {
		lim_sb__free(sb);
		return LIM_ENOMEM;
	}
	if (!sb->ptr)
		lim_sb__put(sb, "", 0);
	if (lim_sb__check(sb) < 0)
		return LIM_ENOMEM;
	out->ptr = sb->ptr;
	out->size = sb->len;
	sb->ptr = NULL;
	sb->len = sb->cap = 0;
	return 0;
}

void lim_buf_dispose(lim_buf *buf)
{
	if (!buf)
		return;
	free(buf->ptr);
	buf->ptr = NULL;
	buf->size = 0;
}
