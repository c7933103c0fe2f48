/*
 * The REST API on its Unix socket, in process: the real server on the real loop, a client
 * thread speaking raw HTTP/1.1. No KVM needed: InstanceStart is asked to boot an image the
 * loader refuses, so it fails the same way on every machine.
 */
#include "tests/lib/flintrun.h"
#include "tests/lib/http_client.h"
#include "tests/lib/util.h"
#include "vmm/api/api.h"
#include "vmm/base/log.h"
#include "vmm/base/loop.h"
#include "vmm/config/config.h"
#include "vmm/base/exitcode.h"
#include "vmm/metrics.h"
#include "vmm/mmds/mmds.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define MAX_STEPS 24

struct step {
	const char *method, *path;
	char *body; /* owned */
	int status; /* answer */
	json_t *reply;
};

struct world {
	char sock[108], dir[64], kernel[96], disk[96], metrics[96];
	struct vmm *vmm;
	struct api *api;
	struct vm_config cfg;
	struct run_opts opts;
	struct mmds *mmds; /* 100 bytes at most: the limit is easy to reach */
	struct step steps[MAX_STEPS];
	unsigned n;
};

/* A world whose process was given --metrics-path @metrics (in its directory), or none. */
static struct world *w_new_with(const char *metrics)
{
	struct world *w = calloc(1, sizeof(*w));
	struct api_params p;
	int fd;

	assert_non_null(w);
	snprintf(w->dir, sizeof(w->dir), "/tmp/flint-api-XXXXXX");
	assert_non_null(mkdtemp(w->dir));
	snprintf(w->sock, sizeof(w->sock), "%s/api.sock", w->dir);
	snprintf(w->kernel, sizeof(w->kernel), "%s/vmlinux", w->dir);
	snprintf(w->disk, sizeof(w->disk), "%s/disk.img", w->dir);
	/* A "kernel" no loader takes, and a 1 MiB disk. */
	fd = open(w->kernel, O_CREAT | O_WRONLY, 0600);
	assert_int_equal(write(fd, "not a kernel", 12), 12);
	close(fd);
	fd = open(w->disk, O_CREAT | O_WRONLY, 0600);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	close(fd);
	config_init(&w->cfg);
	w->opts.console_stdout = false;
	snprintf(w->metrics, sizeof(w->metrics), "%s/%s", w->dir, metrics ? metrics : "metrics");
	w->opts.metrics_path = metrics ? w->metrics : NULL;
	assert_int_equal(vmm_new(&w->vmm, &w->opts), 0);
	assert_int_equal(mmds_new(&w->mmds, &(struct mmds_params){ .size_limit = 100 }), 0);
	p = (struct api_params){
		.sock_path = w->sock, .id = "t1", .vmm = w->vmm, .cfg = &w->cfg, .mmds = w->mmds
	};
	assert_int_equal(api_open(&w->api, &p), 0);
	return w;
}

static struct world *w_new(void)
{
	return w_new_with(NULL);
}

static void w_free(struct world *w)
{
	struct stat st;

	api_close(w->api);
	assert_int_not_equal(stat(w->sock, &st), 0); /* removed on close */
	vmm_free(w->vmm);
	mmds_free(w->mmds);
	config_free(&w->cfg);
	for (unsigned i = 0; i < w->n; i++) {
		free(w->steps[i].body);
		json_decref(w->steps[i].reply);
	}
	unlink(w->kernel);
	unlink(w->disk);
	unlink(w->metrics);
	rmdir(w->dir);
	free(w);
}

/* Queues a request; the body is a printf format (NULL: none). Returns its index. */
static unsigned req(struct world *w, const char *method, const char *path, const char *fmt, ...)
{
	struct step *s = &w->steps[w->n];
	va_list ap;

	assert_true(w->n < MAX_STEPS);
	s->method = method;
	s->path = path;
	if (fmt) {
		va_start(ap, fmt);
		assert_true(vasprintf(&s->body, fmt, ap) >= 0);
		va_end(ap);
	}
	return w->n++;
}

/* One request on its own connection: status and JSON body (NULL when none). */
static void exchange(const char *sock, struct step *s)
{
	struct http_reply r;

	http_request(sock, s->method, s->path, s->body, &r);
	s->status = r.status;
	s->reply = *r.body ? json_loads(r.body, 0, NULL) : NULL;
	free(r.body);
}

