/*
 * Internal helpers shared by every libcore file: error reporting, a growable
 * byte buffer, and small utilities. Nothing here knows about SQLite or the
 * change format; every other file may include it.
 */
#ifndef LIM_COMMON_H
#define LIM_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "lim.h"

#define LIM_UNUSED(x) ((void)(x))
#define LIM_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Record `code` and a printf-style message as this thread's last error and
 * return `code`, so callers can write `return lim__error(LIM_EINVALID, ...)`. */
int lim__error(int code, const char *fmt, ...) LIM_PRINTF(2, 3);
/* Prefix the current last-error message with context ("pack line 3: ..."). */
int lim__error_prefix(int code, const char *fmt, ...) LIM_PRINTF(2, 3);
void lim__error_clear(void);

/*
 * A growable byte buffer. Always NUL-terminated when ptr != NULL, so text
 * built in it can be handed out as a C string. On allocation failure the
 * buffer records it (oom) and later appends are no-ops; check once at the end.
 */
typedef struct {
	char *ptr;
	size_t len;
	size_t cap;
	int oom;
} lim_sb;

#define LIM_SB_INIT { NULL, 0, 0, 0 }

int lim_sb__grow(lim_sb *sb, size_t extra);
void lim_sb__put(lim_sb *sb, const void *p, size_t n);
void lim_sb__puts(lim_sb *sb, const char *s);
void lim_sb__putc(lim_sb *sb, char c);
void lim_sb__printf(lim_sb *sb, const char *fmt, ...) LIM_PRINTF(2, 3);
void lim_sb__clear(lim_sb *sb);
void lim_sb__free(lim_sb *sb);
/* Move the contents into a public lim_buf (the buffer is left empty). */
int lim_sb__to_buf(lim_sb *sb, lim_buf *out);
/* LIM_ENOMEM if an append failed, else 0. */
int lim_sb__check(const lim_sb *sb);

#endif
