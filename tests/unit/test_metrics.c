/*
 * The metrics writer (vmm/metrics.h) on real files and FIFOs, driven by the real loop: one
 * JSON object per line, counters as what grew since the last line written, a FIFO nobody
 * reads never blocks (lines dropped and counted, never torn, nothing lost from the counts),
 * the period timer, the configure-once rule. And the VM's iommu section helpers.
 */
#include "tests/lib/util.h"
#include "devices/virtio/net.h"
#include "vmm/mmds/mmds.h"
#include "vmm/base/clock.h"
#include "vmm/base/loop.h"
#include "vmm/metrics.h"
#include "vmm/vm_metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

/* A source: a counter that grows by one per line, a gauge, and @pad keys to make lines big. */
struct fake {
	uint64_t ops;
	unsigned pad;
};

static void fake_source(void *ctx, struct metrics_line *l)
{
	struct fake *f = ctx;
	char key[32];

	metrics_counter(l, "dev", "ops", ++f->ops);
	metrics_gauge(l, "dev", "level", 42);
	for (unsigned i = 0; i < f->pad; i++) {
		snprintf(key, sizeof(key), "padding_key_%04u", i);
		metrics_gauge(l, "pad", key, 1234567890123ULL + i);
	}
}

static char *tmp_path(const char *name)
{
	static char paths[8][256];
	static unsigned next;
	char *p = paths[next++ % 8];

	snprintf(p, 256, "%s/%s", test_tmpdir(), name);
	unlink(p);
	return p;
}

static uint64_t utc_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Every line of @text (each must end with '\n'), parsed: an array of objects. */
static json_t *parse_lines(const char *text)
{
	json_t *lines = json_array();

	for (const char *p = text, *nl; *p; p = nl + 1) {
		json_error_t e;
		json_t *o;
		nl = strchr(p, '\n');
		if (!nl)
			fail_msg("a line without its newline: \"%.80s\"", p);
		o = json_loadb(p, (size_t)(nl - p), 0, &e);
		if (!json_is_object(o))
			fail_msg("not a JSON object (%s): \"%.80s\"", e.text, p);
		json_array_append_new(lines, o);
	}
	return lines;
}

static char *read_file(const char *path)
{
	static char buf[1 << 20];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	assert_true(n >= 0);
	buf[n] = 0;
	close(fd);
	return buf;
}

static uint64_t get(json_t *line, const char *section, const char *key)
{
	json_t *v = json_object_get(json_object_get(line, section), key);

	if (!json_is_integer(v))
		fail_msg("%s.%s: missing", section, key);
	return (uint64_t)json_integer_value(v);
}

static uint64_t get_int(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v))
		fail_msg("%s: missing", key);
	return (uint64_t)json_integer_value(v);
}

static struct metrics *configured(struct loop *l, const char *path, struct fake *f)
{
	struct metrics *m = metrics_new(l);
	struct metrics_params p = { .path = path, .id = "vm1" };
	char why[160] = "";

	assert_non_null(m);
	if (metrics_configure(m, &p, why, sizeof(why)))
		fail_msg("%s: %s", path, why);
	assert_int_equal(metrics_add_source(m, fake_source, f), 0);
	return m;
}

