/* virtio-mmio transport, register layout version 2: registers, negotiation, status, interrupts. */
#include "devices/virtio/mmio.h"
#include "vmm/base/log.h"
#include "vmm/base/loop.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* What the virtqueue module implements for every device, so the transport offers it. */
#define TRANSPORT_FEATURES                                                                         \
	(VIRTIO_FEATURE(VIRTIO_F_VERSION_1) | VIRTIO_FEATURE(VIRTIO_F_INDIRECT_DESC) |             \
	 VIRTIO_FEATURE(VIRTIO_F_EVENT_IDX))

static void kick(struct virtio_transport *t, unsigned q);

static uint64_t offered(const struct virtio_dev *d)
{
	return d->features | TRANSPORT_FEATURES;
}

static void raise_irq(struct virtio_transport *t, uint32_t why)
{
	uint64_t one = 1;

	t->int_status |= why;
	t->irqs++;
	/* A full eventfd counter (2^64 - 2 unread kicks) already means "raised". */
	if (t->irq_fd >= 0 && write(t->irq_fd, &one, sizeof(one)) < 0 && errno != EAGAIN &&
	    log_ratelimit_ok(&t->rl))
		log_error("%s: cannot raise its interrupt: %s", t->dev->name, strerror(errno));
}

static void __attribute__((format(printf, 2, 3)))
guest_error(struct virtio_transport *t, const char *fmt, ...)
{
	char why[160];
	va_list ap;

	if (!log_ratelimit_ok(&t->rl))
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warn("%s: %s", t->dev->name, why);
}

void virtio_dev_lock(struct virtio_dev *d)
{
	pthread_mutex_lock(&d->transport->lock);
}

void virtio_dev_unlock(struct virtio_dev *d)
{
	pthread_mutex_unlock(&d->transport->lock);
}

