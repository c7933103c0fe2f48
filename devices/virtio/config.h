/*
 * What the config says of each virtio device (Firecracker's drives[], network-interfaces[],
 * vsock, and every device's rate_limiter): filled in by vmm/config/, read by the device
 * models. Here, on the devices' floor, so a device needs nothing of the VM's config.
 */
#ifndef FLINT_VIRTIO_CONFIG_H
#define FLINT_VIRTIO_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

struct net_mmds_config; /* devices/virtio/net_mmds_stack.h */

enum cache_type { CACHE_UNSAFE, CACHE_WRITEBACK };
enum io_engine { IO_ENGINE_SYNC, IO_ENGINE_ASYNC };

struct token_bucket {
	bool present;
	uint64_t size;
	uint64_t one_time_burst;
	uint64_t refill_time_ms;
};

struct rate_limiter {
	struct token_bucket bandwidth;
	struct token_bucket ops;
};

struct drive_config {
	char *id;
	char *path;     /* path_on_host */
	int fd;         /* path, opened (read-write unless read_only) and checked */
	char *partuuid; /* NULL when absent */
	bool root;
	bool read_only;
	enum cache_type cache;
	enum io_engine engine;
	struct rate_limiter limiter;
};

struct net_config {
	char *id;
	char *host_dev; /* TAP name, <= 15 bytes */
	bool has_mac;
	uint8_t mac[6];
	struct rate_limiter rx, tx;
	/*
	 * The MMDS on this interface (the VM's: the address from mmds-config, the responder
	 * from the MMDS), or NULL: none. Read at init only.
	 */
	const struct net_mmds_config *mmds;
};

struct vsock_config {
	bool present;
	uint32_t guest_cid;
	char *uds_path;
};

#endif
