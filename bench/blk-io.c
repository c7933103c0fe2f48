/*
 * I/O engine benchmark: blk_io's worker pool (1, 2, 4 threads) against io_uring
 * (bench/blk_io_uring.c; as it comes, and with IOSQE_ASYNC so that every request goes to
 * a kernel io-wq thread as every pool request goes to a worker), all driven from flint's
 * event loop through the same loop API, on a temp file in the page cache. Run it with `make
 * bench-blk-io` (BENCH_BLK_IO_ARGS passes the options below).
 *
 *   build/bench/blk-io [-r REPS] [-t SECS] [-q RAND_DEPTH] [-Q SEQ_DEPTH] [-m FILE_MIB]
 *                      [-d DIR]
 *
 * Workloads: sequential 128 KiB reads and writes (MB/s, SEQ_DEPTH in flight, default 8),
 * 4 KiB random reads (IOPS, RAND_DEPTH in flight, default 32). Each run lasts SECS
 * (default 1) after a warm-up round; REPS (default 5) rounds, engines interleaved within
 * each, medians reported. The file (256 MiB in DIR, default /var/tmp) is written just
 * before and its page cache is not dropped: this measures the engines and the hand-off to
 * and from the loop, not the disk. A benchmark, not a test: it exits 0 whatever the
 * numbers, non-zero only when a run could not be done at all.
 */
#include "devices/virtio/blk_io.h"
#include "vmm/base/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* Defined in bench/blk_io_uring.c. */
struct blk_uring;
int blk_uring_open(struct blk_uring **out, int fd, struct loop *loop, bool async,
                   blk_io_done_fn done, void *arg);
int blk_uring_submit(struct blk_uring *u, struct blk_io_req *req);
void blk_uring_drain(struct blk_uring *u);
void blk_uring_close(struct blk_uring *u);

#define MAX_DEPTH 256
#define MAX_REPS  50
#define STALL_S   10 /* a run still going this long after its end has lost completions */

/* ---- the engines, behind one interface ---- */

struct engine {
	const char *name;
	unsigned threads; /* 0: io_uring */
	bool async;       /* io_uring with IOSQE_ASYNC: never inline, always an io-wq thread */
};

/* The pools first: ratios and "best" are over engines [0, URING). */
static const struct engine engines[] = {
	{ "pool-1", 1, false },   { "pool-2", 2, false },     { "pool-4", 4, false },
	{ "io_uring", 0, false }, { "uring-async", 0, true },
};
#define NENGINES    (sizeof(engines) / sizeof(engines[0]))
#define URING       3
#define URING_ASYNC 4

static int engine_open(const struct engine *e, void **h, int fd, struct loop *l,
                       blk_io_done_fn done, void *arg)
{
	if (e->threads)
		return blk_io_open((struct blk_io **)h, fd, l, e->threads, NULL, done, arg);
	return blk_uring_open((struct blk_uring **)h, fd, l, e->async, done, arg);
}

static int engine_submit(const struct engine *e, void *h, struct blk_io_req *req)
{
	return e->threads ? blk_io_submit(h, req) : blk_uring_submit(h, req);
}

static void engine_close(const struct engine *e, void *h)
{
	if (e->threads)
		blk_io_close(h);
	else
		blk_uring_close(h);
}

/* ---- workloads ---- */

struct workload {
	const char *name;
	const char *unit; /* what the median is in */
	int op;
	size_t bs;
	bool random;
};

static const struct workload workloads[] = {
	{ "seq read 128K", "MB/s", BLK_IO_READ, 128 << 10, false },
	{ "seq write 128K", "MB/s", BLK_IO_WRITE, 128 << 10, false },
	{ "4k randread", "IOPS", BLK_IO_READ, 4096, true },
};
#define NWORK (sizeof(workloads) / sizeof(workloads[0]))

struct slot {
	struct blk_io_req req;
	struct iovec iov;
};

