/*
 * Cold-fault benchmark (make bench-fault-cold, see bench/README.md). It runs inside the
 * kernel rig's L1 (Linux 7.3, iommufd and its test-only mock device), as the rig case
 * that bench/fault-cold.sh boots.
 *
 * A device thread raises page requests with IOMMU_TEST_OP_TRIGGER_IOPF on a fault-capable
 * page table whose IOAS backs guest memory made by flint's memory module. Every request
 * falls in a chunk nothing has mapped yet: each cell gets a fresh iommufd, IOAS, fault
 * queue and guest memory, and its requests walk new chunks. Responders, taking turns:
 *
 *   flint  iommu_open(), iommu_enable_faults(), iommu_fault_hwpt(): flint's resolver on
 *          flint's event loop, as flint serves a fault-mode device;
 *   floor  poll, read the records, one plain IOMMU_IOAS_MAP per record (the chunk around
 *          the address, IOVA = guest address, the same memory, nothing populated first),
 *          one write of all the answers;
 *   nopop  (-P, information only) flint with its MADV_POPULATE_* skipped by the wrapper
 *          below: what flint's path costs without its populate step;
 *   file   (-f, information only) the floor with IOMMU_IOAS_MAP_FILE on the guest memfd.
 *
 * TRIGGER_IOPF returns once the group is queued on the fault fd (the mock's page_response
 * op is empty): it never waits for the answer. Latency runs from just before the trigger
 * ioctl to just after the write() that carried the answer returns, which is when the
 * kernel has taken it (iopf_group_response has run). The responder's syscalls are timed
 * by link-time wrappers (-Wl,--wrap=read,...): the same code times flint and the floor,
 * and flint's own code is not changed for it.
 *
 *   fault-cold [-r ROUNDS] [-c KIB:N[,KIB:N...]] [-k MANY] [-m touched|fresh|both]
 *              [-p RESP_CPU[,DEV_CPU]|any] [-P] [-f]
 *
 * A benchmark, not a test: it exits 0 whatever the numbers, and 1 only when a cell could
 * not be run (setup failed, a responder stopped answering, a wrong answer).
 */
#include "iommu/iommu.h"
#include "vmm/base/clock.h"
#include "vmm/base/log.h"
#include "vmm/base/loop.h"

#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "iommufd_test.h"
#include "rig.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_READ  22
#define MADV_POPULATE_WRITE 23
#endif

#define REC        sizeof(struct iommu_hwpt_pgfault)
#define RESP       sizeof(struct iommu_hwpt_page_response)
#define BATCH      64   /* records per floor read: the resolver's default */
#define COOKIES    4096 /* the kernel hands out the lowest free cookie: < faults in flight */
#define MAX_FAULTS 4096
#define MAX_CHUNKS 4
#define STALL_NS   (60LL * 1000000000) /* no answer for this long: the cell failed */
#define MAP_FLAGS  (IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)

/* NOPOP and FILE_FLOOR are information only (-P, -f): what a change would buy. */
enum responder { FLINT, FLOOR, NOPOP, FILE_FLOOR, NRESP };
static const char *const resp_name[NRESP] = { "flint", "floor", "nopop", "file" };
enum mem_state { TOUCHED, FRESH, NMEM };
static const char *const mem_name[NMEM] = { "touched", "fresh" };

/* ---- what the syscall wrappers record ---- */

/* Per fault, CLOCK_MONOTONIC ns; 0 = did not happen. */
struct fault {
	long long trig; /* device thread: just before TRIGGER_IOPF */
	long long wake; /* the responder's epoll_wait/poll returned, before the read */
	long long rd0, rd1, pop0, pop1, map0, map1, wr0, done;
};

/*
 * Written on the responder thread only, but for f[].trig (device thread, a member of its
 * own) and the set-up fields, which are fixed before the device thread starts.
 */
static struct {
	int fault_fd, iommufd; /* -1: nothing is traced */
	uint8_t *hva;          /* host address of guest address 0 */
	uint64_t gpa0, chunk;  /* fault i lies in [gpa0 + i * chunk, + chunk) */
	unsigned n;
	struct fault f[MAX_FAULTS];
	int cookie[COOKIES]; /* fault index of each cookie read and not answered */
	long long last_wake;
	unsigned reads, records, writes, maps, pops, bad;
	long long read_ns, write_ns, map_ns, pop_ns;
} tr = { .fault_fd = -1, .iommufd = -1 };

static _Atomic uint32_t answered; /* answers the kernel took in this cell */
static atomic_int waiting;        /* the device thread sleeps on answered */

static void note_bad(const char *what, unsigned long long v)
{
	if (!tr.bad++)
		fprintf(stderr, "fault-cold: %s (%#llx)\n", what, v);
}

static int fault_index(uint64_t gpa)
{
	if (gpa < tr.gpa0 || (gpa - tr.gpa0) / tr.chunk >= tr.n)
		return -1;
	return (int)((gpa - tr.gpa0) / tr.chunk);
}

