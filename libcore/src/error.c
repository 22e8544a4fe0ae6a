/*
 * Per-thread last error. Every failing public call stores a code and a
 * message here before returning the code, so bindings can fetch the message
 * in the same native call (the Go binding relies on that to avoid pinning
 * goroutines to threads).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "common.h"

#define LIM_ERRMSG_MAX 1024

static _Thread_local int last_code;
static _Thread_local char last_message[LIM_ERRMSG_MAX];

int lim__error(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_message, sizeof(last_message), fmt, ap);
	va_end(ap);
	last_code = code;
	return code;
}

int lim__error_prefix(int code, const char *fmt, ...)
{
	char prefix[256];
	char old[LIM_ERRMSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, last_message, sizeof(old));
	/* Truncating a long message is fine; losing the prefix is not. */
	size_t plen = strlen(prefix);
	memcpy(last_message, prefix, plen);
	memcpy(last_message + plen, ": ", 2);
	size_t room = sizeof(last_message) - plen - 3;
	size_t olen = strnlen(old, room);
	memcpy(last_message + plen + 2, old, olen);
	last_message[plen + 2 + olen] = '\0';
	last_code = code;
	return code;
}

void lim__error_clear(void)
{
	last_code = 0;
	last_message[0] = '\0';
}

int lim_error_last_code(void)
{
	return last_code;
}

const char *lim_error_last(void)
{
	return last_message;
}

const char *lim_error_name(int code)
{
	switch (code) {
	case LIM_OK: return "LIM_OK";
	case LIM_ERROR: return "LIM_ERROR";
	case LIM_ENOTFOUND: return "LIM_ENOTFOUND";
	case LIM_EEXISTS: return "LIM_EEXISTS";
	case LIM_EINVALID: return "LIM_EINVALID";
	case LIM_EMALFORMED: return "LIM_EMALFORMED";
	case LIM_EHASH: return "LIM_EHASH";
	case LIM_ESIGNATURE: return "LIM_ESIGNATURE";
	case LIM_EGAP: return "LIM_EGAP";
	case LIM_EEQUIVOCATION: return "LIM_EEQUIVOCATION";
	case LIM_ECLOCK: return "LIM_ECLOCK";
	case LIM_ENOTSTORE: return "LIM_ENOTSTORE";
	case LIM_EVERSION: return "LIM_EVERSION";
	case LIM_ECORRUPT: return "LIM_ECORRUPT";
	case LIM_EIO: return "LIM_EIO";
	case LIM_EFAILED: return "LIM_EFAILED";
	case LIM_ETXN: return "LIM_ETXN";
	case LIM_ENOMEM: return "LIM_ENOMEM";
	case LIM_EAUTH: return "LIM_EAUTH";
	case LIM_EPROTOCOL: return "LIM_EPROTOCOL";
	case LIM_ECLOSED: return "LIM_ECLOSED";
	case LIM_EITEROVER: return "LIM_EITEROVER";
	default: return "LIM_EUNKNOWN";
	}
}

const char *lim_version(void)
{
	return LIM_VERSION;
}
