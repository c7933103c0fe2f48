/*
 * What a guest can do to flint through its devices, on KVM: it must never block flint,
 * flood its log, or keep it from stopping.
 */
#include "tests/lib/flintrun.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

/* mov dx, 0x3f8; mov al, 'x'; 1: out dx, al; jmp 1b: the UART, as fast as it goes. */
static const uint8_t uart_flood[] = { 0x66, 0xba, 0xf8, 0x03, 0xb0, 0x78, 0xee, 0xeb, 0xfd };

/* Runs flint on @kernel with stdout a full pipe nobody reads. */
static void run_unread(const char *kernel, char *extra_arg, int sig, int sig_ms)
{
	char json[1024];
	char *argv[8] = { (char *)test_flint_bin(), "--config-file", NULL, extra_arg, NULL };

	snprintf(json, sizeof(json),
	         "{\"boot-source\":{\"kernel_image_path\":\"%s\"},\"drives\":[],"
	         "\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":32}}",
	         kernel);
	argv[2] = test_write_file("unread.json", json, strlen(json));
	/*
	 * Long enough for the flood to overfill the console's buffer (and be said dropped)
	 * even when nested KVM on a loaded machine takes each UART exit slowly: 2 s was not.
	 */
	if (extra_arg && strcmp(extra_arg, "--timeout") == 0)
		argv[4] = "5", argv[5] = NULL;
	/* Far longer than the stop needs: a flint blocked on its console is killed at 60 s. */
	test_run_signal_when(sig ? "booting " : NULL); /* its handlers are in place by then */
	assert_int_equal(test_run_unread(argv, 60, sig, sig_ms, &flint_res), 0);
	free(argv[2]);
}

/* A console nobody drains: --timeout still stops the VM (it blocked for good before). */
static void test_unread_console_timeout(void **state)
{
	char *k = tiny_elf_file("flood.elf", uart_flood, sizeof(uart_flood));

	(void)state;
	run_unread(k, "--timeout", 0, 0);
	flint_expect(124, NULL, "timeout");
	assert_non_null(strstr(flint_res.err, "guest output"));
	free(k);
}

/* The same, stopped by SIGTERM. */
static void test_unread_console_sigterm(void **state)
{
	char *k = tiny_elf_file("flood.elf", uart_flood, sizeof(uart_flood));

	(void)state;
	run_unread(k, NULL, SIGTERM, 2000);
	flint_expect(143, NULL, "received SIGTERM");
	free(k);
}

/*
 * The boot timer written 1000 times (as a guest can in a loop): one log line, not 1000.
 *   mov ecx, 1000; mov edi, 0xc0000000; 1: mov byte [rdi], 123; loop 1b;
 *   mov al, 0; out 0xf4, al; jmp .
 */
static void test_boot_timer_logged_once(void **state)
{
	static const uint8_t code[] = { 0xb9, 0xe8, 0x03, 0x00, 0x00, 0xbf, 0x00,
		                        0x00, 0x00, 0xc0, 0xc6, 0x07, 0x7b, 0xe2,
		                        0xfb, 0xb0, 0x00, 0xe6, 0xf4, 0xeb, 0xfe };
	char *k = tiny_elf_file("timer.elf", code, sizeof(code));
	const char *p;
	int lines = 0;

	(void)state;
	flint_boot(k, "x", NULL, 1, 32, NULL, NULL, 60, 0, 0);
	flint_expect(PORT_EXIT(0), NULL, "guest boot time: ");
	for (p = flint_res.err; (p = strstr(p, "guest boot time: ")); p++)
		lines++;
	assert_int_equal(lines, 1);
	free(k);
}

/*
 * The malicious guest (tests/guest/hostile.elf) against every device flint gives a guest:
 * two drives (one read-only), a network interface on a TAP, vsock and entropy.
 */

#define HOSTILE_TAP  "flhostile0"
#define HOSTILE_OUT  (1u << 20) /* what is kept of stdout (the hammer writes random bytes) */
#define HOSTILE_ERR  (8u << 20)
#define HOSTILE_MARK "flint-guest: hostile pause "
/* RSS growth allowed between the first pass and the last: a page or two of heap, not a leak. */
#define HOSTILE_RSS_SLACK_KIB 256

