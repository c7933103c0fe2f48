/*
 * Fault-loop benchmark: flint's resolver on its event loop against a minimal poll/read/
 * ioctl/write server (the floor), both serving the same device thread over an AF_UNIX
 * SOCK_STREAM socketpair that carries the kernel's record layout. See bench/README.md.
 *
 *   build/bench/fault [-r REPS] [-t SECS] [-w WARM_SECS] [-m MEM_MIB] [-q INFLIGHT]
 *                     [-p LOOP_CPU[,DEVICE_CPU]] [-o flint|floor|bare]
 *
 * -p 0 runs the loop thread and the device thread on CPU 0; -p 0,1 puts the loop on CPU 0
 * and the device on CPU 1; without -p the scheduler places them (and the numbers swing
 * with where it puts them: one CPU or two). -o SERVER runs only that server at INFLIGHT,
 * once per rep, and prints no summary: a steady workload to profile with perf.
 *
 * A benchmark, not a test: it exits 0 whatever the numbers, and non-zero only when a
 * run could not be done at all (setup failed, a server stopped answering, wrong answers).
 */
#include "iommu/resolver.h"
#include "iommu/uapi_compat.h"
#include "vmm/base/loop.h"
#include "vmm/base/memory.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEV	    7
#define CHUNK	    (2ULL << 20)
#define REC	    sizeof(struct iommu_hwpt_pgfault)
#define RESP	    sizeof(struct iommu_hwpt_page_response)
#define MAX_FLIGHT  1024
#define COOKIES	    4096   /* > MAX_FLIGHT: send times by cookie % COOKIES */
#define FLOOR_BATCH 64	   /* the resolver's default batch */
#define HIST_NS	    50	   /* latency histogram: 50 ns buckets ... */
#define HIST_N	    400000 /* ... up to 20 ms, then one overflow bucket */
#define STALL_MS    5000   /* a server silent this long with groups in flight has failed */