static void stop_loop(void *arg)
{
	loop_stop(arg, 0);
}

static void *client(void *arg)
{
	struct world *w = arg;

	for (unsigned i = 0; i < w->n; i++)
		exchange(w->sock, &w->steps[i]);
	loop_post(vmm_loop(w->vmm), stop_loop, vmm_loop(w->vmm));
	return NULL;
}

/* Sends every queued request, in order, while the loop serves them. */
static void run(struct world *w)
{
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, client, w), 0);
	assert_int_equal(vmm_wait(w->vmm), 0);
	pthread_join(t, NULL);
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static void assert_fault(struct world *w, unsigned i, const char *want)
{
	const char *msg = str(w->steps[i].reply, "fault_message");

	if (w->steps[i].status != 400 || !strstr(msg, want))
		fail_msg("%s %s: status %d, fault \"%s\"; want 400 with \"%s\"", w->steps[i].method,
		         w->steps[i].path, w->steps[i].status, msg, want);
}

static void test_instance_and_version(void **state)
{
	struct world *w = w_new();
	unsigned a = req(w, "GET", "/", NULL), b = req(w, "GET", "/version", NULL);

	(void)state;
	run(w);
	assert_int_equal(w->steps[a].status, 200);
	assert_string_equal(str(w->steps[a].reply, "id"), "t1");
	assert_string_equal(str(w->steps[a].reply, "state"), "Not started");
	assert_string_equal(str(w->steps[a].reply, "vmm_version"), API_FIRECRACKER_VERSION);
	assert_int_equal(w->steps[b].status, 200);
	assert_string_equal(str(w->steps[b].reply, "firecracker_version"), API_FIRECRACKER_VERSION);
	w_free(w);
}

static void test_machine_config(void **state)
{
	struct world *w = w_new();
	unsigned d = req(w, "GET", "/machine-config", NULL);
	unsigned p = req(w, "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 256}");
	unsigned g = req(w, "PATCH", "/machine-config", "{\"vcpu_count\": 4}");
	unsigned bad = req(w, "PATCH", "/machine-config", "{\"vcpu_count\": 0}");
	unsigned x = req(w, "GET", "/machine-config", NULL);

	(void)state;
	run(w);
	assert_int_equal(w->steps[d].status, 200);
	assert_int_equal(json_integer_value(json_object_get(w->steps[d].reply, "vcpu_count")), 1);
	assert_int_equal(json_integer_value(json_object_get(w->steps[d].reply, "mem_size_mib")),
	                 128);
	assert_int_equal(w->steps[p].status, 204);
	assert_null(w->steps[p].reply);
	assert_int_equal(w->steps[g].status, 204);
	assert_fault(w, bad, "vcpu_count");
	/* The PATCH that failed changed nothing; the one before it kept PUT's memory size. */
	assert_int_equal(json_integer_value(json_object_get(w->steps[x].reply, "vcpu_count")), 4);
	assert_int_equal(json_integer_value(json_object_get(w->steps[x].reply, "mem_size_mib")),
	                 256);
	assert_string_equal(str(w->steps[x].reply, "huge_pages"), "None");
	w_free(w);
}

static void test_drives(void **state)
{
	struct world *w = w_new();
	const char *fmt = "{\"drive_id\": \"%s\", \"path_on_host\": \"%s\", "
	                  "\"is_root_device\": %s, \"is_read_only\": false}";
	unsigned mismatch = req(w, "PUT", "/drives/rootfs", fmt, "other", w->disk, "true");
	unsigned badid = req(w, "PUT", "/drives/root-fs", fmt, "root-fs", w->disk, "true");
	unsigned missing = req(w, "PUT", "/drives/rootfs", fmt, "rootfs", "/nonexistent", "true");
	unsigned ok = req(w, "PUT", "/drives/rootfs", fmt, "rootfs", w->disk, "true");
	unsigned again = req(w, "PUT", "/drives/rootfs", fmt, "rootfs", w->disk, "false");
	unsigned root2 = req(w, "PUT", "/drives/data", fmt, "data", w->disk, "true");
	unsigned cfg = req(w, "GET", "/vm/config", NULL);

	(void)state;
	run(w);
	assert_fault(w, mismatch, "The id from the path does not match the id from the body!");
	assert_fault(w, badid, "alphanumeric characters and underscores");
	assert_fault(w, missing, "/nonexistent");
	assert_int_equal(w->steps[ok].status, 204);
	assert_int_equal(w->steps[again].status, 204); /* the same id replaces */
	assert_int_equal(w->steps[root2].status, 204); /* rootfs is no longer the root */
	{
		json_t *drives = json_object_get(w->steps[cfg].reply, "drives");
		assert_int_equal(json_array_size(drives), 2);
		assert_string_equal(str(json_array_get(drives, 0), "drive_id"), "rootfs");
		assert_false(
		        json_is_true(json_object_get(json_array_get(drives, 0), "is_root_device")));
	}
	w_free(w);
}

