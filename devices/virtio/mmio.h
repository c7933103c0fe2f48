/*
 * virtio-mmio transport, register layout version 2 (virtio 1.x, section 4.2.2). One
 * 4 KiB slot per device in the 32-bit MMIO window, one GSI each; Linux learns of it from
 * `virtio_mmio.device=<size>@<addr>:<gsi>` on its command line.
 *
 * The data path never stops a vCPU: QueueNotify is meant to be a KVM ioeventfd per
 * queue (virtio_mmio_notify_fd(), wired by the VM), watched on the loop, and interrupts
 * go out through the irqfd the transport is handed. A QueueNotify write that does reach
 * the MMIO handler (no ioeventfd, or a value no queue matches) is served the same way.
 *
 * Threading: register accesses come from vCPU threads, notifications are served on the
 * loop; both under the transport's lock (see device.h).
 */
#ifndef FLINT_VIRTIO_MMIO_H
#define FLINT_VIRTIO_MMIO_H

#include "devices/virtio/device.h"
#include "vmm/base/bus.h"
#include "vmm/base/memory.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define VIRTIO_MMIO_SLOT_SIZE 0x1000

/* Register offsets (section 4.2.2). */
#define VIRTIO_MMIO_MAGIC_VALUE         0x000
#define VIRTIO_MMIO_VERSION             0x004
#define VIRTIO_MMIO_DEVICE_ID           0x008
#define VIRTIO_MMIO_VENDOR_ID           0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES     0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES     0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL           0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX       0x034
#define VIRTIO_MMIO_QUEUE_NUM           0x038
#define VIRTIO_MMIO_QUEUE_READY         0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY        0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS    0x060
#define VIRTIO_MMIO_INTERRUPT_ACK       0x064
#define VIRTIO_MMIO_STATUS              0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW      0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH     0x084
#define VIRTIO_MMIO_QUEUE_AVAIL_LOW     0x090
#define VIRTIO_MMIO_QUEUE_AVAIL_HIGH    0x094
#define VIRTIO_MMIO_QUEUE_USED_LOW      0x0a0
#define VIRTIO_MMIO_QUEUE_USED_HIGH     0x0a4
#define VIRTIO_MMIO_CONFIG_GENERATION   0x0fc
#define VIRTIO_MMIO_CONFIG              0x100

#define VIRTIO_MMIO_MAGIC  0x74726976 /* "virt" */
#define VIRTIO_MMIO_VENDOR 0x544e4c46 /* "FLNT" */

#define VIRTIO_MMIO_INT_VRING  1
#define VIRTIO_MMIO_INT_CONFIG 2

struct loop;
struct loop_watch;
struct virtio_transport;

struct virtio_mmio_queue {
	uint16_t num;
	bool ready;
	uint64_t desc, avail, used;
	int notify_fd; /* eventfd: the ioeventfd of QueueNotify == this queue's index */
	struct loop_watch *watch;
	struct virtio_transport *owner;
};

struct virtio_transport {
	pthread_mutex_t lock;
	struct virtio_dev *dev;
	struct loop *loop;
	int irq_fd;         /* irqfd of the slot's GSI; -1: none (tests count interrupts instead) */
	unsigned long irqs; /* interrupts raised, for tests and counters */
	uint32_t status;
	uint32_t int_status;
	uint32_t dev_features_sel, drv_features_sel, queue_sel;
	uint64_t driver_features;
	uint32_t config_generation;
	bool active;
	struct virtio_mmio_queue q[VIRTIO_DEV_MAX_QUEUES];
	struct log_ratelimit rl;
};

extern const struct bus_ops virtio_mmio_ops;

/*
 * Binds @dev (its ops, name, ids, features, queue count and sizes filled in) to @t: its
 * virtqueues over @mem, one notify eventfd per queue watched on @loop, interrupts through
 * @irq_fd (kept open by the caller). Before any vCPU runs. Returns 0 or -errno (logged).
 */
int virtio_mmio_init(struct virtio_transport *t, struct virtio_dev *dev,
                     const struct guest_memory *mem, struct loop *loop, int irq_fd);
/* After the vCPUs stopped: resets the device, removes the watches, closes the eventfds. */
void virtio_mmio_destroy(struct virtio_transport *t);

/* The eventfd to register as KVM ioeventfd at QueueNotify with datamatch @q. */
int virtio_mmio_notify_fd(const struct virtio_transport *t, unsigned q);

/* Appends " virtio_mmio.device=4K@<base>:<gsi>" to @cmdline (size @cap). -ENOSPC if full. */
int virtio_mmio_cmdline(char *cmdline, size_t cap, uint64_t base, unsigned gsi);

#endif
