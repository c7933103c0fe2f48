/* The VM's counters as metrics sections: see vm_metrics.h. */
#include "vmm/vm_metrics.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/net.h"
#include "devices/virtio/rng.h"
#include "devices/virtio/vsock.h"
#include "vmm/mmds/mmds.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- vCPUs -------------------------------------------------------------------------------- */

static const struct {
	const char *key;
	size_t off;
} vcpu_keys[] = {
	{ "exit_io_in", offsetof(struct vcpu_counters, exit_io_in) },
	{ "exit_io_out", offsetof(struct vcpu_counters, exit_io_out) },
	{ "exit_mmio_read", offsetof(struct vcpu_counters, exit_mmio_read) },
	{ "exit_mmio_write", offsetof(struct vcpu_counters, exit_mmio_write) },
	{ "failures", offsetof(struct vcpu_counters, failures) },
};
#define NVCPU_KEYS (sizeof(vcpu_keys) / sizeof(vcpu_keys[0]))

static void add_vcpus(struct metrics_line *l, const struct vcpu *v, unsigned n)
{
	for (size_t k = 0; k < NVCPU_KEYS; k++) {
		uint64_t total = 0;
		for (unsigned i = 0; i < n; i++) {
			const _Atomic uint64_t *c =
			        (const void *)((const char *)&v[i].counters + vcpu_keys[k].off);
			total += atomic_load_explicit(c, memory_order_relaxed);
		}
		metrics_counter(l, "vcpu", vcpu_keys[k].key, total);
	}
}

/* --- virtio devices ----------------------------------------------------------------------- */

#define DEV_MAX_KEYS 8
#define NKINDS       (VIRTIO_KIND_RNG + 1)

/*
 * Per kind: Firecracker's section names and, for what it counts too, its keys; flint's own
 * name (errors, *_dropped, tx_tap_event_count) for what it does not have.
 */
static const struct kind_keys {
	const char *aggregate; /* "block": the sum over the kind's devices */
	const char *prefix;    /* "block_": one section per device, with its id; NULL: none */
	const char *keys[DEV_MAX_KEYS];
	unsigned n;
} kinds[] = {
	[VIRTIO_KIND_DRIVE] = { "block",
	                        "block_",
	                        { "read_count", "write_count", "flush_count",
	                          "rate_limiter_throttled_events", "errors" },
	                        5 },
	[VIRTIO_KIND_NET] = { "net",
	                      "net_",
	                      { "rx_bytes_count", "rx_packets_count", "rx_tap_event_count",
	                        "rx_dropped", "tx_bytes_count", "tx_packets_count",
	                        "tx_tap_event_count", "tx_dropped" },
	                      8 },
	[VIRTIO_KIND_VSOCK] = { "vsock", NULL, { "rx_packets_count", "tx_packets_count" }, 2 },
	[VIRTIO_KIND_RNG] = { "entropy",
	                      NULL,
	                      { "entropy_bytes", "entropy_rate_limiter_throttled" },
	                      2 },
};

/* The device's counters in the order of its kind's keys. Under the device's lock. */
static void read_device(const struct vmm_virtio_slot *s, uint64_t *v)
{
	const struct virtio_blk *b = (const void *)s->dev;
	const struct virtio_net *n = (const void *)s->dev;
	const struct virtio_vsock *vs = (const void *)s->dev;
	const struct virtio_rng *r = (const void *)s->dev;

	switch (s->kind) {
	case VIRTIO_KIND_DRIVE:
		memcpy(v, (uint64_t[]){ b->reads, b->writes, b->flushes, b->throttled, b->errors },
		       5 * sizeof(*v));
		break;
	case VIRTIO_KIND_NET:
		memcpy(v,
		       (uint64_t[]){ n->rx_bytes, n->rx_packets, n->rx_wakeups, n->rx_dropped,
		                     n->tx_bytes, n->tx_packets, n->tx_wakeups, n->tx_dropped },
		       8 * sizeof(*v));
		break;
	case VIRTIO_KIND_VSOCK:
		v[0] = vs->rx_packets;
		v[1] = vs->tx_packets;
		break;
	case VIRTIO_KIND_RNG:
		v[0] = r->bytes;
		v[1] = r->throttled;
		break;
	}
}

static const char *device_id(const struct vmm_virtio_slot *s, const struct vm_config *cfg)
{
	return s->kind == VIRTIO_KIND_DRIVE ? cfg->drives[s->index].id : cfg->nets[s->index].id;
}