static void test_bad_requests(void **state)
{
	struct world *w = w_new();
	unsigned path = req(w, "GET", "/nope", NULL);
	unsigned getbody = req(w, "GET", "/", "{}");
	unsigned empty = req(w, "PUT", "/boot-source", NULL);
	unsigned json = req(w, "PUT", "/boot-source", "{\"kernel_image_path\": ");
	unsigned big = req(w, "PUT", "/boot-source", "{\"boot_args\": \"%060000d\"}", 0);
	unsigned key = req(w, "PUT", "/boot-source", "{\"kernel\": \"x\"}");
	unsigned early = req(w, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}");
	unsigned action = req(w, "PUT", "/actions", "{\"action_type\": \"Reboot\"}");
	unsigned later = req(w, "PATCH", "/drives/rootfs", "{\"drive_id\": \"rootfs\"}");
	unsigned alive = req(w, "GET", "/", NULL);

	(void)state;
	run(w);
	assert_fault(w, path, "Invalid request method and/or path: GET /nope.");
	assert_fault(w, getbody, "GET request cannot have a body.");
	assert_fault(w, empty, "Empty PUT request.");
	assert_fault(w, json, "An error occurred when deserializing the json body");
	assert_fault(w, big, "is larger than the limit of 51200 allowed by server");
	assert_fault(w, key, "kernel");
	assert_fault(w, early, "not supported before starting the microVM");
	assert_fault(w, action, "unknown variant `Reboot`");
	assert_fault(w, later, "not supported before starting the microVM");
	assert_int_equal(w->steps[alive].status, 200);
	w_free(w);
}

/*
 * PATCH /drives and /network-interfaces: the body is checked as Firecracker's serde structs
 * check it (its messages), then refused before InstanceStart, as Firecracker refuses it.
 */
static void test_patch_devices_before_start(void **state)
{
	struct world *w = w_new();
	unsigned drive = req(w, "PATCH", "/drives/rootfs",
	                     "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\"}", w->disk);
	unsigned net = req(w, "PATCH", "/network-interfaces/eth0",
	                   "{\"iface_id\": \"eth0\", \"rx_rate_limiter\": {\"ops\": {\"size\": 1, "
	                   "\"refill_time\": 100}}}");
	unsigned field = req(w, "PATCH", "/drives/rootfs",
	                     "{\"drive_id\": \"rootfs\", \"is_read_only\": true}");
	unsigned missing = req(w, "PATCH", "/drives/rootfs", "{\"path_on_host\": \"x\"}");
	unsigned type = req(w, "PATCH", "/drives/rootfs", "{\"drive_id\": 1000}");
	unsigned mismatch = req(w, "PATCH", "/drives/rootfs", "{\"drive_id\": \"data\"}");
	unsigned badid = req(w, "PATCH", "/drives/root-fs", "{\"drive_id\": \"root-fs\"}");
	unsigned noid = req(w, "PATCH", "/drives", "{\"drive_id\": \"rootfs\"}");
	unsigned net_mismatch =
	        req(w, "PATCH", "/network-interfaces/eth0", "{\"iface_id\": \"eth1\"}");
	unsigned bytes = req(w, "PATCH", "/network-interfaces/eth0",
	                     "{\"iface_id\": \"eth0\", \"tx_rate_limiter\": {\"bytes\": {}}}");
	unsigned negative = req(w, "PATCH", "/drives/rootfs",
	                        "{\"drive_id\": \"rootfs\", \"rate_limiter\": {\"bandwidth\": "
	                        "{\"size\": -1, \"refill_time\": 100}}}");
	unsigned refill = req(w, "PATCH", "/drives/rootfs",
	                      "{\"drive_id\": \"rootfs\", \"rate_limiter\": {\"ops\": "
	                      "{\"size\": 1}}}");
	unsigned shape = req(w, "PATCH", "/drives/rootfs", "[1]");

	(void)state;
	run(w);
	assert_fault(w, drive, "not supported before starting the microVM.");
	assert_fault(w, net, "not supported before starting the microVM.");
	assert_fault(w, field,
	             "An error occurred when deserializing the json body of a request: "
	             "unknown field `is_read_only`, expected one of `drive_id`, "
	             "`path_on_host`, `rate_limiter`.");
	assert_fault(w, missing, "missing field `drive_id`");
	assert_fault(w, type, "invalid type: integer `1000`, expected a string");
	assert_fault(w, mismatch, "The id from the path does not match the id from the body!");
	assert_fault(w, badid, "alphanumeric characters and underscores");
	assert_fault(w, noid, "The ID cannot be empty.");
	assert_fault(w, net_mismatch,
	             "The id from the path [eth0] does not match the id from the body [eth1]!");
	assert_fault(w, bytes, "unknown field `bytes`, expected `bandwidth` or `ops`");
	assert_fault(w, negative, "invalid value: integer `-1`, expected u64");
	assert_fault(w, refill, "missing field `refill_time`");
	assert_fault(w, shape, "invalid type: sequence, expected struct BlockDeviceUpdateConfig");
	w_free(w);
}

