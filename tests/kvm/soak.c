/*
 * The soak: CYCLES start/stop cycles of the smallest guest in a row, each flint run to its
 * end and its exit code checked. At cycles 1, 10, 100, 1000 (and the last) it prints this
 * harness's fd count and VmRSS, and flint's peak RSS (ru_maxrss from wait4). It fails on a
 * wrong exit code, and when the harness holds more fds at the end than after cycle 1 or its
 * RSS grew by more than 1 MiB (a leak of its own would hide one of flint's, e.g. a pipe).
 *
 * Usage: soak FLINT PAYLOAD CYCLES [TMPDIR]
 * PAYLOAD is tests/guest's elf64.elf (or any payload taking flint.test_exit=N); it runs with
 * 1 vCPU and 32 MiB and must exit through the exit port with 0, which flint turns into 1.
 * Ends with the line `soak: N passed, N failed`.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SOAK_EXPECT 1 /* flint's code for the payload's exit-port value 0 */

static long self_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	long n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the DIR's own */
}

static long self_rss_kib(void)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			v = strtol(line + 6, NULL, 10);
	fclose(f);
	return v;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One flint run: its exit code (128 + signal when killed), its peak RSS in KiB. */
static int run_once(char *const argv[], const char *errpath, long *maxrss_kib)
{
	struct rusage ru;
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		int err = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (null < 0 || err < 0)
			_exit(126);
		dup2(null, 0);
		dup2(null, 1);
		dup2(err, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) != pid)
		return -1;
	*maxrss_kib = ru.ru_maxrss;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void show_file(const char *path)
{
	char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, stderr);
	fclose(f);
}

int main(int argc, char **argv)
{
	char dir[256], cfg[300], errpath[300], json[1024];
	long cycles, passed = 0, failed = 0, fds1 = -1, rss1 = -1, peak = 0, fds, rss, maxrss = 0;
	double start;
	FILE *f;

	if (argc < 4 || (cycles = strtol(argv[3], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: soak FLINT PAYLOAD CYCLES [TMPDIR]\n");
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s/flint-soak-XXXXXX", argc > 4 ? argv[4] : "/tmp");
	if (!mkdtemp(dir)) {
		fprintf(stderr, "soak: mkdtemp %s: %s\n", dir, strerror(errno));
		return 1;
	}
	snprintf(cfg, sizeof(cfg), "%s/vm.json", dir);
	snprintf(errpath, sizeof(errpath), "%s/stderr", dir);
	snprintf(json, sizeof(json),
	         "{\"boot-source\":{\"kernel_image_path\":\"%s\",\"boot_args\":\"flint.test_exit="
	         "0\"},"
	         "\"drives\":[],\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":32}}",
	         argv[2]);
	if (!(f = fopen(cfg, "w")) || fputs(json, f) < 0 || fclose(f) != 0) {
		fprintf(stderr, "soak: %s: %s\n", cfg, strerror(errno));
		return 1;
	}
	char *fargv[] = {
		argv[1], "--config-file", cfg, "--exit-port", "0xf4", "--no-console", NULL
	};

	printf("soak: %ld cycles of %s on %s\n", cycles, argv[2], argv[1]);
	fflush(stdout);
	start = now_s();
	for (long c = 1; c <= cycles; c++) {
		int code = run_once(fargv, errpath, &maxrss);

		if (code == SOAK_EXPECT) {
			passed++;
		} else {
			failed++;
			fprintf(stderr, "soak: cycle %ld: flint exited %d, want %d; its stderr:\n",
			        c, code, SOAK_EXPECT);
			show_file(errpath);
			if (failed >= 5)
				break; /* something is broken for good: do not wait for the rest */
		}
		if (maxrss > peak)
			peak = maxrss;
		fds = self_fds();
		rss = self_rss_kib();
		if (c == 1)
			fds1 = fds, rss1 = rss;
		if (c == 1 || c == 10 || c == 100 || c == 1000 || c == cycles) {
			printf("cycle %ld: harness fds %ld, harness VmRSS %ld KiB; flint peak RSS "
			       "%ld "
			       "KiB (highest so far %ld KiB); %.1f s, %.0f ms per cycle\n",
			       c, fds, rss, maxrss, peak, now_s() - start,
			       (now_s() - start) * 1000 / (double)c);
			fflush(stdout);
		}
	}
	fds = self_fds();
	rss = self_rss_kib();
	if (fds != fds1 || rss - rss1 > 1024) {
		fprintf(stderr, "soak: the harness went from %ld fds and %ld KiB to %ld and %ld\n",
		        fds1, rss1, fds, rss);
		failed++;
	}
	unlink(cfg);
	unlink(errpath);
	rmdir(dir);
	printf("soak: %ld passed, %ld failed\n", passed, failed);
	return failed ? 1 : 0;
}
