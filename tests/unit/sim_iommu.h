/*
 * A simulated IOMMU for the resolver: mappings recorded as sorted intervals, and a fault
 * queue that behaves as the kernel's iommufd fault fd (drivers/iommu/iommufd/eventq.c,
 * Linux 7.3), so the resolver meets here exactly what it meets there:
 * - read: count must be a multiple of 40 (else -ESPIPE); never blocks; 0 when nothing is
 *   pending; whole groups only, in the order they were raised. When the first pending
 *   group does not fit: -EINVAL (7.3, 6.12.101+), or with @old_kernel 0 while the fd
 *   stays readable. Cookies are allocated at delivery, lowest free from 1, shared by a
 *   group's records and reused once the group is answered.
 * - write: count must be a multiple of 8 (else -ESPIPE); responses taken in order; a code
 *   other than SUCCESS/INVALID or an unknown or already answered cookie is -EINVAL, or a
 *   short count when earlier responses were taken.
 * - the fd (an eventfd) is readable exactly while undelivered groups exist.
 * - map (IOAS_MAP with a fixed IOVA): zero length and an IOVA, length or host address
 *   not 4 KiB-aligned are -EINVAL, a range that wraps is -EOVERFLOW, (part of) it mapped
 *   already is -EEXIST.
 * - unmap (IOAS_UNMAP, iopt_unmap_iova()): zero length is -EINVAL, a range that wraps
 *   -EOVERFLOW; mappings are removed in IOVA order, each only when wholly inside the
 *   range: one that only overlaps it stops there with -ENOENT, as does finding nothing.
 *   (IOAS_UNMAP does not check alignment; a misaligned range can only cut a mapping.)
 *   What is unmapped no longer translates: the IOTLB is flushed before it returns.
 * The device side (sim_fault_raise/sim_fault_take) may run on another thread.
 */
#ifndef FLINT_SIM_IOMMU_H
#define FLINT_SIM_IOMMU_H

#include "iommu/resolver.h"
#include "iommu/uapi_compat.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct sim_map {
	uint64_t iova;
	uint64_t len;
	uint8_t *hva;
	bool writable;
};

struct sim_group {
	struct sim_group *next;
	uint64_t seq; /* from 1, in raise order: how tests name a group (cookies are reused) */
	unsigned n;
	struct iommu_hwpt_pgfault rec[];
};

/* One answered group, and how much mapping had been done when it was answered. */
struct sim_resp {
	uint64_t seq;
	uint32_t cookie;
	uint32_t code;
	unsigned map_calls;
	uint64_t map_bytes;
	unsigned unmap_calls;
	bool by_kernel; /* answered INVALID by the queue itself (sim_fault_preanswer) */
	/*
	 * Records whose address did not translate, with the record's permission (and to
	 * guest_base + addr, when the test set guest_base), as the answer was taken: for
	 * SUCCESS, a device's retry that would fault again. The sim checks what the kernel
	 * cannot: that nothing was unmapped under a group before its answer.
	 */
	unsigned holes;
};

struct sim_iommu {
	pthread_mutex_t lock;
	struct sim_map *maps;
	size_t n, cap;
	unsigned map_calls;
	uint64_t map_bytes; /* successful maps */
	unsigned unmap_calls;
	uint64_t unmap_bytes;        /* successful unmaps */
	uint64_t mapped, mapped_max; /* bytes mapped now, and the most ever at once */
	uint8_t *guest_base;         /* set: IOVA a must translate to guest_base + a (holes) */
	int unmap_errno;             /* set: unmaps fail with it */
	/* Injected behaviour: maps touching [fail_lo, fail_hi) fail with fail_errno... */
	uint64_t fail_lo, fail_hi;
	int fail_errno;
	/* ...and maps touching [exist_lo, exist_hi) report -EEXIST (someone else mapped it). */
	uint64_t exist_lo, exist_hi;
	uint64_t preanswer; /* sim_fault_preanswer() */

	/* The fault queue. */
	int fd;          /* eventfd, the fault fd the resolver polls */
	bool old_kernel; /* a group that does not fit: read returns 0, not -EINVAL */
	bool fd_ready;   /* the eventfd is signalled */
	struct sim_group *head, **tail; /* raised, not delivered yet */
	struct sim_group **out;         /* delivered, unanswered, by cookie; [0] unused */
	uint32_t out_cap;
	uint64_t seq;
	struct sim_resp *resp; /* answered, not taken yet */
	size_t nresp, resp_cap;
	unsigned reads, nofit_reads, writes, refused;
	uint64_t answered;
};

extern const struct resolver_backend sim_iommu_backend;

int sim_iommu_init(struct sim_iommu *s);
/* Frees everything; groups still raised or delivered are dropped. */
void sim_iommu_destroy(struct sim_iommu *s);
/* Host address the device would reach at @iova, or NULL when unmapped (or read-only for a write). */
uint8_t *sim_iommu_translate(struct sim_iommu *s, uint64_t iova, bool write);

/*
 * Raises one page request group of @n records (the device's fields: flags other than
 * LAST_PAGE, dev_id, pasid, grpid, perm, addr, length). The queue sets LAST_PAGE on the
 * last record only, and the cookie at delivery. Returns the group's sequence number, or 0.
 */
uint64_t sim_fault_raise(struct sim_iommu *s, const struct iommu_hwpt_pgfault *recs, unsigned n);
/* Moves up to @max answered groups to @out, in the order they were answered. */
size_t sim_fault_take(struct sim_iommu *s, struct sim_resp *out, size_t max);
/* Groups raised and not answered yet (delivered or not). */
unsigned sim_fault_open(struct sim_iommu *s);
/*
 * Group @seq is answered INVALID by the queue itself, as the kernel does when its device
 * is detached, just before the next write of responses once it is delivered: the
 * resolver's own response for it is then refused (-EINVAL, or a short count).
 */
void sim_fault_preanswer(struct sim_iommu *s, uint64_t seq);

#endif