/* GET /vm/config is a config file: flint --dry-run --config-file takes it as it is. */
static void test_vm_config_replays(void **state)
{
	struct world *w = w_new();
	unsigned cfg;
	char path[128], *text, *argv[5];
	static struct child_result res;
	FILE *f;

	(void)state;
	req(w, "PUT", "/boot-source", "{\"kernel_image_path\": \"%s\", \"boot_args\": \"x\"}",
	    w->kernel);
	req(w, "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 64}");
	cfg = req(w, "GET", "/vm/config", NULL);
	run(w);
	assert_int_equal(w->steps[cfg].status, 200);
	assert_true(json_is_array(json_object_get(w->steps[cfg].reply, "drives")));
	snprintf(path, sizeof(path), "%s/saved.json", w->dir);
	text = json_dumps(w->steps[cfg].reply, 0);
	f = fopen(path, "w");
	assert_true(f && text && fputs(text, f) >= 0);
	fclose(f);
	free(text);
	argv[0] = (char *)test_flint_bin(), argv[1] = "--dry-run", argv[2] = "--config-file";
	argv[3] = path, argv[4] = NULL;
	assert_int_equal(test_run(argv, 20, 0, 0, &res), 0);
	/* The saved config is taken; the "kernel" only fails at the loader, as it would at start.
	 */
	assert_null(strstr(res.err, "saved.json: "));
	assert_non_null(strstr(res.err, "not a kernel flint can boot"));
	unlink(path);
	w_free(w);
}

/* PUT /logger takes effect at once: the file gets the next lines, at the level asked. */
static void test_logger(void **state)
{
	struct world *w = w_new();
	char log[128], buf[4096] = "";
	unsigned bad, ok, after;
	FILE *f;

	(void)state;
	snprintf(log, sizeof(log), "%s/flint.log", w->dir);
	bad = req(w, "PUT", "/logger", "{\"log_path\": \"%s/no/such/dir/x.log\"}", w->dir);
	ok = req(w, "PUT", "/logger", "{\"log_path\": \"%s\", \"level\": \"Info\"}", log);
	after = req(w, "PUT", "/nope", "{}"); /* logged at info: must reach the file */
	run(w);
	assert_fault(w, bad, "/no/such/dir/x.log");
	assert_int_equal(w->steps[ok].status, 204);
	assert_fault(w, after, "Invalid request method and/or path");
	log_close();
	f = fopen(log, "r");
	assert_non_null(f);
	assert_true(fread(buf, 1, sizeof(buf) - 1, f) > 0);
	fclose(f);
	assert_non_null(strstr(buf, "API: PUT /nope: 400"));
	unlink(log);
	w_free(w);
}