/* "block_<drive_id>", "net_<iface_id>". */
static void add_device(struct metrics_line *l, const struct vmm_virtio_slot *s,
                       const struct vm_config *cfg, const uint64_t *v)
{
	const struct kind_keys *k = &kinds[s->kind];
	const char *id = device_id(s, cfg);
	char *name = malloc(strlen(k->prefix) + strlen(id) + 1);

	if (!name)
		return; /* this device's own section only; the sums still count it */
	strcpy(name, k->prefix);
	strcat(name, id);
	for (unsigned i = 0; i < k->n; i++)
		metrics_counter(l, name, k->keys[i], v[i]);
	free(name);
}

static void add_virtio(struct metrics_line *l, struct vmm_virtio *vv, const struct vm_config *cfg)
{
	uint64_t v[LAYOUT_VIRTIO_SLOTS][DEV_MAX_KEYS], sum[NKINDS][DEV_MAX_KEYS] = { { 0 } };
	bool present[NKINDS] = { false };

	for (unsigned i = 0; i < vv->n; i++) {
		struct vmm_virtio_slot *s = &vv->slots[i];
		if (!s->bound || !s->dev)
			continue;
		virtio_dev_lock(s->dev); /* a vCPU's reset changes some of them */
		read_device(s, v[i]);
		virtio_dev_unlock(s->dev);
		present[s->kind] = true;
		for (unsigned k = 0; k < kinds[s->kind].n; k++)
			sum[s->kind][k] += v[i][k];
	}
	/* Firecracker's order: the sum of a kind, then each of its devices. */
	for (unsigned kind = 0; kind < NKINDS; kind++) {
		if (!present[kind])
			continue;
		for (unsigned k = 0; k < kinds[kind].n; k++)
			metrics_counter(l, kinds[kind].aggregate, kinds[kind].keys[k],
			                sum[kind][k]);
		for (unsigned i = 0; i < vv->n && kinds[kind].prefix; i++)
			if (vv->slots[i].bound && vv->slots[i].dev && vv->slots[i].kind == kind)
				add_device(l, &vv->slots[i], cfg, v[i]);
	}
}

/* --- the MMDS ----------------------------------------------------------------------------- */

/*
 * Firecracker's "mmds" section: the store's token counters and the sum of the net devices'
 * stacks. Firecracker's TCP handler errors are flint's malformed, bad-checksum and fragment
 * drops; flint makes a frame only into a buffer that takes it, so tx_count is tx_frames and
 * tx_errors stays 0.
 */
static void add_mmds(struct metrics_line *l, const struct mmds *store, struct vmm_virtio *vv)
{
	static const struct mmds_stats none; /* no store was made: it answered nothing */
	const struct mmds_stats *ms = store ? mmds_stats(store) : &none;
	struct net_mmds_stats t = { 0 };

	for (unsigned i = 0; i < vv->n; i++) {
		struct vmm_virtio_slot *s = &vv->slots[i];
		const struct virtio_net *n = (const void *)s->dev;
		const struct net_mmds_stats *x;
		if (!s->bound || !s->dev || s->kind != VIRTIO_KIND_NET || !n->mmds)
			continue;
		virtio_dev_lock(s->dev); /* the stack counts under it */
		x = net_mmds_stats(n->mmds);
		t.rx_frames += x->rx_frames;
		t.rx_malformed += x->rx_malformed;
		t.rx_bad_eth += x->rx_bad_eth;
		t.rx_bad_csum += x->rx_bad_csum;
		t.rx_fragments += x->rx_fragments;
		t.rx_unusual += x->rx_unusual;
		t.rx_segments += x->rx_segments;
		t.tx_frames += x->tx_frames;
		t.tx_bytes += x->tx_bytes;
		t.conns_opened += x->conns_opened;
		t.conns_closed += x->conns_closed;
		t.conns_reset += x->conns_reset;
		virtio_dev_unlock(s->dev);
	}
	metrics_counter(l, "mmds", "rx_accepted", t.rx_frames);
	metrics_counter(l, "mmds", "rx_accepted_err",
	                t.rx_malformed - t.rx_bad_eth + t.rx_bad_csum + t.rx_fragments);
	metrics_counter(l, "mmds", "rx_accepted_unusual", t.rx_unusual);
	metrics_counter(l, "mmds", "rx_bad_eth", t.rx_bad_eth);
	metrics_counter(l, "mmds", "rx_invalid_token", ms->invalid_token);
	metrics_counter(l, "mmds", "rx_no_token", ms->no_token);
	metrics_counter(l, "mmds", "rx_count", t.rx_segments);
	metrics_counter(l, "mmds", "tx_bytes", t.tx_bytes);
	metrics_counter(l, "mmds", "tx_count", t.tx_frames);
	metrics_counter(l, "mmds", "tx_errors", 0);
	metrics_counter(l, "mmds", "tx_frames", t.tx_frames);
	metrics_counter(l, "mmds", "connections_created", t.conns_opened);
	metrics_counter(l, "mmds", "connections_destroyed", t.conns_closed + t.conns_reset);
}