/* One timed run: DEPTH requests kept in flight until the deadline. */
struct run {
	const struct engine *e;
	const struct workload *w;
	void *h;
	struct loop *loop;
	uint64_t file_size, next_off, rng;
	unsigned depth, inflight;
	long long deadline;
	uint64_t ops, bytes;
	const char *error;
	struct slot slots[MAX_DEPTH];
};

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long cpu_ns(void)
{
	struct rusage ru;

	/* The whole process: the pool's workers and io_uring's io-wq workers both count. */
	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

/* The loop thread's CPU: io_uring copies cached data inside io_uring_submit, on it. */
static long long thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t next_offset(struct run *r)
{
	uint64_t off;

	if (r->w->random) {
		/* xorshift64*: cheap, and every block of the file equally likely */
		r->rng ^= r->rng >> 12;
		r->rng ^= r->rng << 25;
		r->rng ^= r->rng >> 27;
		return (r->rng * 2685821657736338717ULL) % (r->file_size / r->w->bs) * r->w->bs;
	}
	off = r->next_off;
	r->next_off = (off + r->w->bs) % r->file_size;
	return off;
}

static void issue(struct run *r, struct slot *s)
{
	int e;

	s->req.op = r->w->op;
	s->req.offset = next_offset(r);
	s->req.iov = &s->iov;
	s->req.iovcnt = 1;
	e = engine_submit(r->e, r->h, &s->req);
	if (e) {
		r->error = "submit failed";
		loop_stop(r->loop, 1);
		return;
	}
	r->inflight++;
}

static void on_done(void *arg, struct blk_io_req *req)
{
	struct run *r = arg;

	r->inflight--;
	if (req->result != (int64_t)r->w->bs) {
		r->error = "short or failed transfer";
		loop_stop(r->loop, 1);
		return;
	}
	r->ops++;
	r->bytes += (uint64_t)req->result;
	if (r->error)
		return;
	if (now_ns() < r->deadline)
		issue(r, req->cookie);
	else if (!r->inflight)
		loop_stop(r->loop, 0);
}

static void on_stall(void *arg)
{
	struct run *r = arg;

	r->error = "completions stopped coming";
	loop_stop(r->loop, 1);
}

struct result {
	double rate;       /* MB/s or IOPS */
	double cpu_us_op;  /* process CPU time per request */
	double loop_us_op; /* the loop thread's share of it */
};

static uint8_t *buffers; /* MAX_DEPTH buffers of the largest block size */

static int run_one(const struct engine *e, const struct workload *w, int fd, uint64_t file_size,
                   unsigned depth, double secs, struct result *res)
{
	struct run *r = calloc(1, sizeof(*r));
	long long t0, c0, l0, t;
	int rc;

	if (!r)
		return -ENOMEM;
	r->e = e;
	r->w = w;
	r->file_size = file_size;
	r->depth = depth;
	r->rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)now_ns();
	r->loop = loop_new();
	if (!r->loop || (rc = engine_open(e, &r->h, fd, r->loop, on_done, r)) < 0) {
		fprintf(stderr, "blk-io: %s: cannot open: %s\n", e->name,
		        r->loop ? strerror(-rc) : "no loop");
		loop_free(r->loop);
		free(r);
		return -1;
	}
	loop_add_timer(r->loop, (uint64_t)((secs + STALL_S) * 1e6), false, on_stall, r);
	for (unsigned i = 0; i < depth; i++) {
		r->slots[i].iov = (struct iovec){ buffers + (size_t)i * (128 << 10), w->bs };
		r->slots[i].req.cookie = &r->slots[i];
	}
	t0 = now_ns();
	c0 = cpu_ns();
	l0 = thread_cpu_ns();
	r->deadline = t0 + (long long)(secs * 1e9);
	for (unsigned i = 0; i < depth && !r->error; i++)
		issue(r, &r->slots[i]);
	rc = r->error ? 1 : loop_run(r->loop);
	t = now_ns() - t0;
	res->loop_us_op = r->ops ? (thread_cpu_ns() - l0) / 1e3 / (double)r->ops : 0;
	res->cpu_us_op = r->ops ? (cpu_ns() - c0) / 1e3 / (double)r->ops : 0;
	res->rate = w->random ? r->ops / (t / 1e9) : r->bytes / 1e6 / (t / 1e9);
	engine_close(e, r->h); /* waits for what a failed run left in flight */
	loop_free(r->loop);
	if (rc)
		fprintf(stderr, "blk-io: %s %s: %s\n", e->name, w->name, r->error ? r->error : "?");
	free(r);
	return rc ? -1 : 0;
}