/* InstanceStart fails (a kernel no loader takes): the reason, then no more pre-boot changes. */
static void test_start_fails(void **state)
{
	struct world *w = w_new();
	unsigned boot = req(w, "PUT", "/boot-source", "{\"kernel_image_path\": \"%s\"}", w->kernel);
	unsigned mc = req(w, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64}");
	unsigned start = req(w, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	unsigned after =
	        req(w, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64}");
	unsigned again = req(w, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");

	(void)state;
	run(w);
	assert_int_equal(w->steps[boot].status, 204);
	assert_int_equal(w->steps[mc].status, 204);
	assert_fault(w, start, "Start microvm error: ");
	assert_fault(w, start, "vmlinux");
	assert_fault(w, after, "not supported after starting the microVM");
	assert_fault(w, again, "not supported after starting the microVM");
	w_free(w);
}

/*
 * The MMDS through the API, as Firecracker answers: GET before any PUT is {}, PATCH needs a
 * PUT first, the limit is 413; mmds-config names configured interfaces, a link-local
 * address, shows in GET /vm/config; is pre-boot only while /mmds works on after the start.
 * Until the net devices answer it, a VM asking for the MMDS does not start, and says why.
 */
static void test_mmds(void **state)
{
	struct world *w = w_new();
	unsigned get0 = req(w, "GET", "/mmds", NULL);
	unsigned patch0 = req(w, "PATCH", "/mmds", "{\"a\": 1}");
	unsigned put = req(w, "PUT", "/mmds", "{\"a\": {\"b\": 1}, \"f\": 12.12}");
	unsigned patch = req(w, "PATCH", "/mmds", "{\"a\": {\"c\": \"x\"}, \"f\": null}");
	unsigned get = req(w, "GET", "/mmds", NULL);
	unsigned big = req(w, "PATCH", "/mmds", "{\"k\": \"%0100d\"}", 0);
	unsigned noif = req(w, "PUT", "/mmds/config", "{\"network_interfaces\": [\"eth0\"]}");
	unsigned net = req(w, "PUT", "/network-interfaces/eth0",
	                   "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\"}");
	unsigned empty = req(w, "PUT", "/mmds/config", "{\"network_interfaces\": []}");
	unsigned ip = req(w, "PUT", "/mmds/config",
	                  "{\"network_interfaces\": [\"eth0\"], \"ipv4_address\": \"10.0.0.1\"}");
	unsigned ok = req(w, "PUT", "/mmds/config",
	                  "{\"version\": \"V2\", \"network_interfaces\": [\"eth0\"], "
	                  "\"ipv4_address\": \"169.254.170.2\"}");
	unsigned bogus = req(w, "PUT", "/mmds/bogus", "{}");
	unsigned vmc = req(w, "GET", "/vm/config", NULL);
	unsigned boot = req(w, "PUT", "/boot-source", "{\"kernel_image_path\": \"%s\"}", w->kernel);
	unsigned start = req(w, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	unsigned cfg_after = req(w, "PUT", "/mmds/config", "{\"network_interfaces\": [\"eth0\"]}");
	unsigned put_after = req(w, "PUT", "/mmds", "[\"any\", \"JSON\"]");
	unsigned get_after = req(w, "GET", "/mmds", NULL);
	json_t *m;

	(void)state;
	run(w);
	assert_int_equal(w->steps[get0].status, 200);
	assert_true(json_is_object(w->steps[get0].reply) &&
	            !json_object_size(w->steps[get0].reply));
	assert_fault(w, patch0, "MMDS error: The MMDS data store is not initialized.");
	assert_int_equal(w->steps[put].status, 204);
	assert_int_equal(w->steps[patch].status, 204);
	assert_int_equal(w->steps[get].status, 200);
	m = w->steps[get].reply;
	assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "a"), "b")), 1);
	assert_string_equal(str(json_object_get(m, "a"), "c"), "x");
	assert_null(json_object_get(m, "f"));
	assert_int_equal(w->steps[big].status, 413);
	assert_string_equal(str(w->steps[big].reply, "fault_message"),
	                    "MMDS limit exceeded error: The MMDS patch request doesn't fit.");
	assert_fault(w, noif, "does not correspond to any existing network interface");
	assert_int_equal(w->steps[net].status, 204);
	assert_fault(w, empty, "allow forwarding MMDS requests is empty");
	assert_fault(w, ip, "The MMDS IPv4 address is not link local.");
	assert_int_equal(w->steps[ok].status, 204);
	assert_fault(w, bogus, "Unrecognized PUT request path `bogus`.");
	m = json_object_get(w->steps[vmc].reply, "mmds-config");
	assert_string_equal(str(m, "version"), "V2");
	assert_string_equal(str(m, "ipv4_address"), "169.254.170.2");
	assert_string_equal(
	        json_string_value(json_array_get(json_object_get(m, "network_interfaces"), 0)),
	        "eth0");
	assert_true(json_is_false(json_object_get(m, "imds_compat")));
	assert_int_equal(w->steps[boot].status, 204);
	/* The start gets past mmds-config: it fails on the test's kernel, a blank file. */
	assert_fault(w, start, "not a kernel flint can boot");
	assert_fault(w, cfg_after, "not supported after starting the microVM");
	assert_int_equal(w->steps[put_after].status, 204);
	assert_int_equal(w->steps[get_after].status,
	                 200); /* an array: not the test's JSON object */
	m = mmds_get(w->mmds);
	assert_true(json_is_array(m));
	json_decref(m);
	w_free(w);
}