/* BARE is the floor without its per-record ioctl: extra information, not in the goals. */
enum server { FLINT, FLOOR, BARE };
static const char *const server_name[] = {"flint", "floor", "bare"};

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long clock_ns(clockid_t c)
{
	struct timespec ts;
	if (clock_gettime(c, &ts))
		return 0;
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- the map backend: no-op, counts its calls ---- */

static unsigned long map_calls;
static int device_cpu = -1; /* -1: where the scheduler puts it */

static int pin_to(pthread_t t, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(t, sizeof(set), &set);
}

static int bench_map(void *ctx, uint64_t gpa, void *hva, uint64_t len, bool writable)
{
	(void)ctx, (void)gpa, (void)hva, (void)len, (void)writable;
	__atomic_fetch_add(&map_calls, 1, __ATOMIC_RELAXED);
	return 0;
}

/*
 * The fault fd is the server's end of the socketpair. A stream socket may return part of
 * a record (the kernel's fd never does): finish it, since the device is mid-write.
 */
static ssize_t bench_read(void *ctx, int fd, void *buf, size_t len)
{
	ssize_t n = read(fd, buf, len);
	size_t got = n > 0 ? (size_t)n : 0;

	(void)ctx;
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	while (got % REC) {
		n = read(fd, (uint8_t *)buf + got, REC - got % REC);
		if (n > 0)
			got += (size_t)n;
		else if (n == 0 || (errno != EAGAIN && errno != EINTR))
			return -EIO;
	}
	return (ssize_t)got;
}

static ssize_t bench_write(void *ctx, int fd, const void *buf, size_t len)
{
	ssize_t n = write(fd, buf, len);

	(void)ctx;
	return n < 0 ? -errno : n;
}

static const struct resolver_backend bench_backend = {
	.map = bench_map, .read = bench_read, .write = bench_write};

/* ---- one run: a device thread against one server ---- */

struct run {
	/* in */
	enum server server;
	unsigned inflight;
	double secs, warm_secs;
	int dev_fd;
	const struct guest_memory *mem;
	struct loop *loop;	/* flint runs: the device stops it through loop_post() */
	clockid_t server_clock; /* CPU-time clock of the server (main) thread */
	/* out */
	unsigned *hist; /* HIST_N + 1 buckets */
	unsigned long long groups, lat_n, resp_reads, errors;
	unsigned long map_calls;
	long long wall_ns, srv_cpu_ns, dev_cpu_ns;
	const char *fail;
};

struct result {
	double gps, p50_us, p99_us, mean_us, srv_util, dev_util, per_read, srv_gps;
	unsigned long long groups, errors;
	unsigned long map_calls;
};

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int write_all(int fd, const void *p, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = write(fd, (const uint8_t *)p + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

static void stop_loop(void *arg)
{
	loop_stop(arg, 0);
}

/*
 * The device. Every group is one record with LAST_PAGE. First it faults once on every
 * chunk of guest RAM (so the resolver maps it all), then it runs random addresses for
 * warm_secs, then measures for secs, then stops sending and drains what is in flight.
 * Groups go out in one write per refill (the responses it just got free that many slots),
 * the way the kernel would have queued several page requests by the time the loop reads.
 * A group's latency runs from just before the write that sent it to just after the read
 * that returned its response; only groups both sent and answered inside the measured
 * window count. Throughput is responses received inside the window over its length.
 */
static void *device(void *arg)
{
	struct run *r = arg;
	static _Thread_local struct iommu_hwpt_pgfault out[MAX_FLIGHT];
	static _Thread_local uint8_t in[MAX_FLIGHT * RESP + RESP];
	static _Thread_local long long sent[COOKIES];
	uint64_t nchunks = (r->mem->size + CHUNK - 1) / CHUNK, seed = 0x9e3779b97f4a7c15ULL;
	uint64_t seq = 0;
	uint32_t cookie = 0;
	unsigned flight = 0;
	size_t have = 0;
	long long t0 = 0, t1 = 0, cpu0 = 0, dcpu0 = 0;
	unsigned long maps0 = 0;
	enum { WARM_MAP, WARM, MEASURE, DRAIN } phase = WARM_MAP;

	if (device_cpu >= 0 && pin_to(pthread_self(), device_cpu))
		r->fail = "device: cannot pin the device thread";
	while (!r->fail && (phase != DRAIN || flight)) {
		long long now = now_ns();
		unsigned k = 0;

		if (phase == WARM && now >= t0) {
			phase = MEASURE;
			cpu0 = clock_ns(r->server_clock);
			dcpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
			maps0 = __atomic_load_n(&map_calls, __ATOMIC_RELAXED);
		} else if (phase == MEASURE && now >= t1) {
			phase = DRAIN;
			r->srv_cpu_ns = clock_ns(r->server_clock) - cpu0;
			r->dev_cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID) - dcpu0;
			r->map_calls = __atomic_load_n(&map_calls, __ATOMIC_RELAXED) - maps0;
			r->wall_ns = now - t0;
		}
		if (phase == WARM_MAP && seq == nchunks && flight == 0) {
			phase = WARM;
			t0 = now + (long long)(r->warm_secs * 1e9);
			t1 = t0 + (long long)(r->secs * 1e9);
		}
		while (phase != DRAIN && flight + k < r->inflight &&
		       (phase != WARM_MAP || seq < nchunks)) {
			uint64_t a = phase == WARM_MAP ? seq++ * CHUNK + xorshift(&seed) % CHUNK
						       : xorshift(&seed) % r->mem->size;
			if (a >= r->mem->size)
				a = r->mem->size - 1;
			cookie++;
			out[k++] = (struct iommu_hwpt_pgfault){
			    .flags = IOMMU_PGFAULT_FLAGS_LAST_PAGE,
			    .dev_id = DEV,
			    .perm = IOMMU_PGFAULT_PERM_READ | IOMMU_PGFAULT_PERM_WRITE,
			    .addr = a,
			    .cookie = cookie};
			sent[cookie % COOKIES] = now;
		}
		if (k) {
			if (write_all(r->dev_fd, out, k * REC)) {
				r->fail = "device: write to the server failed";
				break;
			}
			flight += k;
		}
		if (!flight)
			continue;
		struct pollfd p = {r->dev_fd, POLLIN, 0};
		int pr = poll(&p, 1, STALL_MS);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			r->fail = "device: the server stopped answering";
			break;
		}
		ssize_t n = read(r->dev_fd, in + have, MAX_FLIGHT * RESP);
		if (n <= 0) {
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			r->fail = "device: the server closed the socket";
			break;
		}
		long long t = now_ns();
		size_t total = have + (size_t)n, nresp = total / RESP;
		r->resp_reads += phase == MEASURE;
		for (size_t i = 0; i < nresp; i++) {
			struct iommu_hwpt_page_response resp;
			memcpy(&resp, in + i * RESP, RESP);
			long long s =
			    resp.cookie && resp.cookie <= cookie ? sent[resp.cookie % COOKIES] : 0;
			/* Exactly one SUCCESS per group sent: anything else is a wrong answer. */
			if (resp.code != IOMMUFD_PAGE_RESP_SUCCESS || !s || !flight) {
				r->errors++;
				continue;
			}
			sent[resp.cookie % COOKIES] = 0;
			flight--;
			if (phase != MEASURE)
				continue;
			r->groups++;
			if (s >= t0) {
				long long b = (t - s) / HIST_NS;
				r->hist[b < HIST_N ? b : HIST_N]++;
				r->lat_n++;
			}
		}
		have = total % RESP;
		memmove(in, in + nresp * RESP, have);
	}
	if (phase != DRAIN && !r->fail)
		r->fail = "device: ended early";
	if (r->server == FLINT)
		loop_post(r->loop, stop_loop, r->loop);
	else
		shutdown(r->dev_fd, SHUT_WR); /* the floor server ends on EOF */
	return NULL;
}

/*
 * The floor: poll, one batched read, one no-op ioctl per record, one batched write.
 * With @ioctls false (BARE) it skips the ioctl: the syscalls any loop must make.
 */
static int floor_serve(int fd, bool ioctls)
{
	uint8_t buf[FLOOR_BATCH * REC];
	struct iommu_hwpt_page_response out[FLOOR_BATCH];
	size_t partial = 0;

	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		ssize_t n = read(fd, buf + partial, sizeof(buf) - partial);
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -errno;
		}
		size_t total = partial + (size_t)n, nrec = total / REC;
		for (size_t i = 0; i < nrec; i++) {
			struct iommu_hwpt_pgfault f;
			int q;
			memcpy(&f, buf + i * REC, REC);
			if (ioctls && ioctl(fd, FIONREAD, &q) < 0)
				return -errno;
			out[i] =
			    (struct iommu_hwpt_page_response){f.cookie, IOMMUFD_PAGE_RESP_SUCCESS};
		}
		if (nrec && write_all(fd, out, nrec * RESP))
			return -errno;
		partial = total % REC;
		memmove(buf, buf + nrec * REC, partial);
	}
}

