/*
 * The on-demand DMA resolver. A PRI-capable device's page requests arrive as
 * struct iommu_hwpt_pgfault records on an iommufd fault fd; the resolver maps the guest
 * memory around each faulting address into the IOAS and only then answers the group.
 * It runs on the event loop. Every group it reads is answered exactly once.
 *
 * The kernel delivers whole groups only: a read returns the records of one or more
 * complete groups, each group's records contiguous and sharing one cookie, the last with
 * LAST_PAGE. When the first pending group does not fit the buffer, Linux 7.3 (and
 * 6.12.101+) fails the read with EINVAL; older kernels return 0 while the fd stays
 * readable. Either way the resolver grows its buffer and reads again, up to
 * RESOLVER_GROUP_MAX records. A group larger than that is a misbehaving device: the
 * resolver logs one error and stops serving the fd (it never spins). That stops the
 * whole fault queue, which all of flint's fault-mode devices share, not only the device
 * that sent it; the kernel answers what is left INVALID when flint tears the queue down.
 *
 * Work before an answer is bounded: each request maps only the unit(s) holding its
 * address and the start of its length hint, at most two, where a unit is the chunk when
 * it is RESOLVER_UNIT_MAX or less, else a RESOLVER_UNIT_MAX-aligned piece of it. The rest
 * of the chunk is prefetched on the loop afterwards, one unit per loop turn. Answers are
 * written as soon as the mapping done since the last ones reaches RESOLVER_UNIT_MAX, not
 * after the whole read. One loop turn resolves at most RESOLVER_TURN_RECORDS records and
 * maps at most about RESOLVER_TURN_BYTES; records read and not resolved yet wait in the
 * buffer for the next turn.
 *
 * A read or write error other than the kernel refusing one response does not spin the
 * loop: the fd is not watched for 10-100 ms (growing while errors go on), and answers not
 * written are kept and written then.
 *
 * With a cap (resolver_params.max_mapped), the units the resolver maps itself never add
 * up to more than the cap. Before a unit holding a request's address would go beyond it,
 * the least recently used units are unmapped (IOAS_UNMAP: the kernel invalidates the
 * IOTLB and releases their pins before it returns); a device that touches them again
 * faults and they come back. A unit holding an address of a group whose answer is not
 * written yet is never unmapped: a record that only their answers stand in the way of
 * waits until they are written. A group whose addresses alone need more units than the
 * cap holds is answered INVALID. What is mapped on speculation, the unit holding the
 * start of a length hint and prefetch, only goes into room the cap has free: it never
 * unmaps anything, it is skipped when the cap is full (prefetch then drops the rest of
 * its range, left to faults), and no answer waits for it, so a request's address may
 * unmap it like any unit used before. A fault in a mapped unit makes it the most recent
 * again.
 *
 * The backend is a seam: the kernel's fault fd and IOAS in flint, a simulated IOMMU with
 * the kernel's fault-fd semantics in tests.
 */
#ifndef FLINT_RESOLVER_H
#define FLINT_RESOLVER_H

#include "vmm/base/memory.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct loop;

#define RESOLVER_GROUP_DEFAULT 64           /* records per read when nothing says more */
#define RESOLVER_GROUP_MAX     65536        /* records; a larger group stops the queue */
#define RESOLVER_UNIT_MAX      (2ULL << 20) /* the largest unit: the most one map call maps */
#define RESOLVER_TURN_RECORDS  1024         /* records resolved per loop turn at most */
#define RESOLVER_TURN_BYTES    (8 * RESOLVER_UNIT_MAX) /* mapped per turn, about, at most */