static void answered_add(unsigned k)
{
	atomic_fetch_add(&answered, k);
	if (atomic_load(&waiting))
		syscall(SYS_futex, &answered, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

ssize_t __real_read(int fd, void *buf, size_t len);
ssize_t __real_write(int fd, const void *buf, size_t len);
int __real_ioctl(int fd, unsigned long req, ...);
int __real_madvise(void *addr, size_t len, int advice);
int __real_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout);
int __real_poll(struct pollfd *fds, nfds_t n, int timeout);

/* Each record read: which fault it is, and its cookie, to find it again in the answer. */
static void note_records(const struct iommu_hwpt_pgfault *rec, unsigned k, long long t0,
                         long long t1)
{
	for (unsigned i = 0; i < k; i++) {
		int idx = fault_index(rec[i].addr);
		if (idx < 0 || rec[i].cookie >= COOKIES) {
			note_bad("a record for no fault of this cell, or a cookie too large",
			         rec[i].addr);
			continue;
		}
		tr.cookie[rec[i].cookie] = idx;
		/* not .trig: the device thread's */
		tr.f[idx].wake = tr.last_wake;
		tr.f[idx].rd0 = t0;
		tr.f[idx].rd1 = t1;
	}
}

ssize_t __wrap_read(int fd, void *buf, size_t len)
{
	if (fd < 0 || fd != tr.fault_fd)
		return __real_read(fd, buf, len);
	long long t0 = clock_now_ns();
	ssize_t n = __real_read(fd, buf, len);
	long long t1 = clock_now_ns();
	tr.reads++;
	tr.read_ns += t1 - t0;
	if (n > 0) {
		tr.records += (unsigned)((size_t)n / REC);
		note_records(buf, (unsigned)((size_t)n / REC), t0, t1);
	}
	return n;
}

/* Each answer the kernel took: its fault is done; the device thread may go on. */
ssize_t __wrap_write(int fd, const void *buf, size_t len)
{
	if (fd < 0 || fd != tr.fault_fd)
		return __real_write(fd, buf, len);
	long long t0 = clock_now_ns();
	ssize_t n = __real_write(fd, buf, len);
	long long t1 = clock_now_ns();
	const struct iommu_hwpt_page_response *r = buf;
	unsigned k = n > 0 ? (unsigned)((size_t)n / RESP) : 0;

	tr.writes++;
	tr.write_ns += t1 - t0;
	for (unsigned i = 0; i < k; i++) {
		if (r[i].cookie >= COOKIES || r[i].code != IOMMUFD_PAGE_RESP_SUCCESS) {
			note_bad("an answer that is not SUCCESS, or an unknown cookie",
			         r[i].cookie);
			continue;
		}
		tr.f[tr.cookie[r[i].cookie]].wr0 = t0;
		tr.f[tr.cookie[r[i].cookie]].done = t1;
	}
	if (k)
		answered_add(k);
	return n;
}

static uint64_t map_iova(unsigned long req, const void *arg)
{
	if (req == IOMMU_IOAS_MAP)
		return ((const struct iommu_ioas_map *)arg)->iova;
	return ((const struct iommu_ioas_map_file *)arg)->iova;
}

int __wrap_ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (fd < 0 || fd != tr.iommufd || (req != IOMMU_IOAS_MAP && req != IOMMU_IOAS_MAP_FILE))
		return __real_ioctl(fd, req, arg);
	long long t0 = clock_now_ns();
	int r = __real_ioctl(fd, req, arg);
	long long t1 = clock_now_ns();
	int idx = fault_index(map_iova(req, arg));
	tr.maps++;
	tr.map_ns += t1 - t0;
	if (idx >= 0 && !tr.f[idx].map0) {
		tr.f[idx].map0 = t0;
		tr.f[idx].map1 = t1;
	}
	return r;
}

/* -P: flint with its populate step skipped here, to show what the rest of it costs. */
static bool skip_populate;

int __wrap_madvise(void *addr, size_t len, int advice)
{
	if (tr.fault_fd < 0 || (advice != MADV_POPULATE_WRITE && advice != MADV_POPULATE_READ))
		return __real_madvise(addr, len, advice);
	if (skip_populate)
		return 0;
	long long t0 = clock_now_ns();
	int r = __real_madvise(addr, len, advice);
	long long t1 = clock_now_ns();
	int idx = fault_index((uint64_t)((uint8_t *)addr - tr.hva));
	tr.pops++;
	tr.pop_ns += t1 - t0;
	if (idx >= 0 && !tr.f[idx].pop0) {
		tr.f[idx].pop0 = t0;
		tr.f[idx].pop1 = t1;
	}
	return r;
}

/* When the responder's wait ended: the next read's records were waiting since then. */
int __wrap_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout)
{
	int n = __real_epoll_wait(epfd, ev, max, timeout);

	tr.last_wake = clock_now_ns();
	return n;
}

int __wrap_poll(struct pollfd *fds, nfds_t n, int timeout)
{
	int r = __real_poll(fds, n, timeout);

	if (n && fds[0].fd == tr.fault_fd)
		tr.last_wake = clock_now_ns();
	return r;
}

/* ---- the device thread ---- */

