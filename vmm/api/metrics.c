/* The API and the metrics: see vmm/api/metrics.h. */
#include "vmm/api/metrics.h"
#include "vmm/base/clock.h"
#include "vmm/base/log.h"
#include "vmm/config/config.h"
#include "vmm/config/sections.h"
#include "vmm/metrics.h"
#include "vmm/vm_metrics.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The requests Firecracker counts that flint serves: method, path, its section and name. */
#define DEEPER 0x100 /* in ntok: paths below res too (/mmds/config is Firecracker's mmds) */
static const struct counted {
	int method;
	const char *res; /* tok[0]; "" for GET / */
	unsigned ntok;
	const char *section;
	const char *count, *fails; /* fails NULL: Firecracker counts no failed GETs */
} counted[] = {
	{ EVHTTP_REQ_GET, "", 0, "get_api_requests", "instance_info_count", NULL },
	{ EVHTTP_REQ_GET, "machine-config", 1, "get_api_requests", "machine_cfg_count", NULL },
	{ EVHTTP_REQ_GET, "version", 1, "get_api_requests", "vmm_version_count", NULL },
	{ EVHTTP_REQ_GET, "mmds", 1 | DEEPER, "get_api_requests", "mmds_count", NULL },
	{ EVHTTP_REQ_PUT, "mmds", 1 | DEEPER, "put_api_requests", "mmds_count", "mmds_fails" },
	{ EVHTTP_REQ_PATCH, "mmds", 1 | DEEPER, "patch_api_requests", "mmds_count", "mmds_fails" },
	{ EVHTTP_REQ_PUT, "actions", 1, "put_api_requests", "actions_count", "actions_fails" },
	{ EVHTTP_REQ_PUT, "boot-source", 1, "put_api_requests", "boot_source_count",
	  "boot_source_fails" },
	{ EVHTTP_REQ_PUT, "drives", 2, "put_api_requests", "drive_count", "drive_fails" },
	{ EVHTTP_REQ_PUT, "logger", 1, "put_api_requests", "logger_count", "logger_fails" },
	{ EVHTTP_REQ_PUT, "machine-config", 1, "put_api_requests", "machine_cfg_count",
	  "machine_cfg_fails" },
	{ EVHTTP_REQ_PUT, "metrics", 1, "put_api_requests", "metrics_count", "metrics_fails" },
	{ EVHTTP_REQ_PUT, "network-interfaces", 2, "put_api_requests", "network_count",
	  "network_fails" },
	{ EVHTTP_REQ_PUT, "vsock", 1, "put_api_requests", "vsock_count", "vsock_fails" },
	{ EVHTTP_REQ_PATCH, "drives", 2, "patch_api_requests", "drive_count", "drive_fails" },
	{ EVHTTP_REQ_PATCH, "machine-config", 1, "patch_api_requests", "machine_cfg_count",
	  "machine_cfg_fails" },
	{ EVHTTP_REQ_PATCH, "network-interfaces", 2, "patch_api_requests", "network_count",
	  "network_fails" },
};
#define NCOUNTED (sizeof(counted) / sizeof(counted[0]))

struct api_counts {
	uint64_t count[NCOUNTED], fails[NCOUNTED];
	bool has_startup, has_startup_cpu;
	uint64_t startup_us, startup_cpu_us;
};

/* --- counting ----------------------------------------------------------------------------- */

void api_count(struct api *a, const struct api_request *r)
{
	const char *res = r->ntok ? r->tok[0] : "";

	if (!a->counts || !r->status)
		return;
	for (size_t i = 0; i < NCOUNTED; i++)
		if (counted[i].method == r->method &&
		    ((counted[i].ntok & ~DEEPER) == r->ntok ||
		     (counted[i].ntok & DEEPER && r->ntok > (counted[i].ntok & ~DEEPER))) &&
		    !strcmp(counted[i].res, res)) {
			a->counts->count[i]++;
			a->counts->fails[i] += r->status >= 400;
			return;
		}
}

static void api_source(void *ctx, struct metrics_line *l)
{
	const struct api_counts *c = ((struct api *)ctx)->counts;

	if (c->has_startup)
		metrics_gauge(l, "api_server", "process_startup_time_us", c->startup_us);
	if (c->has_startup_cpu)
		metrics_gauge(l, "api_server", "process_startup_time_cpu_us", c->startup_cpu_us);
	for (size_t i = 0; i < NCOUNTED; i++) {
		metrics_counter(l, counted[i].section, counted[i].count, c->count[i]);
		if (counted[i].fails)
			metrics_counter(l, counted[i].section, counted[i].fails, c->fails[i]);
	}
}