struct resolver_backend {
	/*
	 * Maps guest [gpa, gpa + len) (host address @hva) at IOVA = gpa. Returns 0,
	 * -EEXIST when (part of) it is already mapped, or another -errno.
	 */
	int (*map)(void *ctx, uint64_t gpa, void *hva, uint64_t len, bool writable);
	/* read(2) on the fault fd: bytes read (whole groups), 0 or -errno. */
	ssize_t (*read)(void *ctx, int fd, void *buf, size_t len);
	/* write(2) of page responses: bytes taken (maybe short), or -errno. */
	ssize_t (*write)(void *ctx, int fd, const void *buf, size_t len);
	/*
	 * Unmaps [gpa, gpa + len), which one map call mapped, and has the IOMMU forget it
	 * before it returns. 0 or -errno. Needed only with a cap.
	 */
	int (*unmap)(void *ctx, uint64_t gpa, uint64_t len);
};

#define RESOLVER_LAT_BUCKETS 24 /* bucket i: latency < 2^i microseconds */

struct resolver_stats {
	uint64_t faults;        /* records read */
	uint64_t groups;        /* groups answered: responses written (refused ones too) */
	uint64_t chunks_mapped; /* IOAS mappings made: one per chunk, or per 2 MiB piece of one */
	uint64_t bytes_mapped;
	uint64_t prefetched; /* of bytes_mapped, mapped after the answer */
	uint64_t invalid;    /* groups answered INVALID */
	uint64_t refused;    /* responses the kernel did not accept (should stay 0) */
	/* The cap: mappings it took back out (least recently faulted first), and... */
	uint64_t chunks_unmapped;
	uint64_t bytes_unmapped;
	uint64_t refaults;  /* ...mappings made again for a fault after it had taken them */
	uint64_t cap_waits; /* times a record waited for answers to be written (the cap) */
	uint64_t latency_us[RESOLVER_LAT_BUCKETS]; /* read -> answer written, per group */
};

struct resolver_params {
	int fault_fd; /* pollable: readable while undelivered groups exist */
	const struct guest_memory *mem;
	uint64_t chunk; /* bytes mapped per fault, a power of two >= 4 KiB; 0 = 2 MiB */
	unsigned batch; /* records per read at least; 0 = RESOLVER_GROUP_DEFAULT */
	const struct resolver_backend *backend;
	void *backend_ctx;
	const char *name; /* for log lines, e.g. "iommufd fault queue 5"; NULL = "fault queue" */
	/* Bytes the resolver keeps mapped at most; 0 = no cap, else at least one chunk. */
	uint64_t max_mapped;
};

struct resolver;

struct resolver *resolver_new(const struct resolver_params *p);
/*
 * Answers INVALID what the fault fd still delivers (bounded: the kernel answers the rest
 * when the queue is destroyed), then frees it. Call before freeing the loop.
 */
void resolver_free(struct resolver *r);
/*
 * Faults from @dev_id are served; from any other device they are refused. @max_group is
 * the most records one of its groups can have (its PRI Outstanding Page Request
 * Allocation), 0 when unknown: the read buffer is sized for it up front. Adding a device
 * again updates it.
 */
int resolver_add_device(struct resolver *r, uint32_t dev_id, uint32_t max_group);
/*
 * Serves the fault fd from @loop, and prefetches there (also what was queued before).
 * Returns 0 or -ENOMEM; on failure @r is not attached.
 */
int resolver_attach(struct resolver *r, struct loop *loop);
/*
 * One turn, what the loop runs when the fault fd is readable: writes the answers an
 * earlier write error left, resolves the records left in the buffer, then reads more,
 * until RESOLVER_TURN_RECORDS records are resolved or RESOLVER_TURN_BYTES mapped, or
 * nothing is pending. What is left waits for the next call (on the loop, the next turn).
 * Returns the groups it answered (responses written). When it answered none: -errno if
 * it hit an error (-E2BIG once the queue is given up), else 0. An error after some
 * answers is not returned: it is logged, and what failed (but a give-up) is tried again
 * on the next call (on the loop, from the backoff timer).
 */
int resolver_process(struct resolver *r);
const struct resolver_stats *resolver_stats(const struct resolver *r);
/* True when the piece (the chunk, or its 2 MiB part) holding @gpa is mapped. */
bool resolver_is_mapped(const struct resolver *r, uint64_t gpa);
/* True while chunk prefetch is still queued. */
bool resolver_prefetching(const struct resolver *r);

#endif