/* ---- the file ---- */

static int make_file(const char *dir, uint64_t size)
{
	char path[4096];
	size_t chunk = 1 << 20;
	uint8_t *buf = malloc(chunk);
	int fd;

	snprintf(path, sizeof(path), "%s/flint-blk-io-XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0 || !buf) {
		fprintf(stderr, "blk-io: cannot create %s: %s\n", path, strerror(errno));
		exit(1);
	}
	unlink(path); /* gone when the benchmark ends, however it ends */
	for (size_t i = 0; i < chunk; i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	for (uint64_t off = 0; off < size; off += chunk) {
		if (pwrite(fd, buf, chunk, (off_t)off) != (ssize_t)chunk) {
			fprintf(stderr, "blk-io: cannot write %s: %s\n", path, strerror(errno));
			exit(1);
		}
	}
	fdatasync(fd);
	free(buf);
	printf("file: %s (unlinked), %llu MiB, written just before: reads come from the page "
	       "cache, writes go to it (not dropped: engines, not the disk)\n",
	       path, (unsigned long long)(size >> 20));
	return fd;
}

/* ---- statistics and report ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct opts {
	int reps;
	double secs;
	unsigned rand_depth, seq_depth;
	uint64_t file_mib;
	const char *dir;
};

static void usage(void)
{
	fprintf(stderr, "usage: blk-io [-r REPS] [-t SECS] [-q RAND_DEPTH] [-Q SEQ_DEPTH] "
	                "[-m FILE_MIB] [-d DIR]\n");
	exit(2);
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
	int c;

	*o = (struct opts){ 5, 1.0, 32, 8, 256, "/var/tmp" };
	while ((c = getopt(argc, argv, "r:t:q:Q:m:d:")) != -1) {
		switch (c) {
		case 'r':
			o->reps = atoi(optarg);
			break;
		case 't':
			o->secs = atof(optarg);
			break;
		case 'q':
			o->rand_depth = (unsigned)atoi(optarg);
			break;
		case 'Q':
			o->seq_depth = (unsigned)atoi(optarg);
			break;
		case 'm':
			o->file_mib = (uint64_t)atoll(optarg);
			break;
		case 'd':
			o->dir = optarg;
			break;
		default:
			usage();
		}
	}
	if (o->reps < 1 || o->reps > MAX_REPS || o->secs <= 0 || !o->rand_depth ||
	    o->rand_depth > MAX_DEPTH || !o->seq_depth || o->seq_depth > MAX_DEPTH ||
	    o->file_mib < 1)
		usage();
}

/* Whether io_uring works here at all (the kernel or a sandbox may refuse it). */
static bool uring_works(int fd)
{
	struct loop *l = loop_new();
	struct blk_uring *u;
	int r = l ? blk_uring_open(&u, fd, l, false, NULL, NULL) : -ENOMEM;

	if (r < 0)
		printf("io_uring: unavailable here: %s (%d)\n", strerror(-r), r);
	else
		blk_uring_close(u);
	loop_free(l);
	return r >= 0;
}

static double rates[NWORK][NENGINES][MAX_REPS], cpus[NWORK][NENGINES][MAX_REPS],
        loops[NWORK][NENGINES][MAX_REPS];

static bool skipped(size_t e, bool uring)
{
	return e >= URING && !uring;
}

static void print_table(const struct opts *o, bool uring, double med[NWORK][NENGINES])
{
	printf("\n%-15s %-12s %10s %10s %10s %8s %9s\n", "workload", "engine", "median", "min",
	       "max", "cpu/req", "loop/req");
	for (size_t w = 0; w < NWORK; w++) {
		for (size_t e = 0; e < NENGINES; e++) {
			if (skipped(e, uring))
				continue;
			med[w][e] = median(rates[w][e], o->reps); /* sorts: min first, max last */
			printf("%-15s %-12s %10.0f %10.0f %10.0f %6.2fus %7.2fus  %s\n",
			       workloads[w].name, engines[e].name, med[w][e], rates[w][e][0],
			       rates[w][e][o->reps - 1], median(cpus[w][e], o->reps),
			       median(loops[w][e], o->reps), workloads[w].unit);
		}
	}
	printf("(cpu/req: the whole process's CPU time per request; loop/req: the loop "
	       "thread's part)\n");
}

/* The fastest pool for workload @w. */
static size_t best_pool(double med[NWORK][NENGINES], size_t w)
{
	size_t best = 0;

	for (size_t e = 1; e < URING; e++)
		if (med[w][e] > med[w][best])
			best = e;
	return best;
}

static void print_ratios(double med[NWORK][NENGINES], size_t against, const char *title)
{
	printf("\nratios pool/%s (median over median; > 1: the pool is faster)\n%-15s", title, "");
	for (size_t e = 0; e < URING; e++)
		printf(" %8s", engines[e].name);
	printf(" %8s\n", "best");
	for (size_t w = 0; w < NWORK; w++) {
		size_t b = best_pool(med, w);

		printf("%-15s", workloads[w].name);
		for (size_t e = 0; e < URING; e++)
			printf(" %8.2f", med[w][e] / med[w][against]);
		printf(" %8.2f (%s)\n", med[w][b] / med[w][against], engines[b].name);
	}
}

static void report(const struct opts *o, bool uring)
{
	double med[NWORK][NENGINES];

	print_table(o, uring, med);
	if (!uring) {
		printf("blk-io: pool/io_uring seq read n/a, seq write n/a, 4k randread n/a\n");
		return;
	}
	print_ratios(med, URING_ASYNC, "io_uring IOSQE_ASYNC (every request on a worker)");
	print_ratios(med, URING, "io_uring (default: cached reads complete inline)");
	printf("blk-io: pool/io_uring seq read %.2f, seq write %.2f, 4k randread %.2f\n",
	       med[0][best_pool(med, 0)] / med[0][URING], med[1][best_pool(med, 1)] / med[1][URING],
	       med[2][best_pool(med, 2)] / med[2][URING]);
}

int main(int argc, char **argv)
{
	struct opts o;
	struct utsname un;
	struct result res;
	bool uring;
	int fd;

	parse_opts(argc, argv, &o);
	setvbuf(stdout, NULL, _IOLBF, 0);
	buffers = aligned_alloc(4096, (size_t)MAX_DEPTH * (128 << 10));
	if (!buffers)
		return 1;
	memset(buffers, 0, (size_t)MAX_DEPTH * (128 << 10));
	uname(&un);
	printf("flint blk-io benchmark: %s, %ld CPUs; %d reps of %.1f s, seq depth %u, "
	       "randread depth %u\n",
	       un.release, sysconf(_SC_NPROCESSORS_ONLN), o.reps, o.secs, o.seq_depth,
	       o.rand_depth);
	fd = make_file(o.dir, o.file_mib << 20);
	uring = uring_works(fd);
	/* Warm-up: one short run of each, not counted (thread start-up, page cache, CPU clocks). */
	for (size_t w = 0; w < NWORK; w++)
		for (size_t e = 0; e < NENGINES; e++)
			if (!skipped(e, uring))
				run_one(&engines[e], &workloads[w], fd, o.file_mib << 20,
				        workloads[w].random ? o.rand_depth : o.seq_depth, 0.2,
				        &res);
	for (int rep = 0; rep < o.reps; rep++) {
		for (size_t w = 0; w < NWORK; w++) {
			for (size_t e = 0; e < NENGINES; e++) {
				if (skipped(e, uring))
					continue;
				if (run_one(&engines[e], &workloads[w], fd, o.file_mib << 20,
				            workloads[w].random ? o.rand_depth : o.seq_depth,
				            o.secs, &res) < 0)
					return 1;
				rates[w][e][rep] = res.rate;
				cpus[w][e][rep] = res.cpu_us_op;
				loops[w][e][rep] = res.loop_us_op;
			}
		}
	}
	report(&o, uring);
	close(fd);
	free(buffers);
	return 0;
}
