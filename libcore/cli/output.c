/*
 * output.c — error lines, exit statuses and hex.
 *
 * Every failure is reported as exactly one line on stderr,
 *
 *     lim: COMMAND: message
 *
 * (or "lim: message" before a command is known), so scripts can grep it
 * and a person sees one cause. Messages are single-lined here whatever
 * their source. The exit status is chosen from the library's error code
 * by cli_exit_status(), the only place that mapping lives.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void vreport(const struct cli *c, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof msg, fmt, ap);
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	fflush(stdout);
	if (c && c->name)
		fprintf(stderr, "lim: %s: %s\n", c->name, msg);
	else
		fprintf(stderr, "lim: %s\n", msg);
}

int cli_fail(const struct cli *c, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(c, fmt, ap);
	va_end(ap);
	return status;
}

int cli_usage_error(const struct cli *c, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return cli_fail(c, CLI_EXIT_USAGE, "%s (see lim --help)", msg);
}

int cli_exit_status(int rc)
{
	switch (rc) {
	case LIM_OK:
		return CLI_EXIT_OK;
	case LIM_ENOTFOUND:
		return CLI_EXIT_NOTFOUND;
	case LIM_EINVALID:
	case LIM_EMALFORMED:
	case LIM_EHASH:
	case LIM_ESIGNATURE:
	case LIM_EGAP:
	case LIM_EEQUIVOCATION:
	case LIM_ECLOCK:
		return CLI_EXIT_INVALID;
	default:
		return CLI_EXIT_FAILURE;
	}
}

int cli_fail_lim(const struct cli *c, int rc)
{
	const char *msg = lim_error_last();

	if (!msg || !*msg)
		msg = lim_error_name(rc);
	return cli_fail(c, cli_exit_status(rc), "%s", msg ? msg : "unknown error");
}

void cli_hex(char *out, const unsigned char *bytes, size_t len)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 15];
	}
	out[2 * len] = '\0';
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int cli_unhex(unsigned char *out, size_t len, const char *hex)
{
	if (strlen(hex) != 2 * len)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

int cli_finish(const struct cli *c, int status)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (status == CLI_EXIT_OK)
			return cli_fail(c, CLI_EXIT_FAILURE, "writing standard output: %s",
			                strerror(errno));
	}
	return status;
}