/* A regular file is appended to; each line is one object; counters say what grew. */
static void test_file_lines(void **state)
{
	struct loop *l = loop_new();
	struct metrics *m = metrics_new(l);
	struct fake f = { 0 };
	char *path = tmp_path("metrics.json"), *text, why[160];
	struct metrics_params p = { path, true, "vm1", "{\"a\":\"1\",\"b\":\"2\"}" };
	uint64_t t0 = utc_ms(), t1;
	json_t *lines;
	int fd = open(path, O_CREAT | O_WRONLY, 0600);

	(void)state;
	assert_int_equal(write(fd, "{\"old\":1}\n", 10), 10);
	close(fd);
	assert_int_equal(metrics_configure(m, &p, why, sizeof(why)), 0);
	assert_int_equal(metrics_add_source(m, fake_source, &f), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(metrics_flush(m, why, sizeof(why)), 0);
	f.ops += 4; /* counted between lines: the next says 5 */
	assert_int_equal(metrics_flush(m, why, sizeof(why)), 0);
	t1 = utc_ms();
	text = read_file(path);
	lines = parse_lines(text);
	assert_int_equal(json_array_size(lines), 5);
	/* Firecracker's first key; then its id and properties (keys sorted) */
	assert_non_null(strstr(text, "\n{\"utc_timestamp_ms\":"));
	assert_non_null(strstr(text, "\"id\":\"vm1\",\"properties\":{\"a\":\"1\",\"b\":\"2\"}"));
	for (size_t i = 1; i < 5; i++) {
		json_t *o = json_array_get(lines, i);
		uint64_t ts = (uint64_t)json_integer_value(json_object_get(o, "utc_timestamp_ms"));
		assert_true(ts >= t0 && ts <= t1);
		assert_int_equal(get(o, "dev", "ops"), i < 4 ? 1 : 5);
		assert_int_equal(get(o, "dev", "level"), 42);
		assert_int_equal(get(o, "logger", "missed_metrics_count"), 0);
	}
	assert_int_equal(metrics_stats(m)->lines, 4);
	assert_int_equal(metrics_stats(m)->dropped, 0);
	json_decref(lines);
	metrics_free(m);
	loop_free(l);
}

/* Configured once (Firecracker's rule); a failed attempt changes nothing. */
static void test_configure_once(void **state)
{
	struct loop *l = loop_new();
	struct metrics *m = metrics_new(l);
	char why[160] = "", *path = tmp_path("once.json"), link[300];
	struct metrics_params p = { .path = "/nonexistent-dir/m.json" };

	(void)state;
	assert_false(metrics_configured(m));
	assert_int_equal(metrics_flush(m, why, sizeof(why)), 0); /* nothing configured: no-op */
	assert_int_equal(metrics_start(m, 1000), 0);             /* nor a timer */
	assert_int_equal(metrics_configure(m, &p, why, sizeof(why)), -ENOENT);
	assert_string_equal(why, "No such file or directory");
	p.path = test_tmpdir();
	assert_int_equal(metrics_configure(m, &p, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "is a directory"));
	snprintf(link, sizeof(link), "%s/dangling", test_tmpdir());
	unlink(link);
	assert_int_equal(symlink("/nonexistent-dir/x", link), 0);
	p.path = link;
	assert_int_equal(metrics_configure(m, &p, why, sizeof(why)), -ELOOP);
	p.path = path;
	p.properties = "[1]";
	assert_int_equal(metrics_configure(m, &p, why, sizeof(why)), -EINVAL);
	assert_false(metrics_configured(m));
	p.properties = NULL;
	assert_int_equal(metrics_configure(m, &p, why, sizeof(why)), 0);
	assert_true(metrics_configured(m));
	assert_string_equal(metrics_path(m), path);
	p.path = "/dev/null";
	assert_int_equal(metrics_configure(m, &p, why, sizeof(why)), -EALREADY);
	assert_string_equal(why, METRICS_REINIT_MSG);
	assert_string_equal(metrics_path(m), path);
	unlink(link);
	metrics_free(m);
	loop_free(l);
}

/* A character device works: /dev/null takes every line. */
static void test_char_device(void **state)
{
	struct loop *l = loop_new();
	struct fake f = { 0 };
	struct metrics *m = configured(l, "/dev/null", &f);
	char why[160];

	(void)state;
	for (int i = 0; i < 100; i++)
		assert_int_equal(metrics_flush(m, why, sizeof(why)), 0);
	assert_int_equal(metrics_stats(m)->lines, 100);
	metrics_free(m);
	loop_free(l);
}

/* Reads what the FIFO holds now, appending to @buf (of @cap). */
static size_t drain(int rd, char *buf, size_t len, size_t cap)
{
	ssize_t n;

	while (len < cap - 1 && (n = read(rd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = 0;
	return len;
}

/*
 * A FIFO nobody reads: configured without a reader, never a wait; when it is full the
 * lines are dropped (counted), a line it took only the start of is finished when a reader
 * comes, never torn; the counts of dropped lines reach the lines that are written.
 */
static void test_fifo_without_reader(void **state)
{
	static char buf[1 << 21];
	struct loop *l = loop_new();
	struct fake f = { .pad = 150 }; /* about 6 KiB a line: more than PIPE_BUF */
	char *path = tmp_path("metrics.fifo"), why[160];
	struct metrics *m;
	long long t0;
	uint64_t ops = 0, missed = 0;
	unsigned eagain = 0;
	json_t *lines;
	size_t len = 0;
	int rd;

	(void)state;
	assert_int_equal(mkfifo(path, 0600), 0);
	alarm(20); /* a blocking write would hang here: fail instead */
	t0 = clock_now_ns();
	m = configured(l, path, &f);
	for (int i = 0; i < 200; i++) {
		int r = metrics_flush(m, why, sizeof(why));
		assert_true(r == 0 || r == -EAGAIN);
		eagain += r == -EAGAIN;
	}
	assert_true(clock_now_ns() - t0 < 2000000000LL); /* 200 lines: no wait anywhere */
	assert_true(eagain > 0);
	assert_true(metrics_stats(m)->pending); /* a line cut short by the full FIFO, kept */
	assert_int_equal(metrics_stats(m)->dropped, eagain);
	assert_int_equal(metrics_stats(m)->lines + metrics_stats(m)->dropped, 200);
	/* A reader comes: it reads, the loop finishes the line cut short, more go through. */
	rd = open(path, O_RDONLY | O_NONBLOCK);
	assert_true(rd >= 0);
	for (int i = 0; i < 50; i++) {
		len = drain(rd, buf, len, sizeof(buf));
		assert_int_equal(loop_run_once(l, 1000), 0);
		if (!metrics_stats(m)->pending && i > 2)
			assert_int_equal(metrics_flush(m, why, sizeof(why)), 0);
	}
	len = drain(rd, buf, len, sizeof(buf));
	assert_false(metrics_stats(m)->pending);
	alarm(0);
	lines = parse_lines(buf); /* every line whole */
	assert_int_equal(json_array_size(lines), metrics_stats(m)->lines);
	for (size_t i = 0; i < json_array_size(lines); i++) {
		ops += get(json_array_get(lines, i), "dev", "ops");
		missed += get(json_array_get(lines, i), "logger", "missed_metrics_count");
	}
	/* What the dropped lines counted went out with the next line written: nothing lost. */
	assert_int_equal(ops, f.ops);
	assert_int_equal(missed, metrics_stats(m)->dropped);
	json_decref(lines);
	close(rd);
	metrics_free(m);
	loop_free(l);
	unlink(path);
}

/*
 * flint ends while the FIFO holds a line's start and its reader has since made room: the
 * end of the line goes out at close (before, the loop never ran again and the line stayed
 * torn). Nothing waits for a reader that does not come.
 */
static void test_fifo_tail_at_free(void **state)
{
	static char buf[1 << 21];
	struct loop *l = loop_new();
	struct fake f = { .pad = 150 };
	char *path = tmp_path("metrics-end.fifo"), why[160];
	struct metrics *m;
	json_t *lines;
	unsigned written;
	size_t len = 0;
	int rd;

	(void)state;
	assert_int_equal(mkfifo(path, 0600), 0);
	alarm(20);
	m = configured(l, path, &f);
	for (int i = 0; i < 100 && !metrics_stats(m)->pending; i++)
		metrics_flush(m, why, sizeof(why));
	assert_true(metrics_stats(m)->pending);
	written = (unsigned)metrics_stats(m)->lines;
	rd = open(path, O_RDONLY | O_NONBLOCK);
	assert_true(rd >= 0);
	len = drain(rd, buf, len, sizeof(buf)); /* room now; the loop does not run again */
	metrics_free(m);
	len = drain(rd, buf, len, sizeof(buf));
	alarm(0);
	assert_true(len > 0 && buf[len - 1] == '\n');
	lines = parse_lines(buf); /* every line whole, the one cut short too */
	assert_int_equal(json_array_size(lines), written);
	json_decref(lines);
	close(rd);
	loop_free(l);
	unlink(path);
}

/* The period: a line at the start, then one per period, from the loop. */
static void test_period_timer(void **state)
{
	struct loop *l = loop_new();
	struct fake f = { 0 };
	char *path = tmp_path("timer.json");
	struct metrics *m = configured(l, path, &f);
	long long until = clock_now_ns() + 2000000000LL;
	json_t *lines;

	(void)state;
	assert_int_equal(metrics_start(m, 20000), 0); /* 20 ms: METRICS_PERIOD_US in flint */
	assert_int_equal(metrics_stats(m)->lines, 1); /* at once, as Firecracker */
	while (metrics_stats(m)->lines < 4 && clock_now_ns() < until)
		assert_int_equal(loop_run_once(l, 50000), 0);
	assert_true(metrics_stats(m)->lines >= 4);
	lines = parse_lines(read_file(path));
	assert_int_equal(json_array_size(lines), metrics_stats(m)->lines);
	json_decref(lines);
	metrics_free(m); /* removes the timer from the loop */
	loop_free(l);
}

/* Percentiles of the resolver's histogram: the upper bound of the bucket they fall in. */
static void test_percentile(void **state)
{
	/* bucket i counts latencies below 2^i us */
	uint64_t h[RESOLVER_LAT_BUCKETS] = { 0 };

	(void)state;
	assert_int_equal(vm_metrics_percentile(h, RESOLVER_LAT_BUCKETS, 50), 0);
	h[3] = 98; /* 4-7 us */
	h[10] = 2; /* 512-1023 us */
	assert_int_equal(vm_metrics_percentile(h, RESOLVER_LAT_BUCKETS, 50), 8);
	assert_int_equal(vm_metrics_percentile(h, RESOLVER_LAT_BUCKETS, 98), 8);
	assert_int_equal(vm_metrics_percentile(h, RESOLVER_LAT_BUCKETS, 99), 1024);
	h[RESOLVER_LAT_BUCKETS - 1] = 1000; /* open-ended: its lower bound's double */
	assert_int_equal(vm_metrics_percentile(h, RESOLVER_LAT_BUCKETS, 99),
	                 1ULL << (RESOLVER_LAT_BUCKETS - 1));
}

/* GET /flint/iommu's body: the iommu section's keys, totals, percentiles once answered. */
static void test_iommu_json(void **state)
{
	struct resolver_stats s = { .faults = 10,
		                    .groups = 4,
		                    .chunks_mapped = 3,
		                    .bytes_mapped = 6 << 20,
		                    .invalid = 1,
		                    .chunks_unmapped = 1,
		                    .bytes_unmapped = 2 << 20,
		                    .refaults = 1 };
	json_t *o;

	(void)state;
	s.latency_us[5] = 4;
	o = vm_metrics_iommu_json(&s);
	assert_non_null(o);
	assert_int_equal(get_int(o, "faults"), 10);
	assert_int_equal(get_int(o, "groups"), 4);
	assert_int_equal(get_int(o, "mapped_chunks"), 3);
	assert_int_equal(get_int(o, "invalid_answers"), 1);
	assert_int_equal(get_int(o, "refused_answers"), 0);
	assert_int_equal(get_int(o, "unmapped_chunks"), 1);
	assert_int_equal(get_int(o, "refaults"), 1);
	assert_int_equal(get_int(o, "pinned_bytes"), 4 << 20);
	assert_int_equal(get_int(o, "latency_p50_us"), 32);
	assert_int_equal(get_int(o, "latency_p99_us"), 32);
	json_decref(o);
	memset(&s, 0, sizeof(s));
	o = vm_metrics_iommu_json(&s);
	assert_null(json_object_get(o, "latency_p50_us")); /* nothing answered: no latency */
	json_decref(o);
}

static void vm_source(void *ctx, struct metrics_line *l)
{
	vm_metrics_add(l, ctx);
}

/*
 * The VM's sections without a VM: vCPU exits summed over the vCPUs, the iommu section's
 * counters as deltas and its latency over the groups answered since the last line only.
 */
static void test_vm_sections(void **state)
{
	static struct vcpu vcpus[2];
	struct resolver_stats s = { .faults = 8, .groups = 2, .bytes_mapped = 4 << 20 };
	struct vmm_virtio none = { .n = 0 };
	struct vm_metrics_parts parts = { vcpus, 2, &none, NULL, &s, NULL, false };
	struct loop *l = loop_new();
	struct metrics *m = metrics_new(l);
	char *path = tmp_path("vm.json"), why[160];
	struct metrics_params p = { .path = path };
	json_t *lines, *a, *b, *c;

	(void)state;
	assert_int_equal(metrics_configure(m, &p, why, sizeof(why)), 0);
	assert_int_equal(metrics_add_source(m, vm_source, &parts), 0);
	atomic_store(&vcpus[0].counters.exit_io_in, 3);
	atomic_store(&vcpus[1].counters.exit_io_in, 4);
	atomic_store(&vcpus[1].counters.exit_mmio_write, 9);
	s.latency_us[2] = 2;
	assert_int_equal(metrics_flush(m, why, sizeof(why)), 0);
	s.faults = 10, s.groups = 102, s.latency_us[12] = 100, s.bytes_unmapped = 2 << 20;
	atomic_store(&vcpus[0].counters.failures, 1);
	assert_int_equal(metrics_flush(m, why, sizeof(why)), 0);
	assert_int_equal(metrics_flush(m, why, sizeof(why)), 0);
	lines = parse_lines(read_file(path));
	a = json_array_get(lines, 0), b = json_array_get(lines, 1), c = json_array_get(lines, 2);
	assert_int_equal(get(a, "vcpu", "exit_io_in"), 7);
	assert_int_equal(get(a, "vcpu", "exit_mmio_write"), 9);
	assert_int_equal(get(b, "vcpu", "exit_io_in"), 0);
	assert_int_equal(get(b, "vcpu", "failures"), 1);
	assert_int_equal(get(a, "iommu", "faults"), 8);
	assert_int_equal(get(b, "iommu", "faults"), 2);
	assert_int_equal(get(a, "iommu", "latency_p99_us"), 4);
	assert_int_equal(get(b, "iommu", "latency_p50_us"), 4096); /* only the 100 new ones */
	assert_int_equal(get(b, "iommu", "pinned_bytes"), 2 << 20);
	assert_null(json_object_get(json_object_get(c, "iommu"), "latency_p50_us"));
	assert_null(json_object_get(a, "block")); /* no device, no section */
	assert_null(json_object_get(a, "mmds"));  /* no store, and none to come */
	json_decref(lines);
	metrics_free(m);
	loop_free(l);
}

/* A process whose MMDS store was never made (none needed one) still writes the section. */
static void test_mmds_unmade(void **state)
{
	struct vmm_virtio none = { .n = 0 };
	struct vm_metrics_parts parts = { .virtio = &none, .mmds_unmade = true };
	struct loop *l = loop_new();
	struct metrics *m = metrics_new(l);
	char *path = tmp_path("unmade.json"), why[160];
	struct metrics_params p = { .path = path };
	json_t *lines;

	(void)state;
	assert_int_equal(metrics_configure(m, &p, why, sizeof(why)), 0);
	assert_int_equal(metrics_add_source(m, vm_source, &parts), 0);
	assert_int_equal(metrics_flush(m, why, sizeof(why)), 0);
	lines = parse_lines(read_file(path));
	assert_int_equal(get(json_array_get(lines, 0), "mmds", "rx_no_token"), 0);
	assert_int_equal(get(json_array_get(lines, 0), "mmds", "rx_accepted"), 0);
	json_decref(lines);
	metrics_free(m);
	loop_free(l);
}

/* An ARP request from the guest (10.0.0.2) for the MMDS address. */
static size_t arp_request(uint8_t *f)
{
	static const uint8_t head[] = { 0x06, 0,    0,    0, 0, 1,    0x06, 0,   0,  0, 0,
		                        1,    0x08, 0x06, 0, 1, 0x08, 0,    6,   4,  0, 1,
		                        0x06, 0,    0,    0, 0, 1,    10,   0,   0,  2, 0,
		                        0,    0,    0,    0, 0, 169,  254,  169, 254 };

	memcpy(f, head, sizeof(head));
	return sizeof(head);
}

/*
 * Firecracker's "mmds" section: the store's token counters and the net devices' stacks'
 * frames, as deltas like every counter.
 */
static void test_mmds_section(void **state)
{
	static struct vmm_virtio vv;
	static struct virtio_net net;
	struct net_config nc = { .id = "eth0" };
	struct vm_config cfg = { .nets = &nc, .nnets = 1 };
	struct mmds *store;
	struct net_mmds_config mc = { 0 };
	struct vm_metrics_parts parts = { NULL, 0, &vv, &cfg, NULL, NULL, false };
	struct loop *l = loop_new();
	struct metrics *m = metrics_new(l);
	char *path = tmp_path("mmds.json"), why[160];
	struct metrics_params p = { .path = path };
	uint8_t vh[12] = { 0 }, f[64], out[2048], *resp;
	size_t resp_len;
	json_t *lines, *a, *b;
	const char *no_token = "GET /x HTTP/1.1\r\n\r\n";
	const char *bad_token = "GET /x HTTP/1.1\r\nX-metadata-token: nope\r\n\r\n";

	(void)state;
	assert_int_equal(mmds_new(&store, &(struct mmds_params){ .size_limit = 51200 }), 0);
	parts.mmds = store;
	mc.responder = (struct net_mmds_responder){ mmds_serve, store };
	/* One bound net device with a stack: what add_virtio and the section read of it. */
	vv.n = 1;
	vv.slots[0] = (struct vmm_virtio_slot){ .kind = VIRTIO_KIND_NET, .bound = true };
	pthread_mutex_init(&vv.slots[0].t.lock, NULL);
	net.dev.transport = &vv.slots[0].t;
	vv.slots[0].dev = &net.dev;
	net.mmds = net_mmds_new(&mc, "eth0");
	assert_non_null(net.mmds);

	assert_int_equal(metrics_configure(m, &p, why, sizeof(why)), 0);
	assert_int_equal(metrics_add_source(m, vm_source, &parts), 0);
	net_mmds_input(net.mmds, vh, f, arp_request(f));
	assert_int_equal(net_mmds_output(net.mmds, out, sizeof(out)), 42);
	net_mmds_input(net.mmds, vh, f, 10); /* no Ethernet header */
	assert_true(mmds_serve(store, (const uint8_t *)no_token, strlen(no_token), &resp,
	                       &resp_len) > 0);
	free(resp);
	assert_int_equal(metrics_flush(m, why, sizeof(why)), 0);
	assert_true(mmds_serve(store, (const uint8_t *)bad_token, strlen(bad_token), &resp,
	                       &resp_len) > 0);
	free(resp);
	net_mmds_input(net.mmds, vh, f, 10);
	assert_int_equal(metrics_flush(m, why, sizeof(why)), 0);
	lines = parse_lines(read_file(path));
	a = json_array_get(lines, 0), b = json_array_get(lines, 1);
	assert_int_equal(get(a, "mmds", "rx_accepted"), 2);
	assert_int_equal(get(a, "mmds", "rx_bad_eth"), 1);
	assert_int_equal(get(a, "mmds", "rx_accepted_err"), 0);
	assert_int_equal(get(a, "mmds", "rx_no_token"), 1);
	assert_int_equal(get(a, "mmds", "rx_invalid_token"), 0);
	assert_int_equal(get(a, "mmds", "tx_frames"), 1);
	assert_int_equal(get(a, "mmds", "tx_count"), 1);
	assert_int_equal(get(a, "mmds", "tx_bytes"), 42);
	assert_int_equal(get(a, "mmds", "tx_errors"), 0);
	assert_int_equal(get(a, "mmds", "rx_count"), 0);
	assert_int_equal(get(a, "mmds", "connections_created"), 0);
	assert_int_equal(get(a, "mmds", "connections_destroyed"), 0);
	assert_int_equal(get(a, "mmds", "rx_accepted_unusual"), 0);
	assert_int_equal(get(b, "mmds", "rx_accepted"), 1);
	assert_int_equal(get(b, "mmds", "rx_bad_eth"), 1);
	assert_int_equal(get(b, "mmds", "rx_no_token"), 0);
	assert_int_equal(get(b, "mmds", "rx_invalid_token"), 1);
	assert_int_equal(get(b, "mmds", "tx_frames"), 0);
	json_decref(lines);
	metrics_free(m);
	loop_free(l);
	net_mmds_free(net.mmds);
	pthread_mutex_destroy(&vv.slots[0].t.lock);
	mmds_free(store);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_lines),
		cmocka_unit_test(test_configure_once),
		cmocka_unit_test(test_char_device),
		cmocka_unit_test(test_fifo_without_reader),
		cmocka_unit_test(test_fifo_tail_at_free),
		cmocka_unit_test(test_period_timer),
		cmocka_unit_test(test_percentile),
		cmocka_unit_test(test_iommu_json),
		cmocka_unit_test(test_vm_sections),
		cmocka_unit_test(test_mmds_unmade),
		cmocka_unit_test(test_mmds_section),
	};

	return TEST_MAIN(tests, NULL, test_group_teardown);
}
