/*
 * The MMDS (microVM metadata service) as Firecracker keeps and serves it: a JSON data store
 * the API replaces (PUT /mmds), merges into (PATCH /mmds, RFC 7396) and reads (GET /mmds),
 * and the guest reads over HTTP at an IPv4 link-local address (169.254.169.254 unless
 * configured), V1 (no token needed) or V2 (a session token from PUT /latest/api/token
 * first). The guest's side is mmds_serve(): the `serve` of devices/virtio/net_mmds.h, which
 * frames HTTP/1.x requests out of a TCP connection's bytes and answers them from the store.
 *
 * Knows no VM: the VM lifecycle hands mmds_net()'s responder to the net devices, the API
 * calls the rest. Threading: the loop thread only (the API and the net devices' stack both
 * run there), so nothing here locks.
 */
#ifndef FLINT_MMDS_H
#define FLINT_MMDS_H

#include "devices/virtio/net_mmds.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Firecracker's: the default address, the token lifetimes (seconds), the token's path. */
#define MMDS_DEFAULT_IPV4                                                                          \
	{                                                                                          \
		169, 254, 169, 254                                                                 \
	}
#define MMDS_TOKEN_TTL_MIN 1
#define MMDS_TOKEN_TTL_MAX 21600
#define MMDS_TOKEN_PATH    "/latest/api/token"
/*
 * The most a guest request may take, head and body: Firecracker's receive buffer
 * (RCV_BUF_MAX_SIZE, 2500 bytes). A request that does not end within it is refused.
 */
#define MMDS_HTTP_MAX_REQUEST 2500

enum mmds_version { MMDS_V1, MMDS_V2 };

/* mmds-config (PUT /mmds/config), checked by vmm/config/mmds.c. */
struct mmds_config {
	bool present;
	enum mmds_version version;
	bool imds_compat; /* answer IMDS text whatever the guest's Accept says (EC2's way) */
	uint8_t ipv4[4];  /* network order: 169.254.169.254 is {169, 254, 169, 254} */
	char **ifaces;    /* network_interfaces: iface_ids of configured interfaces */
	size_t nifaces;
};

struct mmds_params {
	size_t size_limit;       /* --mmds-size-limit, else --http-api-max-payload-size */
	const char *instance_id; /* --id: bound into every token (Firecracker's AAD) */
	/* Milliseconds on a monotonic clock; NULL: CLOCK_MONOTONIC. Tests pass their own. */
	uint64_t (*clock_ms)(void *ctx);
	void *clock_ctx;
};

struct mmds;

/*
 * A store with nothing PUT yet, version V1: a small allocation, no system call (the V2
 * token key is made as the first token is). 0 or -ENOMEM (logged).
 */
int mmds_new(struct mmds **out, const struct mmds_params *p);
void mmds_free(struct mmds *m);

/*
 * The API's side. mmds_put replaces the store with a copy of @v (any JSON), mmds_patch
 * merges @patch into it (RFC 7396; -ENODATA while nothing was PUT yet). Both measure the
 * result written compactly, as Firecracker does, and leave the store as it was when it is
 * larger than the limit: -E2BIG. mmds_get: a new reference to the store (JSON null when
 * nothing was PUT), not to be changed.
 */
int mmds_put(struct mmds *m, json_t *v);
int mmds_patch(struct mmds *m, json_t *patch);
json_t *mmds_get(struct mmds *m);

/*
 * @v written as Firecracker writes JSON (serde_json, compact): keys sorted bytewise, floats
 * in their shortest form that reads back the same ("12.12", "1.0", "1e21"), only '"', '\\'
 * and control characters escaped. Malloc'd, NUL-terminated, *@len its length (it may hold
 * NULs); NULL when out of memory. What the size limit measures and what GETs answer.
 */
char *mmds_json_dump(const json_t *v, size_t *len);

/*
 * mmds-config takes effect (at InstanceStart, or for a --config-file VM before its start):
 * version, imds_compat and the address and interfaces mmds_net() answers for. @c is
 * copied. 0 or -ENOMEM.
 */
int mmds_configure(struct mmds *m, const struct mmds_config *c);

/*
 * For the net device of interface @iface_id: whether the MMDS answers on it, at which
 * IPv4 address, and the responder to hand its MMDS stack. Returns 1 (answers: *@out
 * filled in, its responder bound to @m, which must outlive the device), 0 (it does not;
 * *@out zeroed) or -EINVAL (@m or @iface_id NULL).
 */
struct mmds_net {
	uint8_t ipv4[4]; /* network order */
	struct net_mmds_responder responder;
};
int mmds_net(struct mmds *m, const char *iface_id, struct mmds_net *out);

/* The seam's serve() (devices/virtio/net_mmds.h) with @ctx the struct mmds. */
long mmds_serve(void *ctx, const uint8_t *in, size_t len, uint8_t **out, size_t *out_len);

/* What mmds_serve() has answered since the store was made (for tests and the metrics). */
struct mmds_stats {
	uint64_t requests;      /* whole requests answered */
	uint64_t no_token;      /* GETs without a token (Firecracker's rx_no_token) */
	uint64_t invalid_token; /* GETs with a token not valid (rx_invalid_token) */
	uint64_t refused;       /* streams refused (too long, unframeable) */
};
const struct mmds_stats *mmds_stats(const struct mmds *m);

#endif