bool virtio_dev_active(const struct virtio_dev *d)
{
	const struct virtio_transport *t = d->transport;

	return t->active && !(t->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

void virtio_dev_used(struct virtio_dev *d, unsigned q)
{
	if (q < d->nqueues && virtqueue_should_notify(&d->vqs[q]))
		raise_irq(d->transport, VIRTIO_MMIO_INT_VRING);
}

void virtio_dev_kick_later(struct virtio_dev *d, unsigned q)
{
	if (q < d->nqueues)
		kick(d->transport, q);
}

void virtio_dev_config_changed(struct virtio_dev *d)
{
	struct virtio_transport *t = d->transport;

	t->config_generation++;
	/* A driver not up yet reads the config space anyway, checking the generation. */
	if (t->status & VIRTIO_STATUS_DRIVER_OK)
		raise_irq(t, VIRTIO_MMIO_INT_CONFIG);
}

void virtio_dev_needs_reset(struct virtio_dev *d, int q, int err)
{
	struct virtio_transport *t = d->transport;

	if (t->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
		return;
	t->status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	if (q >= 0)
		guest_error(t,
		            "queue %d unusable (%s): the device stops until the driver resets it",
		            q, strerror(-err));
	else
		guest_error(t, "%s: the device stops until the driver resets it", strerror(-err));
	raise_irq(t, VIRTIO_MMIO_INT_CONFIG);
}

static void device_reset(struct virtio_transport *t)
{
	struct virtio_dev *d = t->dev;

	if (t->active)
		d->ops->reset(d);
	for (unsigned i = 0; i < d->nqueues; i++) {
		struct virtio_mmio_queue *q = &t->q[i];
		virtqueue_reset(&d->vqs[i]);
		q->num = d->queue_max;
		q->ready = false;
		q->desc = q->avail = q->used = 0;
	}
	t->active = false;
	t->status = 0;
	t->int_status = 0;
	t->dev_features_sel = t->drv_features_sel = t->queue_sel = 0;
	t->driver_features = 0;
	d->acked = 0;
}

/* The driver accepted features: only ones offered, and it must speak virtio 1.x. */
static bool features_ok(struct virtio_transport *t)
{
	uint64_t extra = t->driver_features & ~offered(t->dev);

	if (extra) {
		guest_error(t, "driver accepted features never offered (%#" PRIx64 ")", extra);
		return false;
	}
	if (!(t->driver_features & VIRTIO_FEATURE(VIRTIO_F_VERSION_1))) {
		guest_error(t, "driver did not accept VIRTIO_F_VERSION_1 (legacy drivers are "
		               "not supported)");
		return false;
	}
	t->dev->acked = t->driver_features;
	return true;
}

/* Hands queue @q to the loop, as the guest's QueueNotify through the ioeventfd does. */
static void kick(struct virtio_transport *t, unsigned q)
{
	uint64_t one = 1;

	if (write(t->q[q].notify_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		guest_error(t, "cannot queue a notification: %s", strerror(errno));
}

static void activate(struct virtio_transport *t)
{
	struct virtio_dev *d = t->dev;
	int r;

	if (!(t->status & VIRTIO_STATUS_FEATURES_OK)) {
		virtio_dev_needs_reset(d, -1, -EPROTO);
		return;
	}
	r = d->ops->activate(d);
	if (r) {
		virtio_dev_needs_reset(d, -1, r);
		return;
	}
	t->active = true;
	/* Kicks before DRIVER_OK were dropped: the loop looks at every ready queue once now. */
	for (unsigned i = 0; i < d->nqueues; i++)
		if (t->q[i].ready)
			kick(t, i);
}

static void write_status(struct virtio_transport *t, uint32_t v)
{
	uint32_t added = v & ~t->status;

	if (v == 0) {
		device_reset(t);
		return;
	}
	if (t->status & VIRTIO_STATUS_FAILED)
		return;
	if (t->status & ~v & ~(uint32_t)VIRTIO_STATUS_DEVICE_NEEDS_RESET) {
		guest_error(t, "driver cleared status bits (%#x to %#x) without a reset", t->status,
		            v);
		return;
	}
	if ((added & VIRTIO_STATUS_FEATURES_OK) && !features_ok(t))
		added &= ~(uint32_t)VIRTIO_STATUS_FEATURES_OK; /* it reads back unset: refused */
	t->status |= added & ~(uint32_t)VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	if ((added & VIRTIO_STATUS_DRIVER_OK) && !t->active)
		activate(t);
}

static struct virtio_mmio_queue *selected(struct virtio_transport *t)
{
	return t->queue_sel < t->dev->nqueues ? &t->q[t->queue_sel] : NULL;
}

static void queue_ready(struct virtio_transport *t, uint32_t v)
{
	struct virtio_mmio_queue *q = selected(t);
	struct virtio_dev *d = t->dev;
	struct virtqueue *vq;
	int r;

	if (!q)
		return;
	vq = &d->vqs[t->queue_sel];
	if (!v) {
		if (q->ready && t->active) {
			guest_error(t, "queue %u disabled while the device runs: unsupported",
			            t->queue_sel);
		} else {
			q->ready = false;
			virtqueue_reset(vq); /* withdrawn: nothing may pop from it any more */
		}
		return;
	}
	if (q->ready)
		return;
	if (!(t->status & VIRTIO_STATUS_FEATURES_OK)) {
		guest_error(t, "queue %u made ready before the features were agreed: ignored",
		            t->queue_sel);
		return;
	}
	if (q->num > d->queue_max) {
		virtio_dev_needs_reset(d, (int)t->queue_sel, -E2BIG); /* QueueNumMax said less */
		return;
	}
	r = virtqueue_enable(vq, &(struct virtqueue_config){ .size = q->num,
	                                                     .desc = q->desc,
	                                                     .avail = q->avail,
	                                                     .used = q->used,
	                                                     .features = d->acked });
	if (r) {
		virtio_dev_needs_reset(d, (int)t->queue_sel, r);
		return;
	}
	q->ready = true;
}

/* The queue's addresses are the driver's to set only while the queue is not ready. */
static void queue_addr(struct virtio_transport *t, uint64_t offset, uint32_t v)
{
	struct virtio_mmio_queue *q = selected(t);
	uint64_t *field;

	if (!q)
		return;
	if (q->ready) {
		guest_error(t, "queue %u address written while ready: ignored", t->queue_sel);
		return;
	}
	switch (offset & ~0xfULL) {
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
		field = &q->desc;
		break;
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
		field = &q->avail;
		break;
	default:
		field = &q->used;
		break;
	}
	if (offset & 4)
		*field = (*field & 0xffffffffULL) | (uint64_t)v << 32;
	else
		*field = (*field & ~0xffffffffULL) | v;
}

static void queue_notify(struct virtio_transport *t, uint32_t v)
{
	/* The same path as the ioeventfd: the loop serves it, the vCPU goes on. */
	if (v >= t->dev->nqueues) {
		guest_error(t, "notify for queue %u, which does not exist", v);
		return;
	}
	kick(t, v);
}

static uint32_t read_reg(struct virtio_transport *t, uint64_t offset)
{
	struct virtio_mmio_queue *q = selected(t);

	switch (offset) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return 2;
	case VIRTIO_MMIO_DEVICE_ID:
		return t->dev->device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		return t->dev_features_sel > 1
		               ? 0
		               : (uint32_t)(offered(t->dev) >> (32 * t->dev_features_sel));
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return q ? t->dev->queue_max : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		return q ? q->ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		return t->int_status;
	case VIRTIO_MMIO_STATUS:
		return t->status;
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return t->config_generation;
	default:
		guest_error(t, "read of register %#" PRIx64 ", which is write-only or reserved",
		            offset);
		return 0;
	}
}

static void write_features(struct virtio_transport *t, uint32_t v)
{
	unsigned shift = 32 * t->drv_features_sel;

	if (t->drv_features_sel > 1)
		return;
	if ((t->status & VIRTIO_STATUS_FEATURES_OK) || !(t->status & VIRTIO_STATUS_DRIVER)) {
		guest_error(t, "driver features written outside negotiation: ignored");
		return;
	}
	t->driver_features = (t->driver_features & ~(0xffffffffULL << shift)) | (uint64_t)v
	                                                                                << shift;
}

static void write_reg(struct virtio_transport *t, uint64_t offset, uint32_t v)
{
	struct virtio_mmio_queue *q = selected(t);

	switch (offset) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		t->dev_features_sel = v;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		write_features(t, v);
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		t->drv_features_sel = v;
		break;
	case VIRTIO_MMIO_QUEUE_SEL:
		t->queue_sel = v;
		break;
	case VIRTIO_MMIO_QUEUE_NUM:
		if (q && !q->ready)
			q->num = v > UINT16_MAX ? 0 : (uint16_t)v; /* checked when made ready */
		break;
	case VIRTIO_MMIO_QUEUE_READY:
		queue_ready(t, v);
		break;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		queue_notify(t, v);
		break;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		t->int_status &= ~v;
		break;
	case VIRTIO_MMIO_STATUS:
		write_status(t, v);
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
	case VIRTIO_MMIO_QUEUE_USED_LOW:
	case VIRTIO_MMIO_QUEUE_USED_HIGH:
		queue_addr(t, offset, v);
		break;
	default:
		guest_error(t,
		            "write of %#x to register %#" PRIx64 ", which is read-only or reserved",
		            v, offset);
	}
}

static bool config_range(struct virtio_transport *t, uint64_t offset, uint32_t len)
{
	uint64_t off = offset - VIRTIO_MMIO_CONFIG;

	if (off < t->dev->config_len && len <= t->dev->config_len - off)
		return true;
	guest_error(t, "config access of %u bytes at %#" PRIx64 " beyond its %u bytes", len, off,
	            t->dev->config_len);
	return false;
}

static void mmio_read(void *dev, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct virtio_transport *t = dev;
	uint32_t v;

	memset(data, 0, len);
	pthread_mutex_lock(&t->lock);
	if (offset >= VIRTIO_MMIO_CONFIG) {
		if (config_range(t, offset, len))
			t->dev->ops->config_read(t->dev, (uint32_t)(offset - VIRTIO_MMIO_CONFIG),
			                         data, len);
	} else if (len != 4 || (offset & 3)) {
		guest_error(t, "%u-byte read at register %#" PRIx64 ": registers are 32-bit", len,
		            offset);
	} else {
		v = read_reg(t, offset);
		memcpy(data, &v, 4); /* x86: little-endian, as virtio-mmio is */
	}
	pthread_mutex_unlock(&t->lock);
}

static void mmio_write(void *dev, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct virtio_transport *t = dev;
	uint32_t v;

	pthread_mutex_lock(&t->lock);
	if (offset >= VIRTIO_MMIO_CONFIG) {
		if (config_range(t, offset, len) && t->dev->ops->config_write)
			t->dev->ops->config_write(t->dev, (uint32_t)(offset - VIRTIO_MMIO_CONFIG),
			                          data, len);
	} else if (len != 4 || (offset & 3)) {
		guest_error(t, "%u-byte write at register %#" PRIx64 ": registers are 32-bit", len,
		            offset);
	} else {
		memcpy(&v, data, 4);
		write_reg(t, offset, v);
	}
	pthread_mutex_unlock(&t->lock);
}

const struct bus_ops virtio_mmio_ops = { mmio_read, mmio_write };

/* On the loop: queue @q was kicked (ioeventfd, or a QueueNotify write that trapped). */
static void on_notify(int fd, int events, void *arg)
{
	struct virtio_mmio_queue *q = arg;
	struct virtio_transport *t;
	uint64_t n;
	unsigned i;

	(void)events;
	if (read(fd, &n, sizeof(n)) < 0)
		return; /* EAGAIN: another wake-up already took it */
	t = q->owner;
	i = (unsigned)(q - t->q);
	pthread_mutex_lock(&t->lock);
	if (q->ready && virtio_dev_active(t->dev))
		t->dev->ops->queue_notify(t->dev, i);
	pthread_mutex_unlock(&t->lock);
}

int virtio_mmio_init(struct virtio_transport *t, struct virtio_dev *dev,
                     const struct guest_memory *mem, struct loop *loop, int irq_fd)
{
	char name[sizeof(dev->name) + 24];
	int r = 0;

	memset(t, 0, sizeof(*t));
	if (!dev->nqueues || dev->nqueues > VIRTIO_DEV_MAX_QUEUES || !dev->queue_max ||
	    dev->queue_max > VIRTQ_MAX_SIZE || (dev->queue_max & (dev->queue_max - 1)))
		return -EINVAL; /* a device model bug, not the guest's */
	pthread_mutex_init(&t->lock, NULL);
	t->dev = dev;
	t->loop = loop;
	t->irq_fd = irq_fd;
	t->rl = (struct log_ratelimit){ .burst = 10 };
	dev->transport = t;
	for (unsigned i = 0; i < VIRTIO_DEV_MAX_QUEUES; i++)
		t->q[i].notify_fd = -1;
	for (unsigned i = 0; i < dev->nqueues && !r; i++) {
		struct virtio_mmio_queue *q = &t->q[i];
		snprintf(name, sizeof(name), "%s queue %u", dev->name, i);
		virtqueue_init(&dev->vqs[i], mem, name);
		q->num = dev->queue_max;
		q->owner = t;
		q->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (q->notify_fd < 0)
			r = -errno;
		else if (!(q->watch = loop_add_fd(loop, q->notify_fd, LOOP_READ, on_notify, q)))
			r = -ENOMEM;
	}
	if (r) {
		log_error("%s: cannot set up its queue notifications: %s", dev->name, strerror(-r));
		virtio_mmio_destroy(t);
	}
	return r;
}

void virtio_mmio_destroy(struct virtio_transport *t)
{
	if (!t->dev)
		return;
	pthread_mutex_lock(&t->lock);
	device_reset(t);
	pthread_mutex_unlock(&t->lock);
	for (unsigned i = 0; i < VIRTIO_DEV_MAX_QUEUES; i++) {
		loop_remove(t->q[i].watch);
		t->q[i].watch = NULL;
		if (t->q[i].notify_fd >= 0)
			close(t->q[i].notify_fd);
		t->q[i].notify_fd = -1;
	}
	pthread_mutex_destroy(&t->lock);
	t->dev = NULL;
}

int virtio_mmio_notify_fd(const struct virtio_transport *t, unsigned q)
{
	return q < t->dev->nqueues ? t->q[q].notify_fd : -1;
}

int virtio_mmio_cmdline(char *cmdline, size_t cap, uint64_t base, unsigned gsi)
{
	size_t used = strlen(cmdline);
	int n = snprintf(cmdline + used, cap - used, " virtio_mmio.device=4K@%#" PRIx64 ":%u", base,
	                 gsi);

	if (n < 0 || (size_t)n >= cap - used) {
		cmdline[used] = '\0';
		return -ENOSPC;
	}
	return 0;
}