/* --- the fault resolver ------------------------------------------------------------------- */

static const struct {
	const char *key;
	size_t off;
} iommu_keys[] = {
	{ "faults", offsetof(struct resolver_stats, faults) },
	{ "groups", offsetof(struct resolver_stats, groups) },
	{ "invalid_answers", offsetof(struct resolver_stats, invalid) },
	{ "refused_answers", offsetof(struct resolver_stats, refused) },
	{ "mapped_chunks", offsetof(struct resolver_stats, chunks_mapped) },
	{ "mapped_bytes", offsetof(struct resolver_stats, bytes_mapped) },
	{ "prefetched_bytes", offsetof(struct resolver_stats, prefetched) },
	{ "unmapped_chunks", offsetof(struct resolver_stats, chunks_unmapped) },
	{ "unmapped_bytes", offsetof(struct resolver_stats, bytes_unmapped) },
	{ "refaults", offsetof(struct resolver_stats, refaults) },
	{ "cap_waits", offsetof(struct resolver_stats, cap_waits) },
};
#define NIOMMU_KEYS (sizeof(iommu_keys) / sizeof(iommu_keys[0]))

static uint64_t stat_at(const struct resolver_stats *s, size_t off)
{
	return *(const uint64_t *)((const char *)s + off);
}

/* What the resolver keeps mapped, and so pinned, now: every mapping it made, less the cap's. */
static uint64_t pinned(const struct resolver_stats *s)
{
	return s->bytes_mapped - s->bytes_unmapped;
}

uint64_t vm_metrics_percentile(const uint64_t *b, unsigned n, unsigned pct)
{
	uint64_t total = 0, seen = 0, rank;

	for (unsigned i = 0; i < n; i++)
		total += b[i];
	if (!total || !n)
		return 0;
	rank = total / 100 * pct + (total % 100 * pct + 99) / 100; /* ceil, no overflow */
	for (unsigned i = 0; i < n; i++) {
		seen += b[i];
		if (seen >= rank)
			return 1ULL << i;
	}
	return 1ULL << (n - 1);
}

/* Latency since the last line: percentiles of the groups answered since, none without any. */
static void add_iommu(struct metrics_line *l, const struct resolver_stats *s)
{
	uint64_t lat[RESOLVER_LAT_BUCKETS];

	for (size_t k = 0; k < NIOMMU_KEYS; k++)
		metrics_counter(l, "iommu", iommu_keys[k].key, stat_at(s, iommu_keys[k].off));
	metrics_gauge(l, "iommu", "pinned_bytes", pinned(s));
	metrics_delta(l, "iommu.latency_us", s->latency_us, RESOLVER_LAT_BUCKETS, lat);
	if (!vm_metrics_percentile(lat, RESOLVER_LAT_BUCKETS, 50))
		return;
	metrics_gauge(l, "iommu", "latency_p50_us",
	              vm_metrics_percentile(lat, RESOLVER_LAT_BUCKETS, 50));
	metrics_gauge(l, "iommu", "latency_p99_us",
	              vm_metrics_percentile(lat, RESOLVER_LAT_BUCKETS, 99));
}

json_t *vm_metrics_iommu_json(const struct resolver_stats *s)
{
	json_t *o = json_object();
	int e = !o;

	for (size_t k = 0; k < NIOMMU_KEYS && !e; k++)
		e = json_object_set_new(o, iommu_keys[k].key,
		                        json_integer((json_int_t)stat_at(s, iommu_keys[k].off)));
	if (!e)
		e = json_object_set_new(o, "pinned_bytes", json_integer((json_int_t)pinned(s)));
	if (!e && s->groups)
		e = json_object_set_new(o, "latency_p50_us",
		                        json_integer((json_int_t)vm_metrics_percentile(
		                                s->latency_us, RESOLVER_LAT_BUCKETS, 50))) ||
		    json_object_set_new(o, "latency_p99_us",
		                        json_integer((json_int_t)vm_metrics_percentile(
		                                s->latency_us, RESOLVER_LAT_BUCKETS, 99)));
	if (e) {
		json_decref(o);
		return NULL;
	}
	return o;
}

void vm_metrics_add(struct metrics_line *l, const struct vm_metrics_parts *p)
{
	add_vcpus(l, p->vcpus, p->nvcpus);
	add_virtio(l, p->virtio, p->cfg);
	if (p->iommu)
		add_iommu(l, p->iommu);
	if (p->mmds || p->mmds_unmade)
		add_mmds(l, p->mmds, p->virtio);
}