/*
 * The flint binary with --metadata and --mmds-size-limit: the file is the store's first
 * content (GET /mmds answers it, written as Firecracker writes it), PATCH merges into it
 * within the limit, and the limit is the command line's.
 */
static void test_metadata_in_store(void **state)
{
	static const char text[] = "{\"b\": 12.12, \"a\": [1.0]}";
	char dir[] = "/tmp/flint-meta-XXXXXX", sock[64], meta[64];
	struct http_reply r;
	int fd, status;
	pid_t pid;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/s", dir);
	snprintf(meta, sizeof(meta), "%s/m.json", dir);
	fd = open(meta, O_CREAT | O_WRONLY, 0600);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1), dup2(null, 2);
		execl(test_flint_bin(), "flint", "--api-sock", sock, "--metadata", meta,
		      "--mmds-size-limit", "30", (char *)NULL);
		_exit(127);
	}
	close(http_connect(sock, 5000));
	assert_int_equal(http_request(sock, "GET", "/mmds", NULL, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"a\":[1.0],\"b\":12.12}");
	free(r.body);
	assert_int_equal(http_request(sock, "PATCH", "/mmds", "{\"c\": \"0123456789\"}", &r), 0);
	assert_int_equal(r.status, 413); /* 39 bytes, the limit 30 */
	free(r.body);
	assert_int_equal(http_request(sock, "PATCH", "/mmds", "{\"b\": null, \"c\": 1}", &r), 0);
	assert_int_equal(r.status, 204);
	free(r.body);
	assert_int_equal(http_request(sock, "GET", "/mmds", NULL, &r), 0);
	assert_string_equal(r.body, "{\"a\":[1.0],\"c\":1}");
	free(r.body);
	kill(pid, SIGTERM);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 143);
	unlink(meta);
	rmdir(dir);
}

static uint64_t num(json_t *line, const char *section, const char *key)
{
	json_t *v = json_object_get(json_object_get(line, section), key);

	if (!json_is_integer(v))
		fail_msg("%s.%s: missing", section, key);
	return (uint64_t)json_integer_value(v);
}

/*
 * PUT /metrics before the start, as Firecracker: checked, opened at once (a FIFO needs no
 * reader), once only; FlushMetrics and GET /flint/iommu wait for a running VM. A line
 * flushed then (as FlushMetrics does once the VM runs) counts the requests.
 */
