/*
 * Shared helpers for the liblim benchmarks (bench/bench_core.c,
 * bench/bench_sync.c): clocks, sample statistics, and the record format
 * that bench/run turns into a table or JSON lines.
 *
 * Every program writes records to standard output, one per line, fields
 * separated by TABs:
 *
 *   R <name> <value> <unit> <baseline> <ratio> <target> <meets> <spread> <note>
 *   I <key> <value>                                 (run information)
 *
 * An absent field is "-". <value> "null" means skipped; <note> then says why.
 * <spread> is the relative spread of the per-repetition figures
 * ((max - min) / median, in %). Progress goes to standard error.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#define BENCH_UNUSED __attribute__((unused))

BENCH_UNUSED static inline double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

BENCH_UNUSED static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

BENCH_UNUSED static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

BENCH_UNUSED static void progress(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("  .. ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* Deterministic xorshift so every run touches the same keys. */
BENCH_UNUSED static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
BENCH_UNUSED static inline uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

BENCH_UNUSED static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Percentile of a sorted array (nearest rank). */
BENCH_UNUSED static double pct_sorted(const double *v, size_t n, double p)
{
	if (n == 0)
		return NAN;
	size_t k = (size_t)ceil(p / 100.0 * (double)n);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1];
}

BENCH_UNUSED static double percentile(double *v, size_t n, double p)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return pct_sorted(v, n, p);
}

/* Median of the repetitions' figures and their relative spread in %. */
typedef struct {
	double med, spread;
} summary;

BENCH_UNUSED static summary summarize(const double *reps, size_t n)
{
	double tmp[64];
	summary s = { NAN, NAN };
	if (n == 0 || n > 64)
		return s;
	memcpy(tmp, reps, n * sizeof(*tmp));
	qsort(tmp, n, sizeof(*tmp), cmp_double);
	s.med = n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
	s.spread = s.med != 0 ? 100.0 * (tmp[n - 1] - tmp[0]) / s.med : 0;
	return s;
}

/* Target kinds: at most (lower is better), at least (higher is better). */
enum { T_NONE, T_MAX, T_MIN };

BENCH_UNUSED static void fmt_num(char *out, size_t cap, double v)
{
	if (isnan(v))
		snprintf(out, cap, "-");
	else if (fabs(v) >= 1000 || v == floor(v))
		snprintf(out, cap, "%.0f", v);
	else if (fabs(v) >= 10)
		snprintf(out, cap, "%.1f", v);
	else if (fabs(v) >= 0.1)
		snprintf(out, cap, "%.3f", v);
	else
		snprintf(out, cap, "%.4g", v);
}

/*
 * Emit one result. `target_on` says which figure the target applies to:
 * 'v' the value, 'r' the ratio. baseline/ratio/spread may be NAN.
 */
BENCH_UNUSED static void emit(const char *name, double value, const char *unit, double baseline, double ratio,
                 int tkind, double target, char target_on, double spread, const char *note)
{
	char v[64], b[64], r[64], t[96], sp[64];
	const char *meets = "-";
	fmt_num(v, sizeof(v), value);
	fmt_num(b, sizeof(b), baseline);
	if (isnan(ratio))
		snprintf(r, sizeof(r), "-");
	else
		snprintf(r, sizeof(r), "%.3f", ratio);
	if (tkind == T_NONE) {
		snprintf(t, sizeof(t), "-");
	} else {
		double x = target_on == 'r' ? ratio : value;
		char tv[64];
		fmt_num(tv, sizeof(tv), target);
		snprintf(t, sizeof(t), "%s%s%s", target_on == 'r' ? "ratio" : "", tkind == T_MAX ? "<=" : ">=", tv);
		if (!isnan(x))
			meets = (tkind == T_MAX ? x <= target : x >= target) ? "yes" : "no";
	}
	if (isnan(spread))
		snprintf(sp, sizeof(sp), "-");
	else
		snprintf(sp, sizeof(sp), "%.1f", spread);
	printf("R\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, v, unit, b, r, t, meets, sp,
	       note && *note ? note : "-");
	fflush(stdout);
}

BENCH_UNUSED static void emit_skip(const char *name, const char *unit, const char *reason)
{
	printf("R\t%s\tnull\t%s\t-\t-\t-\t-\t-\t%s\n", name, unit, reason);
	fflush(stdout);
}

BENCH_UNUSED static void info(const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("I\t%s\t", key);
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	va_end(ap);
}

BENCH_UNUSED static long long file_size(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 ? (long long)sb.st_size : 0;
}

/* Store size: the database file plus its WAL. */
BENCH_UNUSED static long long store_size(const char *path)
{
	char wal[4400];
	snprintf(wal, sizeof(wal), "%s-wal", path);
	return file_size(path) + file_size(wal);
}

BENCH_UNUSED static void remove_store(const char *path)
{
	char p[4400];
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}

/* This process's peak RSS in MB. */
BENCH_UNUSED static double self_peak_rss_mb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_maxrss / 1024.0;
}

/* VmHWM of a live process in MB (NAN if unreadable). */
BENCH_UNUSED static double proc_hwm_mb(int pid)
{
	char path[64], line[256];
	double mb = NAN;
	FILE *f;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (!(f = fopen(path, "r")))
		return NAN;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmHWM:", 6) == 0) {
			mb = strtod(line + 6, NULL) / 1024.0;
			break;
		}
	fclose(f);
	return mb;
}

/* CPU seconds (user + system) a live process has used so far (NAN if
 * unreadable): with the wall time it tells whether a process was busy or
 * waiting. */
BENCH_UNUSED static double proc_cpu_s(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;
	size_t n;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (!(f = fopen(path, "r")))
		return NAN;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* Fields after the command name, which may hold spaces: state is 3rd,
	 * utime the 14th and stime the 15th. */
	if (!(p = strrchr(buf, ')')) || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return NAN;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/*
 * Seconds a process's threads spent runnable but waiting for a CPU (the
 * second field of /proc/PID/task/TID/schedstat), summed over its threads;
 * NAN where the kernel does not say. On a machine shared with other work
 * this is the figure that says how disturbed a measurement was.
 */
BENCH_UNUSED static double proc_runq_wait_s(int pid)
{
	char path[300];
	struct dirent *e;
	double total = 0;
	int any = 0;
	DIR *d;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	if (!(d = opendir(path)))
		return NAN;
	while ((e = readdir(d))) {
		unsigned long long run, wait;
		FILE *f;
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/schedstat", pid, e->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		if (fscanf(f, "%llu %llu", &run, &wait) == 2) {
			total += (double)wait * 1e-9;
			any = 1;
		}
		fclose(f);
	}
	closedir(d);
	return any ? total : NAN;
}

#endif