/* What one run of flint on the hostile guest gave. */
struct hostile_run {
	int code;
	double secs;
	unsigned pauses;
	long fds[2];     /* flint's open fds at the first and the last pause */
	long rss_kib[2]; /* and its VmRSS */
	char *out, *err; /* NUL-terminated; stdout may hold NULs of its own (memmem) */
	size_t out_len, err_len;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A persistent TAP flint can open (it never creates one), up, so its writes go somewhere. */
static void tap_persist(const char *name, bool on)
{
	struct ifreq ifr = { 0 };
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC), s;

	if (fd < 0)
		fail_msg("/dev/net/tun: %s (the hostile guest test needs a TAP)", strerror(errno));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETPERSIST, on ? 1 : 0) < 0)
		fail_msg("TAP %s: %s", name, strerror(errno));
	close(fd);
	if (!on)
		return;
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ifr.ifr_flags = IFF_UP;
	if (s < 0 || ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		fail_msg("TAP %s up: %s", name, strerror(errno));
	close(s);
}

static long count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	long n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if (!(d = opendir(path)))
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static long status_kib(pid_t pid, const char *key)
{
	char path[64], line[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0)
			v = strtol(line + strlen(key), NULL, 10);
	fclose(f);
	return v;
}

static void append(int *fd, char *buf, size_t cap, size_t *len)
{
	char sink[65536];
	ssize_t n;

	if (*len < cap - 1)
		n = read(*fd, buf + *len, cap - 1 - *len);
	else
		n = read(*fd, sink, sizeof(sink)); /* full: the rest is dropped */
	if (n > 0 && *len < cap - 1)
		*len += (size_t)n;
	if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
		close(*fd);
		*fd = -1;
	}
	buf[*len] = 0;
}

/*
 * Runs flint on @argv with the guest's console on pipes. Each time the guest prints a pause
 * line, flint's fd count and RSS are read (the first and the last are kept) and a byte on
 * its stdin lets the guest go on.
 */