static uint64_t since(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

/*
 * Firecracker's ProcessTimeReporter, once the API serves: the time since the jailer's
 * --start-time-us (CLOCK_MONOTONIC), and the CPU time since --start-time-cpu-us plus the
 * jailer's own (--parent-cpu-time-us). Only what the jailer said: no times, no keys.
 */
static void startup_times(struct api_counts *c, const struct api_params *p)
{
	struct timespec ts;

	if (p->start_time.set) {
		c->has_startup = true;
		c->startup_us = since((uint64_t)clock_now_ns() / 1000, p->start_time.us);
	}
	if (p->start_time_cpu.set && clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0) {
		c->has_startup_cpu = true;
		c->startup_cpu_us =
		        since((uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000,
		              p->start_time_cpu.us) +
		        (p->parent_cpu_time.set ? p->parent_cpu_time.us : 0);
	}
}

int api_metrics_open(struct api *a, const struct api_params *p)
{
	a->counts = calloc(1, sizeof(*a->counts));
	if (!a->counts || metrics_add_source(vmm_metrics(a->vmm), api_source, a)) {
		free(a->counts);
		a->counts = NULL;
		return -ENOMEM;
	}
	startup_times(a->counts, p);
	return 0;
}

void api_metrics_close(struct api *a)
{
	if (!a->counts)
		return;
	metrics_remove_source(vmm_metrics(a->vmm), api_source, a);
	free(a->counts);
	a->counts = NULL;
}

/* --- the resources ------------------------------------------------------------------------ */

#define INIT_FAIL "Metrics error: Cannot initialize the metrics system due to bad user input: "

void api_put_metrics(struct api *a, struct api_request *r)
{
	struct vm_config scratch;
	char err[1024], why[160];
	struct cfg_ctx c = { r->name, err, sizeof(err), NULL };
	struct metrics_params p;
	int e;

	config_init(&scratch);
	e = cfg_metrics(&c, r->body, "", &scratch);
	if (e) {
		api_reply_fault(r, "%s", e == -ENOMEM ? "out of memory" : err);
		config_free(&scratch);
		return;
	}
	p = (struct metrics_params){ scratch.metrics_path, scratch.metrics_emit_id, a->id,
		                     scratch.metrics_properties };
	e = metrics_configure(vmm_metrics(a->vmm), &p, why, sizeof(why));
	if (e == -EALREADY)
		api_reply_fault(r, INIT_FAIL "%s", why);
	else if (e)
		api_reply_fault(r, INIT_FAIL "%s: %s", MSG_ESC(p.path), why);
	else if (json_object_set(a->doc, "metrics", r->body))
		api_reply_fault(r, "out of memory");
	else
		api_reply_empty(r);
	config_free(&scratch);
}

/*
 * The document keeps the metrics section (GET /vm/config replays it), which PUT /metrics
 * applied already; configured again at the start it would be refused as a second time.
 */
void api_metrics_before_start(struct api *a)
{
	if (!json_object_get(a->doc, "metrics"))
		return;
	free(a->cfg->metrics_path);
	free(a->cfg->metrics_properties);
	a->cfg->metrics_path = a->cfg->metrics_properties = NULL;
	a->cfg->metrics_emit_id = false;
}

void api_flush_metrics(struct api *a, struct api_request *r)
{
	struct metrics *m = vmm_metrics(a->vmm);
	char why[160];

	if (metrics_flush(m, why, sizeof(why)))
		api_reply_fault(
		        r, "Internal VMM error: Metrics error: Failed to write metrics: %s: %s",
		        MSG_ESC(metrics_path(m)), why);
	else
		api_reply_empty(r);
}

void api_get_iommu(struct api *a, struct api_request *r)
{
	const struct resolver_stats *s = vmm_iommu_stats(a->vmm);

	if (!s)
		api_reply_fault(r,
		                "No device is in fault mode (flint.vfio-devices with dma_mode "
		                "\"fault\", or \"auto\" on a device with PRI): there are no IOMMU "
		                "fault counters.");
	else
		api_reply_json(r, vm_metrics_iommu_json(s));
}