static double hist_pct(const unsigned *h, unsigned long long n, double pct)
{
	unsigned long long want = (unsigned long long)(pct / 100.0 * (double)n + 0.5), acc = 0;

	if (want == 0)
		want = 1;
	for (unsigned b = 0; b <= HIST_N; b++) {
		acc += h[b];
		if (acc >= want)
			return ((double)b + 0.5) * HIST_NS / 1000.0; /* bucket middle, in us */
	}
	return 0;
}

static int run_one(enum server server, unsigned inflight, double secs, double warm_secs,
		   const struct guest_memory *mem, struct result *res)
{
	struct run r = {.server = server,
			.inflight = inflight,
			.secs = secs,
			.warm_secs = warm_secs,
			.mem = mem};
	struct resolver *rs = NULL;
	pthread_t t;
	int sv[2], rc = 0;

	r.hist = calloc(HIST_N + 1, sizeof(*r.hist));
	if (!r.hist || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -1;
	/* The server's end is non-blocking, as the resolver expects; the device's blocks. */
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	r.dev_fd = sv[1];
	if (pthread_getcpuclockid(pthread_self(), &r.server_clock))
		r.server_clock = CLOCK_THREAD_CPUTIME_ID; /* unreachable on Linux */
	if (server == FLINT) {
		struct resolver_params p = {.fault_fd = sv[0],
					    .mem = mem,
					    .chunk = CHUNK,
					    .backend = &bench_backend,
					    .name = "bench"};
		r.loop = loop_new();
		rs = r.loop ? resolver_new(&p) : NULL;
		/* The device's groups are single records: the default batch, as the floor's. */
		if (!rs || resolver_add_device(rs, DEV, 1) || resolver_attach(rs, r.loop)) {
			fprintf(stderr, "fault: cannot set up the resolver\n");
			return -1;
		}
	}
	if (pthread_create(&t, NULL, device, &r))
		return -1;
	if (server == FLINT) {
		rc = loop_run(r.loop);
	} else {
		rc = floor_serve(sv[0], server == FLOOR);
	}
	pthread_join(t, NULL);
	if (rs) {
		const struct resolver_stats *st = resolver_stats(rs);
		if (st->invalid)
			r.errors += st->invalid;
		resolver_free(rs);
		loop_free(r.loop);
	}
	close(sv[0]);
	close(sv[1]);
	if (rc || r.fail) {
		fprintf(stderr, "fault: %s %u in flight: %s (server returned %d)\n",
			server_name[server], inflight, r.fail ? r.fail : "server failed", rc);
		free(r.hist);
		return -1;
	}
	double wall = (double)r.wall_ns / 1e9;
	*res = (struct result){
	    .gps = (double)r.groups / wall,
	    .p50_us = hist_pct(r.hist, r.lat_n, 50),
	    .p99_us = hist_pct(r.hist, r.lat_n, 99),
	    .srv_util = (double)r.srv_cpu_ns / (double)r.wall_ns,
	    .dev_util = (double)r.dev_cpu_ns / (double)r.wall_ns,
	    .per_read = r.resp_reads ? (double)r.groups / (double)r.resp_reads : 0,
	    .srv_gps = r.srv_cpu_ns ? (double)r.groups / ((double)r.srv_cpu_ns / 1e9) : 0,
	    .groups = r.groups,
	    .errors = r.errors,
	    .map_calls = r.map_calls,
	};
	double sum = 0;
	for (unsigned b = 0; b <= HIST_N; b++)
		sum += (double)r.hist[b] * ((double)b + 0.5) * HIST_NS;
	res->mean_us = r.lat_n ? sum / (double)r.lat_n / 1000.0 : 0;
	free(r.hist);
	return 0;
}

/* ---- repetitions and the report ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

#define MAX_REPS 100
enum { M_FLINT_Q, M_FLOOR_Q, M_BARE_Q, M_FLINT_1, M_FLOOR_1, NMODES };

static double median_of(const struct result *rs, unsigned n, size_t off, double *lo, double *hi)
{
	double v[MAX_REPS];

	for (unsigned i = 0; i < n; i++)
		v[i] = *(const double *)((const char *)&rs[i] + off);
	qsort(v, n, sizeof(v[0]), cmp_double);
	if (lo)
		*lo = v[0];
	if (hi)
		*hi = v[n - 1];
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define MED(rs, n, field) median_of(rs, n, offsetof(struct result, field), NULL, NULL)

static void usage(void)
{
	fprintf(stderr, "usage: fault [-r REPS] [-t SECS] [-w WARM_SECS] [-m MEM_MIB] [-q INFLIGHT]"
			" [-p LOOP_CPU[,DEVICE_CPU]] [-o flint|floor|bare]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned reps = 5, inflight = 64, mem_mib = 256;
	double secs = 1.0, warm = 0.2;
	struct guest_memory mem;
	static struct result res[NMODES][MAX_REPS];
	int c, pin = -1, only = -1;
	char *end;

	while ((c = getopt(argc, argv, "r:t:w:m:q:p:o:")) != -1) {
		switch (c) {
		case 'r':
			reps = (unsigned)atoi(optarg);
			break;
		case 't':
			secs = atof(optarg);
			break;
		case 'w':
			warm = atof(optarg);
			break;
		case 'm':
			mem_mib = (unsigned)atoi(optarg);
			break;
		case 'q':
			inflight = (unsigned)atoi(optarg);
			break;
		case 'o':
			for (int k = FLINT; k <= BARE; k++)
				if (!strcmp(optarg, server_name[k]))
					only = k;
			if (only < 0)
				usage();
			break;
		case 'p':
			pin = (int)strtol(optarg, &end, 10);
			device_cpu = *end == ',' ? (int)strtol(end + 1, &end, 10) : pin;
			if (*end || pin < 0 || device_cpu < 0 || pin >= CPU_SETSIZE ||
			    device_cpu >= CPU_SETSIZE)
				usage();
			break;
		default:
			usage();
		}
	}
	if (reps < 1 || reps > MAX_REPS || secs <= 0 || warm < 0 || mem_mib < 2 || mem_mib > 3072 ||
	    inflight < 1 || inflight > MAX_FLIGHT)
		usage();
	if (pin >= 0 && (c = pin_to(pthread_self(), pin))) {
		fprintf(stderr, "fault: cannot pin to CPU %d: %s\n", pin, strerror(c));
		return 1;
	}
	if (guest_memory_init(&mem, (uint64_t)mem_mib << 20, GUEST_BACKING_4K)) {
		fprintf(stderr, "fault: cannot create %u MiB of guest memory\n", mem_mib);
		return 1;
	}
	printf("fault-loop benchmark: %u MiB guest RAM, %llu KiB chunks (%llu), 1 record per group,"
	       " AF_UNIX stream socketpair\n",
	       mem_mib, CHUNK >> 10, ((unsigned long long)mem_mib << 20) / CHUNK);
	printf("%u reps x %d modes x %.2f s measured (+ %.2f s warm-up each), interleaved; ", reps,
	       only >= 0 ? 1 : NMODES, secs, warm);
	if (pin >= 0 && pin == device_cpu)
		printf("loop and device threads both on CPU %d\n", pin);
	else if (pin >= 0)
		printf("loop thread on CPU %d, device thread on CPU %d\n", pin, device_cpu);
	else
		printf("threads not pinned (%ld CPUs online)\n", sysconf(_SC_NPROCESSORS_ONLN));
	fflush(stdout);

	const struct {
		enum server s;
		unsigned q;
	} modes[NMODES] = {[M_FLINT_Q] = {FLINT, inflight},
			   [M_FLOOR_Q] = {FLOOR, inflight},
			   [M_BARE_Q] = {BARE, inflight},
			   [M_FLINT_1] = {FLINT, 1},
			   [M_FLOOR_1] = {FLOOR, 1}};
	for (unsigned i = 0; i < reps; i++) {
		for (unsigned j = 0; j < NMODES; j++) {
			/* Odd reps run the modes in reverse, so drift does not favour one side. */
			unsigned m = (i % 2) ? NMODES - 1 - j : j;
			struct result *x = &res[m][i];
			if (only >= 0 &&
			    (modes[m].s != (enum server)only || modes[m].q != inflight))
				continue;
			if (run_one(modes[m].s, modes[m].q, secs, warm, &mem, x)) {
				guest_memory_destroy(&mem);
				return 1;
			}
			if (x->errors) {
				fprintf(stderr, "fault: %s: %llu wrong or refused answers\n",
					server_name[modes[m].s], x->errors);
				guest_memory_destroy(&mem);
				return 1;
			}
			printf("  rep %u %-5s %3u in flight: %9.0f groups/s  p50 %6.1f us  "
			       "p99 %6.1f us  server cpu %3.0f%%  device cpu %3.0f%%  "
			       "%.1f resp/read  map calls %lu\n",
			       i + 1, server_name[modes[m].s], modes[m].q, x->gps, x->p50_us,
			       x->p99_us, x->srv_util * 100, x->dev_util * 100, x->per_read,
			       x->map_calls);
			fflush(stdout);
		}
	}
	guest_memory_destroy(&mem);
	if (only >= 0)
		return 0;

	printf("medians over %u reps:\n", reps);
	double gps[NMODES], p50[NMODES], p99[NMODES];
	for (unsigned m = 0; m < NMODES; m++) {
		double lo, hi;
		gps[m] = median_of(res[m], reps, offsetof(struct result, gps), &lo, &hi);
		p50[m] = MED(res[m], reps, p50_us);
		p99[m] = MED(res[m], reps, p99_us);
		printf("%-5s %3u in flight: %.0f groups/s (%.0f-%.0f), p50 %.1f us, p99 %.1f us, "
		       "mean %.1f us; server cpu %.0f%%, %.0f groups per server cpu-second; "
		       "%.1f responses per device read\n",
		       server_name[modes[m].s], modes[m].q, gps[m], lo, hi, p50[m], p99[m],
		       MED(res[m], reps, mean_us), MED(res[m], reps, srv_util) * 100,
		       MED(res[m], reps, srv_gps), MED(res[m], reps, per_read));
	}
	double x = gps[M_FLOOR_Q] / gps[M_FLINT_Q];
	double x_cpu = MED(res[M_FLOOR_Q], reps, srv_gps) / MED(res[M_FLINT_Q], reps, srv_gps);
	/* Every ratio is other groups/s over flint groups/s: 1.00 = flint as fast as the other. */
	printf("%u in flight, per server cpu-second (less sensitive to load): %.2fx floor, "
	       "%.2fx bare\n",
	       inflight, x_cpu,
	       MED(res[M_BARE_Q], reps, srv_gps) / MED(res[M_FLINT_Q], reps, srv_gps));
	printf("%u in flight, against bare (the floor without its ioctls): %.2fx bare\n", inflight,
	       gps[M_BARE_Q] / gps[M_FLINT_Q]);
	printf("round trip, 1 in flight: flint %.0f groups/s p50 %.1f us p99 %.1f us; "
	       "floor %.0f groups/s p50 %.1f us p99 %.1f us; %.2fx floor\n",
	       gps[M_FLINT_1], p50[M_FLINT_1], p99[M_FLINT_1], gps[M_FLOOR_1], p50[M_FLOOR_1],
	       p99[M_FLOOR_1], gps[M_FLOOR_1] / gps[M_FLINT_1]);
	printf("goals: <= 2x floor: %s (%.2fx); >= 300000 groups/s: %s (%.0f)\n",
	       x <= 2.0 ? "met" : "NOT met", x, gps[M_FLINT_Q] >= 300000 ? "met" : "NOT met",
	       gps[M_FLINT_Q]);
	printf("fault loop: %.2fx floor, %.0f groups/s, p50 %.1f us, p99 %.1f us\n", x,
	       gps[M_FLINT_Q], p50[M_FLINT_Q], p99[M_FLINT_Q]);
	return 0;
}