static void hostile_exec(char *const argv[], double timeout, struct hostile_run *r)
{
	int in[2], out[2], err[2], status;
	size_t scanned = 0;
	double start = now_s();
	pid_t pid;

	/* Static: a failed assertion leaves the test without freeing (ASan counts leaks). */
	static char out_buf[HOSTILE_OUT], err_buf[HOSTILE_ERR];

	memset(r, 0, sizeof(*r));
	r->out = out_buf;
	r->err = err_buf;
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	assert_int_equal(pipe2(err, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		execv(argv[0], argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	close(err[1]);
	while (out[0] >= 0 || err[0] >= 0) {
		struct pollfd p[2] = { { out[0], POLLIN, 0 }, { err[0], POLLIN, 0 } };
		const char *m;

		if (now_s() - start > timeout) {
			kill(pid, SIGKILL);
			break;
		}
		if (poll(p, 2, 100) < 0 && errno != EINTR)
			break;
		if (out[0] >= 0 && (p[0].revents & (POLLIN | POLLHUP)))
			append(&out[0], r->out, HOSTILE_OUT, &r->out_len);
		if (err[0] >= 0 && (p[1].revents & (POLLIN | POLLHUP)))
			append(&err[0], r->err, HOSTILE_ERR, &r->err_len);
		while ((m = memmem(r->out + scanned, r->out_len - scanned, HOSTILE_MARK,
		                   strlen(HOSTILE_MARK))) &&
		       memchr(m, '\n', r->out_len - (size_t)(m - r->out))) {
			unsigned k = r->pauses++ ? 1 : 0;
			r->fds[k] = count_fds(pid);
			r->rss_kib[k] = status_kib(pid, "VmRSS:");
			scanned = (size_t)(m - r->out) + strlen(HOSTILE_MARK);
			if (write(in[1], "g", 1) != 1)
				break;
		}
	}
	for (int i = 0; i < 2; i++)
		if ((i ? err[0] : out[0]) >= 0)
			close(i ? err[0] : out[0]);
	close(in[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	r->code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	r->secs = now_s() - start;
}

/* The end of stdout and stderr, for a failure's message. */
static void hostile_dump(const struct hostile_run *r)
{
	size_t o = r->out_len > 2000 ? r->out_len - 2000 : 0;
	size_t e = r->err_len > 6000 ? r->err_len - 6000 : 0;

	print_error("exit %d after %.1f s, %u pauses, fds %ld -> %ld, VmRSS %ld -> %ld KiB\n"
	            "stdout (end): %.*s\nstderr (end): %s\n",
	            r->code, r->secs, r->pauses, r->fds[0], r->fds[1], r->rss_kib[0], r->rss_kib[1],
	            (int)(r->out_len - o), r->out + o, r->err + e);
}

/*
 * What a log line is about: the text from its message to the first ": " (a device,
 * "virtio-rng queue 0", "vcpu 0"), or the whole message when it has none.
 */
static void log_subject(const char *msg, char *subj, size_t cap)
{
	const char *colon = strstr(msg, ": ");
	size_t n = colon ? (size_t)(colon - msg) : strcspn(msg, "\n");

	if (strspn(msg, "0123456789") &&
	    strncmp(msg + strspn(msg, "0123456789"), " similar messages suppressed", 28) == 0) {
		snprintf(subj, cap, "(suppressed)"); /* the limiter's own note */
		return;
	}

	snprintf(subj, cap, "%.*s", (int)(n < cap - 1 ? n : cap - 1), msg);
}

/*
 * The log is rate-limited per thing it is about: no subject gets more than @max lines in
 * any second of flint's clock (a limiter's 1 s window can straddle two of ours, and a
 * subject such as a drive has two limiters, its transport's and its model's). Returns the
 * number of lines about @must (a subject prefix), which the caller expects to be > 0.
 */
static unsigned check_log_rate(const struct hostile_run *r, unsigned max, const char *must)
{
	enum { MAX_SUBJ = 64 };
	struct {
		char subj[96];
		long long sec;
		unsigned n;
	} seen[MAX_SUBJ];
	unsigned nseen = 0, about = 0;
	const char *line = r->err;

	for (; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		long long sec, usec;
		char level[16], subj[96];
		int off = 0;
		unsigned i;

		if (sscanf(line, "[%lld.%lld] flint %15[a-z]: %n", &sec, &usec, level, &off) < 3 ||
		    !off)
			continue;
		log_subject(line + off, subj, sizeof(subj));
		if (strncmp(subj, must, strlen(must)) == 0)
			about++;
		for (i = 0; i < nseen && strcmp(seen[i].subj, subj); i++) {
		}
		if (i == nseen) {
			if (nseen == MAX_SUBJ) {
				hostile_dump(r);
				fail_msg("more than %u subjects in the log", MAX_SUBJ);
			}
			snprintf(seen[nseen].subj, sizeof(seen[nseen].subj), "%s", subj);
			seen[nseen].sec = sec;
			seen[nseen++].n = 0;
		}
		if (seen[i].sec != sec)
			seen[i].sec = sec, seen[i].n = 0;
		if (++seen[i].n > max) {
			hostile_dump(r);
			fail_msg("more than %u log lines about \"%s\" in second %lld", max, subj,
			         sec);
		}
	}
	return about;
}

/* Runs the hostile guest with @seed and checks flint through it. */
static void hostile_devices(unsigned seed, unsigned rounds, unsigned passes, bool sweep)
{
	char json[2048], args[160],
	        *argv[8] = {
		        (char *)test_flint_bin(), "--config-file", NULL, "--exit-port", "0xf4", NULL
	        };
	static const char zero[4096];
	const char *subjects[] = { "virtio-blk data", "virtio-blk ro", "virtio-net eth0",
		                   "virtio-vsock",    "virtio-rng",    "vcpu 0" };
	char *data = test_write_file("data.img", zero, sizeof(zero));
	char *ro = test_write_file("ro.img", zero, sizeof(zero));
	struct hostile_run r;
	size_t lines = 0;
	bool asan;
	unsigned i;

	tap_persist(HOSTILE_TAP, true);
	snprintf(args, sizeof(args),
	         "flint.seed=%u flint.rounds=%u flint.passes=%u flint.pause=1 "
	         "flint.sweep=%u",
	         seed, rounds, passes, sweep);
	snprintf(json, sizeof(json),
	         "{\"boot-source\":{\"kernel_image_path\":\"%s\",\"boot_args\":\"%s\"},"
	         "\"drives\":[{\"drive_id\":\"data\",\"path_on_host\":\"%s\",\"is_root_device\":"
	         "false,"
	         "\"is_read_only\":false},{\"drive_id\":\"ro\",\"path_on_host\":\"%s\","
	         "\"is_root_device\":false,\"is_read_only\":true,\"cache_type\":\"Writeback\"}],"
	         "\"network-interfaces\":[{\"iface_id\":\"eth0\",\"host_dev_name\":\"%s\"}],"
	         "\"vsock\":{\"guest_cid\":3,\"uds_path\":\"%s/v.sock\"},\"entropy\":{},"
	         "\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":32}}",
	         flint_payload("hostile.elf"), args, data, ro, HOSTILE_TAP, test_tmpdir());
	argv[2] = test_write_file("hostile.json", json, strlen(json));
	hostile_exec(argv, 600, &r);
	tap_persist(HOSTILE_TAP, false);
	if (r.code != PORT_EXIT(0) || !memmem(r.out, r.out_len, "flint-guest: hostile done", 25) ||
	    !memmem(r.out, r.out_len, "entropy device served", 21) || r.pauses != 2 ||
	    strstr(r.err, "Sanitizer") || strstr(r.err, "runtime error"))
		hostile_dump(&r);
	assert_int_equal(r.code, PORT_EXIT(0));
	assert_non_null(memmem(r.out, r.out_len, "flint-guest: entropy device served", 34));
	assert_non_null(memmem(r.out, r.out_len, "flint-guest: hostile done", 25));
	assert_null(strstr(r.err, "Sanitizer"));
	assert_null(strstr(r.err, "runtime error"));
	/* Every device was broken by the guest and said so, within its rate limit. */
	for (i = 0; i < sizeof(subjects) / sizeof(subjects[0]); i++)
		if (!check_log_rate(&r, 40, subjects[i])) {
			hostile_dump(&r);
			fail_msg("nothing logged about %s", subjects[i]);
		}
	assert_non_null(strstr(r.err, "the queue is broken until the device is reset"));
	assert_non_null(strstr(r.err, "similar messages suppressed"));
	/*
	 * Nothing held over from a pass: fds as they were, RSS within noise. Under ASan, RSS
	 * grows by its quarantine of freed memory, and LeakSanitizer checks at exit instead.
	 */
	for (const char *p = r.err; (p = strchr(p, '\n')); p++)
		lines++;
	print_message("hostile seed %u: %.1f s, %zu log lines, fds %ld -> %ld, VmRSS %ld -> %ld "
	              "KiB\n",
	              seed, r.secs, lines, r.fds[0], r.fds[1], r.rss_kib[0], r.rss_kib[1]);
	asan = strstr(test_flint_bin(), "asan/") != NULL;
	if (r.pauses != 2 || r.fds[0] <= 0 || r.fds[1] != r.fds[0] || r.rss_kib[0] <= 0 ||
	    (!asan && r.rss_kib[1] - r.rss_kib[0] > HOSTILE_RSS_SLACK_KIB))
		hostile_dump(&r);
	assert_int_equal(r.pauses, 2);
	assert_true(r.fds[0] > 0);
	assert_int_equal(r.fds[1], r.fds[0]);
	assert_true(r.rss_kib[0] > 0);
	if (!asan)
		assert_true(r.rss_kib[1] - r.rss_kib[0] <= HOSTILE_RSS_SLACK_KIB);
	free(argv[2]);
	free(data);
	free(ro);
}

/*
 * Two passes: flint is measured after the first (everything set up, every path taken once)
 * and after the second. FLINT_HOSTILE_SEED picks another seed (the default is 1).
 */
static void test_hostile_devices(void **state)
{
	const char *seed = getenv("FLINT_HOSTILE_SEED");

	(void)state;
	hostile_devices(seed ? (unsigned)strtoul(seed, NULL, 10) : 1, 20000, 2, true);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unread_console_timeout),
		cmocka_unit_test(test_unread_console_sigterm),
		cmocka_unit_test(test_boot_timer_logged_once),
		cmocka_unit_test(test_hostile_devices),
	};
	return TEST_MAIN(tests, NULL, test_group_teardown);
}