static void test_metrics(void **state)
{
	struct world *w = w_new();
	static char line[65536];
	unsigned early, iommu, missing, bad, ok, again, cfg, boot, start;
	char why[160];
	json_t *o;
	ssize_t n;
	int rd;

	(void)state;
	snprintf(w->metrics, sizeof(w->metrics), "%s/metrics.fifo", w->dir);
	assert_int_equal(mkfifo(w->metrics, 0600), 0);
	early = req(w, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}");
	iommu = req(w, "GET", "/flint/iommu", NULL);
	missing = req(w, "PUT", "/metrics", "{}");
	bad = req(w, "PUT", "/metrics", "{\"metrics_path\": \"%s/no/such/m.json\"}", w->dir);
	ok = req(w, "PUT", "/metrics",
	         "{\"metrics_path\": \"%s\", \"emit_id\": true, "
	         "\"properties\": {\"b\": \"2\", \"a\": \"1\"}}",
	         w->metrics);
	again = req(w, "PUT", "/metrics", "{\"metrics_path\": \"%s\"}", w->disk);
	cfg = req(w, "GET", "/vm/config", NULL);
	boot = req(w, "PUT", "/boot-source", "{\"kernel_image_path\": \"%s\"}", w->kernel);
	start = req(w, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	run(w);
	assert_fault(w, early,
	             "The requested operation is not supported before starting the "
	             "microVM.");
	assert_fault(w, iommu, "not supported before starting the microVM");
	assert_fault(w, missing, "PUT /metrics: metrics_path: required key is missing");
	assert_fault(w, bad,
	             "Metrics error: Cannot initialize the metrics system due to bad "
	             "user input: ");
	assert_fault(w, bad, "/no/such/m.json: No such file or directory");
	assert_int_equal(w->steps[ok].status, 204);
	assert_fault(w, again,
	             "Metrics error: Cannot initialize the metrics system due to bad "
	             "user input: Reinitialization of metrics not allowed.");
	assert_string_equal(str(json_object_get(w->steps[cfg].reply, "metrics"), "metrics_path"),
	                    w->metrics);
	assert_int_equal(w->steps[boot].status, 204);
	/* The start fails at the loader, not at metrics configured a second time. */
	assert_fault(w, start, "Start microvm error: ");
	assert_null(strstr(str(w->steps[start].reply, "fault_message"), "Reinitialization"));
	/* A line, as FlushMetrics writes it: the API's counts, its id and properties. */
	rd = open(w->metrics, O_RDONLY | O_NONBLOCK);
	assert_true(rd >= 0);
	assert_int_equal(metrics_flush(vmm_metrics(w->vmm), why, sizeof(why)), 0);
	n = read(rd, line, sizeof(line) - 1);
	close(rd);
	assert_true(n > 0 && line[n - 1] == '\n');
	line[n] = 0;
	assert_ptr_equal(strchr(line, '\n'), line + n - 1); /* one line */
	assert_non_null(strstr(line, "\"id\":\"t1\",\"properties\":{\"a\":\"1\",\"b\":\"2\"}"));
	o = json_loads(line, 0, NULL);
	assert_non_null(o);
	assert_int_equal(num(o, "put_api_requests", "metrics_count"), 4);
	assert_int_equal(num(o, "put_api_requests", "metrics_fails"), 3);
	assert_int_equal(num(o, "put_api_requests", "actions_count"), 2);
	assert_int_equal(num(o, "put_api_requests", "actions_fails"), 2);
	assert_int_equal(num(o, "put_api_requests", "boot_source_count"), 1);
	assert_int_equal(num(o, "put_api_requests", "boot_source_fails"), 0);
	assert_int_equal(num(o, "get_api_requests", "instance_info_count"), 0);
	assert_int_equal(num(o, "logger", "missed_metrics_count"), 0);
	assert_null(json_object_get(o, "api_server")); /* no jailer times given */
	assert_null(json_object_get(o, "vcpu"));       /* no VM ran */
	json_decref(o);
	w_free(w);
}

/* --metrics-path configured them: PUT /metrics is a second time; a bad one stops vmm_new. */
static void test_metrics_flag(void **state)
{
	struct world *w = w_new_with("flag.json");
	unsigned put = req(w, "PUT", "/metrics", "{\"metrics_path\": \"%s\"}", w->disk);
	struct run_opts o = { .metrics_path = "/nonexistent-dir/m.json" };
	struct vmm *m = NULL;
	struct stat st;

	(void)state;
	run(w);
	assert_fault(w, put, "Reinitialization of metrics not allowed.");
	assert_int_equal(stat(w->metrics, &st), 0); /* created when the process started */
	assert_true(S_ISREG(st.st_mode));
	w_free(w);
	assert_int_equal(vmm_new(&m, &o), FLINT_EXIT_USAGE);
	assert_null(m);
}

static atomic_bool loop_ended;

static void stop_loop_99(void *arg)
{
	loop_stop(arg, 99);
}

/* The queued requests, then SIGTERM; a loop still running 5 s later is stopped with 99. */
static void *send_sigterm(void *arg)
{
	struct world *w = arg;

	for (unsigned i = 0; i < w->n; i++)
		exchange(w->sock, &w->steps[i]);
	kill(getpid(), SIGTERM);
	for (int i = 0; i < 500 && !atomic_load(&loop_ended); i++)
		usleep(10000);
	if (!atomic_load(&loop_ended))
		loop_post(vmm_loop(w->vmm), stop_loop_99, vmm_loop(w->vmm));
	return NULL;
}

/*
 * A start that fails once the VM is being built (no /dev/kvm here; on a KVM host, the TAP
 * that does not exist): SIGTERM still ends flint, with 143.
 */
static void test_signal_after_failed_start(void **state)
{
	struct world *w = w_new();
	char *k = tiny_elf_file("vmlinux-ok", (const uint8_t[]){ 0xeb, 0xfe }, 2);
	unsigned start;
	pthread_t t;
	int code;

	(void)state;
	req(w, "PUT", "/boot-source", "{\"kernel_image_path\": \"%s\"}", k);
	req(w, "PUT", "/network-interfaces/eth0",
	    "{\"iface_id\": \"eth0\", \"host_dev_name\": \"flint-no-such-tap\"}");
	start = req(w, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	atomic_store(&loop_ended, false);
	assert_int_equal(pthread_create(&t, NULL, send_sigterm, w), 0);
	code = vmm_wait(w->vmm);
	atomic_store(&loop_ended, true);
	pthread_join(t, NULL);
	assert_int_equal(code, 143);
	assert_fault(w, start, "Start microvm error: ");
	free(k);
	w_free(w);
}

/* Methods Firecracker does not serve get its 400, not evhttp's 501 page; a log FIFO needs no
 * reader. */
static void test_methods_and_log_fifo(void **state)
{
	struct world *w = w_new();
	char fifo[128];
	unsigned post, head, logger;

	(void)state;
	snprintf(fifo, sizeof(fifo), "%s/log.fifo", w->dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	post = req(w, "POST", "/actions", "{\"action_type\": \"InstanceStart\"}");
	head = req(w, "OPTIONS", "/", NULL);
	logger = req(w, "PUT", "/logger", "{\"log_path\": \"%s\"}", fifo);
	run(w);
	assert_fault(w, post, "Invalid request method and/or path: POST /actions.");
	assert_fault(w, head, "Invalid request method and/or path: OPTIONS /.");
	assert_int_equal(w->steps[logger].status, 204);
	log_close();
	unlink(fifo);
	w_free(w);
}

/* The socket: 0600; a live one refused; a stale one replaced; a plain file refused. */
static void test_socket_file(void **state)
{
	struct world *w = w_new();
	struct api *second = NULL;
	struct api_params p = { .sock_path = w->sock, .vmm = w->vmm, .cfg = &w->cfg };
	char plain[128];
	struct stat st;
	int fd;

	(void)state;
	assert_int_equal(stat(w->sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(api_open(&second, &p), -EADDRINUSE);
	assert_null(second);
	/* A stale socket: bound, then its owner gone. */
	snprintf(plain, sizeof(plain), "%s/stale.sock", w->dir);
	{
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		strcpy(a.sun_path, plain);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
		close(fd);
	}
	p.sock_path = plain;
	assert_int_equal(api_open(&second, &p), 0);
	api_close(second);
	fd = open(plain, O_CREAT | O_WRONLY, 0600);
	close(fd);
	assert_int_equal(api_open(&second, &p), -EEXIST);
	unlink(plain);
	w_free(w);
}

/* A client that connects and says nothing holds up nobody else. */
static void test_silent_client(void **state)
{
	struct world *w = w_new();
	int idle = http_connect(w->sock, 0);
	unsigned a = req(w, "GET", "/", NULL);

	(void)state;
	assert_true(idle >= 0);
	run(w);
	assert_int_equal(w->steps[a].status, 200);
	close(idle);
	w_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_instance_and_version),
		cmocka_unit_test(test_machine_config),
		cmocka_unit_test(test_drives),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_patch_devices_before_start),
		cmocka_unit_test(test_start_fails),
		cmocka_unit_test(test_mmds),
		cmocka_unit_test(test_metadata_in_store),
		cmocka_unit_test(test_logger),
		cmocka_unit_test(test_vm_config_replays),
		cmocka_unit_test(test_signal_after_failed_start),
		cmocka_unit_test(test_methods_and_log_fifo),
		cmocka_unit_test(test_socket_file),
		cmocka_unit_test(test_silent_client),
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_metrics_flag),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