struct device {
	int iommufd;
	uint32_t idev;
	unsigned n, inflight;
	int cpu;
	struct loop *loop;               /* flint's: stopped through loop_post() */
	const struct resolver *resolver; /* flint's, for a stall's report */
	int stop_fd;                     /* the floor's: an eventfd it polls */
	bool ok;
	char why[128];
};

static int pin_self(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* Fault i's address: in its own chunk, at a page offset that moves from fault to fault. */
static uint64_t fault_addr(unsigned i)
{
	return tr.gpa0 + i * tr.chunk + (((uint64_t)i * 5 * 4096) & (tr.chunk - 1));
}

static int trigger(const struct device *d, unsigned i)
{
	struct iommu_test_cmd c = {
		.size = sizeof(c),
		.op = IOMMU_TEST_OP_TRIGGER_IOPF,
		.trigger_iopf = { .dev_id = d->idev,
		                  .grpid = i & 0x1ff,
		                  .addr = fault_addr(i),
		                  .perm = IOMMU_PGFAULT_PERM_READ | IOMMU_PGFAULT_PERM_WRITE },
	};

	return ioctl(d->iommufd, IOMMU_TEST_CMD, &c);
}

/* Sleeps until @want answers are in. False when none came for STALL_NS. */
static bool wait_answered(uint32_t want)
{
	long long last = clock_now_ns();
	uint32_t seen = atomic_load(&answered);

	while (seen < want) {
		struct timespec ts = { 1, 0 };
		/* waiting before the second look: the responder either sees it or we see it */
		atomic_store(&waiting, 1);
		uint32_t again = atomic_load(&answered);
		if (again == seen)
			syscall(SYS_futex, &answered, FUTEX_WAIT_PRIVATE, seen, &ts, NULL, 0);
		atomic_store(&waiting, 0);
		again = atomic_load(&answered);
		if (again != seen)
			last = clock_now_ns();
		else if (clock_now_ns() - last > STALL_NS)
			return false;
		seen = again;
	}
	return true;
}

static void stop_loop(void *arg)
{
	loop_stop(arg, 0);
}

static void *device_main(void *arg)
{
	struct device *d = arg;
	unsigned i;

	if (d->cpu >= 0 && pin_self(d->cpu))
		snprintf(d->why, sizeof(d->why), "cannot pin the device thread to CPU %d", d->cpu);
	for (i = 0; i < d->n && !d->why[0]; i++) {
		if (i >= d->inflight && !wait_answered(i + 1 - d->inflight)) {
			snprintf(d->why, sizeof(d->why), "no answer for %lld s with %u answered",
			         STALL_NS / 1000000000, (unsigned)atomic_load(&answered));
			break;
		}
		tr.f[i].trig = clock_now_ns();
		if (trigger(d, i))
			snprintf(d->why, sizeof(d->why), "TRIGGER_IOPF: %s", strerror(errno));
	}
	if (!d->why[0] && !wait_answered(d->n))
		snprintf(d->why, sizeof(d->why), "no answer for %lld s with %u of %u answered",
		         STALL_NS / 1000000000, (unsigned)atomic_load(&answered), d->n);
	d->ok = !d->why[0];
	if (d->loop)
		CHECK(loop_post(d->loop, stop_loop, d->loop) == 0, "loop_post");
	else
		CHECK(eventfd_write(d->stop_fd, 1) == 0, "eventfd_write: %s", strerror(errno));
	return NULL;
}

/* ---- one cell: fresh memory, fresh iommufd, one responder, n faults ---- */

struct cell {
	enum responder who;
	enum mem_state mem;
	uint64_t chunk;
	unsigned n, inflight;
};

struct mock {
	uint32_t stdev, idev, hwpt;
};

static int resp_cpu = 1, dev_cpu = 1; /* -1: where the scheduler puts them */

static int test_cmd(int fd, struct iommu_test_cmd *c)
{
	c->size = sizeof(*c);
	return ioctl(fd, IOMMU_TEST_CMD, c);
}

static void mock_domain(int fd, uint32_t ioas, struct mock *m)
{
	struct iommu_test_cmd c = { .op = IOMMU_TEST_OP_MOCK_DOMAIN, .id = ioas };

	CHECK(test_cmd(fd, &c) == 0, "MOCK_DOMAIN: %s", strerror(errno));
	m->stdev = c.mock_domain.out_stdev_id;
	m->idev = c.mock_domain.out_idev_id;
}

/* The mock device onto the fault-capable page table (its auto domain goes away). */
static void mock_replace(int fd, const struct mock *m)
{
	struct iommu_test_cmd c = { .op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
		                    .id = m->stdev,
		                    .mock_domain_replace = { .pt_id = m->hwpt } };

	CHECK(test_cmd(fd, &c) == 0, "MOCK_DOMAIN_REPLACE: %s", strerror(errno));
}

/* The mock domain maps @c's fault @i to the right guest memory. */
static void check_mapped(int fd, const struct mock *m, const struct guest_memory *mem, unsigned i)
{
	uint64_t iova = tr.gpa0 + i * tr.chunk;
	struct iommu_test_cmd c = { .op = IOMMU_TEST_OP_MD_CHECK_MAP,
		                    .id = m->hwpt,
		                    .check_map = { .iova = iova,
		                                   .length = tr.chunk,
		                                   .uptr = (uintptr_t)(mem->base + iova) } };

	CHECK(test_cmd(fd, &c) == 0, "MD_CHECK_MAP of fault %u's chunk: %s", i, strerror(errno));
}

/* Guest RAM up to the last fault's chunk; "touched": written before, as a guest would. */
static void make_memory(struct guest_memory *mem, const struct cell *c)
{
	uint64_t span = c->n * c->chunk;

	CHECK(guest_memory_init(mem, MOCK_APERTURE_START + span, GUEST_BACKING_4K) == 0,
	      "guest memory");
	if (c->mem == TOUCHED)
		CHECK(madvise(mem->base + MOCK_APERTURE_START, span, MADV_POPULATE_WRITE) == 0,
		      "populating guest memory: %s", strerror(errno));
}

static void trace_start(const struct cell *c, const struct guest_memory *mem, int iommufd,
                        int fault_fd)
{
	memset(&tr, 0, sizeof(tr));
	tr.hva = mem->base;
	tr.gpa0 = MOCK_APERTURE_START;
	tr.chunk = c->chunk;
	tr.n = c->n;
	tr.iommufd = iommufd;
	tr.fault_fd = fault_fd;
	atomic_store(&answered, 0);
}

static long long thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* What the responder did before it stalled: which step never came. */
static void print_stall(const struct device *d)
{
	const struct resolver_stats *st = d->resolver ? resolver_stats(d->resolver) : NULL;

	fprintf(stderr,
	        "fault-cold: stalled: the responder made %u reads (%u records), %u populates, %u "
	        "maps, %u writes\n",
	        tr.reads, tr.records, tr.pops, tr.maps, tr.writes);
	if (st)
		fprintf(stderr,
		        "fault-cold: resolver: %llu records, %llu groups answered, %llu chunks "
		        "mapped, %llu invalid, %llu refused\n",
		        (unsigned long long)st->faults, (unsigned long long)st->groups,
		        (unsigned long long)st->chunks_mapped, (unsigned long long)st->invalid,
		        (unsigned long long)st->refused);
}

/* Runs @serve on this thread while the device thread raises the cell's faults. */
static long long drive(const struct cell *c, struct device *d, void (*serve)(void *), void *arg)
{
	pthread_t t;
	long long cpu;

	d->n = c->n;
	d->inflight = c->inflight;
	d->cpu = dev_cpu;
	cpu = thread_cpu_ns();
	CHECK(pthread_create(&t, NULL, device_main, d) == 0, "pthread_create");
	serve(arg);
	cpu = thread_cpu_ns() - cpu;
	pthread_join(t, NULL);
	tr.fault_fd = tr.iommufd = -1;
	if (!d->ok)
		print_stall(d);
	CHECK(d->ok, "%s, %s memory, %llu KiB chunks, %u in flight: %s", resp_name[c->who],
	      mem_name[c->mem], (unsigned long long)(c->chunk >> 10), c->inflight, d->why);
	CHECK(!tr.bad, "%u wrong records or answers", tr.bad);
	return cpu;
}

static void serve_flint(void *loop)
{
	CHECK(loop_run(loop) == 0, "loop_run");
}

static long long run_flint(const struct cell *c, struct guest_memory *mem)
{
	struct flint_iommu_config icfg = { .path = "/dev/iommu",
		                           .fd = -1,
		                           .chunk_bytes = c->chunk };
	struct loop *loop = loop_new();
	struct iommu io;
	struct mock m;

	CHECK(loop, "loop_new");
	CHECK(iommu_open(&io, &icfg, mem) == 0, "iommu_open");
	mock_domain(io.fd.fd, io.ioas, &m);
	CHECK(iommu_enable_faults(&io, c->chunk, loop) == 0, "iommu_enable_faults");
	CHECK(iommu_fault_hwpt(&io, m.idev, &m.hwpt) == 0, "iommu_fault_hwpt: %s", strerror(errno));
	mock_replace(io.fd.fd, &m);
	trace_start(c, mem, io.fd.fd, io.fault_fd);
	struct device d = { .iommufd = io.fd.fd,
		            .idev = m.idev,
		            .loop = loop,
		            .resolver = io.resolver,
		            .stop_fd = -1 };
	long long cpu = drive(c, &d, serve_flint, loop);
	const struct resolver_stats *st = resolver_stats(io.resolver);
	CHECK(st->chunks_mapped == c->n && st->invalid == 0 && st->refused == 0,
	      "resolver: %llu chunks mapped for %u faults, %llu invalid, %llu refused",
	      (unsigned long long)st->chunks_mapped, c->n, (unsigned long long)st->invalid,
	      (unsigned long long)st->refused);
	check_mapped(io.fd.fd, &m, mem, 0);
	check_mapped(io.fd.fd, &m, mem, c->n - 1);
	iommu_teardown(&io);
	loop_free(loop);
	return cpu;
}

struct floor {
	int iommufd, fault_fd, stop_fd;
	uint32_t ioas;
	uint64_t chunk;
	const struct guest_memory *mem;
	bool file;
};

/* The naive map: the chunk around @gpa, no bounds check, nothing populated first. */
static int floor_map(const struct floor *fl, uint64_t gpa)
{
	uint64_t iova = gpa & ~(fl->chunk - 1);

	if (fl->file) {
		struct iommu_ioas_map_file m = { .size = sizeof(m),
			                         .flags = MAP_FLAGS,
			                         .ioas_id = fl->ioas,
			                         .fd = fl->mem->fd,
			                         .start = iova,
			                         .length = fl->chunk,
			                         .iova = iova };
		return ioctl(fl->iommufd, IOMMU_IOAS_MAP_FILE, &m);
	}
	struct iommu_ioas_map m = { .size = sizeof(m),
		                    .flags = MAP_FLAGS,
		                    .ioas_id = fl->ioas,
		                    .user_va = (uintptr_t)(fl->mem->base + iova),
		                    .length = fl->chunk,
		                    .iova = iova };
	return ioctl(fl->iommufd, IOMMU_IOAS_MAP, &m);
}

/* poll, read, map each record, one write of the answers; until the device says stop. */
static void serve_floor(void *arg)
{
	const struct floor *fl = arg;
	struct iommu_hwpt_pgfault rec[BATCH];
	struct iommu_hwpt_page_response resp[BATCH];
	struct pollfd p[2] = { { fl->fault_fd, POLLIN, 0 }, { fl->stop_fd, POLLIN, 0 } };

	for (;;) {
		CHECK(poll(p, 2, -1) >= 0 || errno == EINTR, "poll: %s", strerror(errno));
		if (p[1].revents & POLLIN)
			return;
		ssize_t n = read(fl->fault_fd, rec, sizeof(rec));
		unsigned k = n > 0 ? (unsigned)((size_t)n / REC) : 0;
		for (unsigned i = 0; i < k; i++) {
			int e = floor_map(fl, rec[i].addr) ? errno : 0;
			resp[i] = (struct iommu_hwpt_page_response){
				rec[i].cookie, e && e != EEXIST ? IOMMUFD_PAGE_RESP_INVALID
				                                : IOMMUFD_PAGE_RESP_SUCCESS
			};
		}
		if (k)
			CHECK(write(fl->fault_fd, resp, k * RESP) == (ssize_t)(k * RESP),
			      "writing answers: %s", strerror(errno));
	}
}

static long long run_floor(const struct cell *c, struct guest_memory *mem)
{
	struct floor fl = { .chunk = c->chunk, .mem = mem, .file = c->who == FILE_FLOOR };
	struct iommufd fd;
	uint32_t fault_id;
	struct mock m;

	CHECK(iommufd_open(&fd, "/dev/iommu", -1) == 0, "iommufd_open");
	CHECK(iommufd_ioas_alloc(&fd, &fl.ioas) == 0, "IOAS");
	mock_domain(fd.fd, fl.ioas, &m);
	CHECK(iommufd_fault_alloc(&fd, &fault_id, &fl.fault_fd) == 0, "fault queue");
	CHECK(iommufd_hwpt_alloc(&fd, m.idev, fl.ioas, fault_id, &m.hwpt) == 0, "fault hwpt: %s",
	      strerror(errno));
	mock_replace(fd.fd, &m);
	fl.iommufd = fd.fd;
	fl.stop_fd = eventfd(0, EFD_CLOEXEC);
	CHECK(fl.stop_fd >= 0, "eventfd: %s", strerror(errno));
	trace_start(c, mem, fd.fd, fl.fault_fd);
	struct device d = { .iommufd = fd.fd, .idev = m.idev, .stop_fd = fl.stop_fd };
	long long cpu = drive(c, &d, serve_floor, &fl);
	check_mapped(fd.fd, &m, mem, 0);
	check_mapped(fd.fd, &m, mem, c->n - 1);
	close(fl.stop_fd);
	close(fl.fault_fd);
	iommufd_close(&fd);
	return cpu;
}

/* ---- results ---- */

/* Stages of one fault, in order; their sum is its latency. */
enum stage { S_WAKE, S_DISPATCH, S_READ, S_PRE, S_POP, S_GAP, S_MAP, S_POST, S_WRITE, NSTAGE };
static const char *const stage_name[NSTAGE] = { "trig+wake", "dispatch", "read",
	                                        "pre-map",   "populate", "gap",
	                                        "map",       "post-map", "write" };

/* What one cell's round yields; every figure printed is the median over the rounds. */
enum value {
	V_RATE,
	V_P50,
	V_P99,
	V_CPU,
	V_POP,
	V_MAP,
	V_RW,
	V_REST,
	V_READS,
	V_WRITES,
	V_STAGE,
	NVALUE = V_STAGE + NSTAGE
};

struct agg {
	unsigned rounds;
	double v[NVALUE][16];
};

static struct agg aggs[NMEM][MAX_CHUNKS][2][NRESP];

static double us(long long ns)
{
	return ns / 1000.0;
}

/* The stages of fault @f; a stage that did not happen (no populate: the floor) is 0. */
static void stages(const struct fault *f, double *s)
{
	long long first = f->pop0 ? f->pop0 : f->map0;
	long long pop_end = f->pop0 ? f->pop1 : f->map0;

	s[S_WAKE] = us(f->wake - f->trig);
	s[S_DISPATCH] = us(f->rd0 - f->wake);
	s[S_READ] = us(f->rd1 - f->rd0);
	s[S_PRE] = us(first - f->rd1);
	s[S_POP] = f->pop0 ? us(f->pop1 - f->pop0) : 0;
	s[S_GAP] = us(f->map0 - pop_end);
	s[S_MAP] = us(f->map1 - f->map0);
	s[S_POST] = us(f->wr0 - f->map1);
	s[S_WRITE] = us(f->done - f->wr0);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The @p quantile of @v (sorted in place), nearest rank. */
static double pct(double *v, unsigned n, double p)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n ? v[(unsigned)(p * (n - 1) + 0.5)] : 0;
}

/* One round of one cell, from the trace: rate, latency percentiles, stage means, costs. */
static void record(struct agg *a, const struct cell *c, long long cpu_ns)
{
	static double lat[MAX_FAULTS];
	double s[NSTAGE], *v[NVALUE], n = c->n;
	long long t0 = tr.f[0].trig, t1 = 0;

	CHECK(a->rounds < 16, "more than 16 rounds");
	for (int k = 0; k < NVALUE; k++) {
		v[k] = &a->v[k][a->rounds];
		*v[k] = 0;
	}
	for (unsigned i = 0; i < c->n; i++) {
		const struct fault *f = &tr.f[i];
		CHECK(f->done && f->map0 && f->rd0, "fault %u: no read, map or answer seen", i);
		t1 = f->done > t1 ? f->done : t1;
		lat[i] = us(f->done - f->trig);
		stages(f, s);
		for (int k = 0; k < NSTAGE; k++)
			*v[V_STAGE + k] += s[k] / n;
	}
	*v[V_RATE] = n / ((t1 - t0) / 1e9);
	*v[V_P50] = pct(lat, c->n, 0.5);
	*v[V_P99] = pct(lat, c->n, 0.99);
	*v[V_CPU] = us(cpu_ns) / n;
	*v[V_POP] = us(tr.pop_ns) / n;
	*v[V_MAP] = us(tr.map_ns) / n;
	*v[V_RW] = us(tr.read_ns + tr.write_ns) / n;
	*v[V_REST] = *v[V_CPU] - *v[V_POP] - *v[V_MAP] - *v[V_RW];
	*v[V_READS] = tr.reads / n;
	*v[V_WRITES] = tr.writes / n;
	a->rounds++;
}

/* The median over the rounds of value @k, with its min and max when asked. */
static double med(const struct agg *a, enum value k, double *lo, double *hi)
{
	double s[16];

	memcpy(s, a->v[k], a->rounds * sizeof(*s));
	if (lo)
		*lo = pct(s, a->rounds, 0);
	if (hi)
		*hi = pct(s, a->rounds, 1);
	return pct(s, a->rounds, 0.5);
}

/* ---- the plan ---- */

static unsigned rounds = 5, many = 16, nchunks;
static uint64_t chunks[MAX_CHUNKS];
static unsigned faults[MAX_CHUNKS];
static bool mem_on[NMEM] = { true, true };
static enum responder order[NRESP] = { FLINT, FLOOR }; /* the responders that run */
static unsigned nresp = 2;

static void run_cell(const struct cell *c, struct agg *a)
{
	struct guest_memory mem;
	long long cpu;

	make_memory(&mem, c);
	skip_populate = c->who == NOPOP;
	cpu = c->who == FLINT || c->who == NOPOP ? run_flint(c, &mem) : run_floor(c, &mem);
	skip_populate = false;
	record(a, c, cpu);
	guest_memory_destroy(&mem);
}

/* Each responder once, not counted: the first cell of a process pays for first touches. */
static void warm_up(void)
{
	static struct agg scratch;

	for (unsigned k = 0; k < nresp; k++) {
		struct cell c = { order[k], TOUCHED, 64 << 10, 32, many };
		run_cell(&c, &scratch);
	}
}

/* Every cell once, the responders' order flipped every round and every cell. */
static void run_round(unsigned r)
{
	unsigned flip = r;

	for (int ms = 0; ms < NMEM; ms++)
		for (unsigned ci = 0; mem_on[ms] && ci < nchunks; ci++)
			for (unsigned ki = 0; ki < 2; ki++, flip++)
				for (unsigned k = 0; k < nresp; k++) {
					enum responder who = order[flip % 2 ? nresp - 1 - k : k];
					struct cell c = { who, ms, chunks[ci], faults[ci],
						          ki ? many : 1 };
					run_cell(&c, &aggs[ms][ci][ki][who]);
				}
}

static const char *size_name(uint64_t b, char *buf, size_t len)
{
	if (b >= (1ULL << 20))
		snprintf(buf, len, "%llu MiB", (unsigned long long)(b >> 20));
	else
		snprintf(buf, len, "%llu KiB", (unsigned long long)(b >> 10));
	return buf;
}

struct summary {
	double rate, lo, hi, p50, p99, cpu;
};

static struct summary summarize(const struct agg *a)
{
	struct summary s;

	s.rate = med(a, V_RATE, &s.lo, &s.hi);
	s.p50 = med(a, V_P50, NULL, NULL);
	s.p99 = med(a, V_P99, NULL, NULL);
	s.cpu = med(a, V_CPU, NULL, NULL);
	return s;
}

/* Floor faults/s over each other responder's: > 1 means slower than the floor. */
static void print_ratios(const struct summary *s)
{
	printf(" |");
	for (unsigned k = 0; k < nresp; k++)
		if (order[k] != FLOOR)
			printf(" %s %.2fx", resp_name[order[k]], s[FLOOR].rate / s[order[k]].rate);
	printf(" (p50 %.2fx)\n", s[FLINT].p50 / s[FLOOR].p50);
}

static void print_table(enum mem_state ms)
{
	char sz[24];

	printf("memory %s: %s\n", mem_name[ms],
	       ms == TOUCHED
	               ? "guest RAM written before the faults (only the IOMMU is cold)"
	               : "a new memfd, never touched (pages allocated and zeroed in the fault)");
	printf("%-8s %-6s", "chunk", "flight");
	for (unsigned k = 0; k < nresp; k++)
		printf(" | %-5s faults/s (min-max)      p50 us   p99 us  cpu us",
		       resp_name[order[k]]);
	printf(" | x floor (faults/s; flint's p50 too)\n");
	for (unsigned ci = 0; ci < nchunks; ci++)
		for (unsigned ki = 0; ki < 2; ki++) {
			struct summary s[NRESP];
			printf("%-8s %-6u", size_name(chunks[ci], sz, sizeof(sz)), ki ? many : 1);
			for (unsigned k = 0; k < nresp; k++) {
				struct summary *m = &s[order[k]];
				*m = summarize(&aggs[ms][ci][ki][order[k]]);
				printf(" | %8.0f (%6.0f-%-6.0f) %8.0f %8.0f %7.0f", m->rate, m->lo,
				       m->hi, m->p50, m->p99, m->cpu);
			}
			print_ratios(s);
		}
}

static void print_row_head(unsigned ci, unsigned ki, enum responder k)
{
	char sz[24];

	printf("%-8s %-6u %-5s", size_name(chunks[ci], sz, sizeof(sz)), ki ? many : 1,
	       resp_name[k]);
}

/*
 * 1 in flight: one fault's path stage by stage, mean us (the median of the rounds'
 * means); in each round the stages sum to the mean latency.
 * (With many in flight a read holds faults triggered while earlier ones were served, so
 * the stages would mostly show queueing: print_cost() covers those cells.)
 */
static void print_stages(enum mem_state ms)
{
	printf("where the time goes, memory %s, 1 in flight: mean us per fault, stage by stage "
	       "(trig+wake: trigger ioctl to the end of epoll_wait/poll; dispatch: to the read; "
	       "pre-map/gap/post-map: the responder's own code between syscalls)\n",
	       mem_name[ms]);
	printf("%-8s %-6s %-5s", "chunk", "flight", "who");
	for (int k = 0; k < NSTAGE; k++)
		printf(" %9s", stage_name[k]);
	printf(" | %9s\n", "sum");
	for (unsigned ci = 0; ci < nchunks; ci++)
		for (unsigned k = 0; k < nresp; k++) {
			const struct agg *a = &aggs[ms][ci][0][order[k]];
			double sum = 0;
			print_row_head(ci, 0, order[k]);
			for (int st = 0; st < NSTAGE; st++) {
				double m = med(a, V_STAGE + st, NULL, NULL);
				printf(" %9.1f", m);
				sum += m;
			}
			printf(" | %9.1f\n", sum);
		}
}

/* Every cell: the responder thread's CPU per fault, and what its syscalls took of it. */
static void print_cost(enum mem_state ms)
{
	printf("responder cost, memory %s: us per fault (medians of the rounds): thread CPU "
	       "time; wall time in "
	       "populate (madvise), map (ioctl), read+write; rest = CPU - those (loop, "
	       "resolver, epoll/poll); reads and writes per fault\n",
	       mem_name[ms]);
	printf("%-8s %-6s %-5s %9s %9s %9s %9s %9s %7s %7s\n", "chunk", "flight", "who", "cpu",
	       "populate", "map", "read+wr", "rest", "reads", "writes");
	for (unsigned ci = 0; ci < nchunks; ci++)
		for (unsigned ki = 0; ki < 2; ki++)
			for (unsigned k = 0; k < nresp; k++) {
				const struct agg *a = &aggs[ms][ci][ki][order[k]];
				double v[V_STAGE];
				for (int i = 0; i < V_STAGE; i++)
					v[i] = med(a, i, NULL, NULL);
				print_row_head(ci, ki, order[k]);
				printf(" %9.1f %9.1f %9.1f %9.1f %9.1f %7.3f %7.3f\n", v[V_CPU],
				       v[V_POP], v[V_MAP], v[V_RW], v[V_REST], v[V_READS],
				       v[V_WRITES]);
			}
}

static void print_last_line(void)
{
	enum mem_state ms = mem_on[TOUCHED] ? TOUCHED : FRESH;
	unsigned ci = 0;

	for (unsigned i = 0; i < nchunks; i++)
		if (chunks[i] == (2ULL << 20))
			ci = i;
	struct summary fl = summarize(&aggs[ms][ci][1][FLINT]);
	struct summary fo = summarize(&aggs[ms][ci][1][FLOOR]);
	char sz[24];
	printf("cold fault: %.2fx floor, %.0f faults/s, p50 %.0f us, p99 %.0f us (%s chunks, %u "
	       "in flight)\n",
	       fo.rate / fl.rate, fl.rate, fl.p50, fl.p99, size_name(chunks[ci], sz, sizeof(sz)),
	       many);
}

/* ---- options ---- */

static void parse_chunks(const char *s)
{
	nchunks = 0;
	while (*s && nchunks < MAX_CHUNKS) {
		char *end;
		unsigned long long kib = strtoull(s, &end, 10);
		CHECK(*end == ':', "-c wants KIB:N[,KIB:N...]");
		unsigned long n = strtoul(end + 1, &end, 10);
		chunks[nchunks] = kib << 10;
		faults[nchunks] = (unsigned)n;
		CHECK(kib >= 4 && !(kib & (kib - 1)) && n > 0 && n <= MAX_FAULTS &&
		              MOCK_APERTURE_START + n * (kib << 10) <= MOCK_APERTURE_LAST + 1,
		      "-c: chunk %llu KiB x %lu faults: a power of two >= 4 KiB, at most %d "
		      "faults, "
		      "inside the mock's aperture (16 MiB..2 GiB)",
		      kib, n, MAX_FAULTS);
		nchunks++;
		s = *end == ',' ? end + 1 : end;
	}
}

static void parse_cpus(const char *s)
{
	if (strcmp(s, "any") == 0) {
		resp_cpu = dev_cpu = -1;
		return;
	}
	char *end;
	resp_cpu = dev_cpu = (int)strtol(s, &end, 10);
	if (*end == ',')
		dev_cpu = (int)strtol(end + 1, &end, 10);
	CHECK(*end == 0 && resp_cpu >= 0 && dev_cpu >= 0, "-p wants CPU[,CPU] or any");
}

static void parse_args(int argc, char **argv)
{
	bool file = false, nopop = false;
	int o;

	parse_chunks("4:1024,64:512,2048:256");
	while ((o = getopt(argc, argv, "r:c:k:m:p:fP")) != -1) {
		if (o == 'r')
			rounds = (unsigned)atoi(optarg);
		else if (o == 'c')
			parse_chunks(optarg);
		else if (o == 'k')
			many = (unsigned)atoi(optarg);
		else if (o == 'm') {
			mem_on[TOUCHED] = strcmp(optarg, "fresh") != 0;
			mem_on[FRESH] = strcmp(optarg, "touched") != 0;
		} else if (o == 'p')
			parse_cpus(optarg);
		else if (o == 'f')
			file = true;
		else if (o == 'P')
			nopop = true;
		else
			rig_fail("usage: fault-cold [-r ROUNDS] [-c KIB:N,...] [-k MANY] "
			         "[-m touched|fresh|both] [-p CPU[,CPU]|any] [-P] [-f]");
	}
	if (nopop)
		order[nresp++] = NOPOP;
	if (file)
		order[nresp++] = FILE_FLOOR;
	CHECK(rounds >= 1 && rounds <= 16 && many >= 1 && many < COOKIES / 2, "-r 1..16, -k 1..%d",
	      COOKIES / 2 - 1);
}

static void print_header(void)
{
	char cs[32] = "?", sz[24];
	struct utsname u;
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");

	if (f && fgets(cs, sizeof(cs), f))
		cs[strcspn(cs, "\n")] = 0;
	if (f)
		fclose(f);
	uname(&u);
	printf("cold fault: Linux %s, %ld CPUs, clocksource %s; responder on CPU %d, device "
	       "thread on CPU %d (-1: not pinned); %u rounds; faults per cell:",
	       u.release, sysconf(_SC_NPROCESSORS_ONLN), cs, resp_cpu, dev_cpu, rounds);
	for (unsigned i = 0; i < nchunks; i++)
		printf(" %s x%u", size_name(chunks[i], sz, sizeof(sz)), faults[i]);
	printf("; 1 and %u in flight\n", many);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	log_set_level(LOG_WARN); /* not iommu_teardown()'s summary after every cell */
	parse_args(argc, argv);
	print_header();
	CHECK(resp_cpu < 0 || pin_self(resp_cpu) == 0, "cannot pin to CPU %d", resp_cpu);
	warm_up();
	for (unsigned r = 0; r < rounds; r++) {
		long long t0 = clock_now_ns();
		run_round(r);
		printf("round %u of %u: %.1f s\n", r + 1, rounds, (clock_now_ns() - t0) / 1e9);
		fflush(stdout);
	}
	for (int ms = 0; ms < NMEM; ms++)
		if (mem_on[ms])
			print_table(ms);
	for (int ms = 0; ms < NMEM; ms++)
		if (mem_on[ms]) {
			print_stages(ms);
			print_cost(ms);
		}
	print_last_line();
	return 0;
}
