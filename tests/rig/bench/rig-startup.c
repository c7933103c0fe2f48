/*
 * Device VM start-up cost against guest RAM size, pin vs fault mode, on the rig's real
 * kernel. Runs inside L1. Pin: flint's iommu_setup() with QEMU's edu device in pin mode
 * (every guest page populated and pinned into the IOAS). Fault: flint's fault-mode setup
 * (fault queue, fault-capable page table, resolver) for iommufd's mock device, since
 * edu cannot do PRI. Each figure includes creating the guest memory.
 */
#include "iommu/iommu.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "iommufd_test.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int find_edu(char *bdf, size_t len)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *e;
	int found = -1;

	while (d && (e = readdir(d))) {
		char path[300], id[16] = "";
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", e->d_name);
		FILE *f = fopen(path, "r");
		if (f && fgets(id, sizeof(id), f) && strncmp(id, "0x11e8", 6) == 0) {
			snprintf(bdf, len, "%.31s", e->d_name);
			found = 0;
		}
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return found;
}

static double pin_once(uint64_t mib, const char *bdf, int vm_fd)
{
	static struct vfio_config vc;
	static const struct flint_iommu_config icfg = {.path = "/dev/iommu", .fd = -1,
						       .chunk_bytes = 2ULL << 20};
	struct guest_memory mem;
	struct iommu io;
	double t0 = now_ms(), t;

	vc = (struct vfio_config){ .id = "edu", .spec = (char *)bdf, .mode = DMA_MODE_PIN, .guest_slot = -1 };
	if (guest_memory_init(&mem, mib << 20, GUEST_BACKING_4K) ||
	    iommu_setup(&io, &icfg, &vc, 1, &mem, vm_fd, NULL)) {
		fprintf(stderr, "pin setup with %llu MiB failed\n", (unsigned long long)mib);
		exit(1);
	}
	t = now_ms() - t0;
	iommu_teardown(&io);
	guest_memory_destroy(&mem);
	return t;
}

static double fault_once(uint64_t mib)
{
	struct flint_iommu_config icfg = {.path = "/dev/iommu", .fd = -1, .chunk_bytes = 2ULL << 20};
	struct guest_memory mem;
	struct iommu io;
	uint32_t hwpt;
	double t0 = now_ms(), t;

	if (guest_memory_init(&mem, mib << 20, GUEST_BACKING_4K) || iommu_open(&io, &icfg, &mem))
		exit(1);
	struct iommu_test_cmd md = {.size = sizeof(md), .op = IOMMU_TEST_OP_MOCK_DOMAIN, .id = io.ioas};
	if (ioctl(io.fd.fd, IOMMU_TEST_CMD, &md) || iommu_enable_faults(&io, 2ULL << 20, NULL) ||
	    iommu_fault_hwpt(&io, md.mock_domain.out_idev_id, &hwpt)) {
		fprintf(stderr, "fault setup with %llu MiB failed\n", (unsigned long long)mib);
		exit(1);
	}
	struct iommu_test_cmd rep = {.size = sizeof(rep), .op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
				     .id = md.mock_domain.out_stdev_id,
				     .mock_domain_replace = {.pt_id = hwpt}};
	if (ioctl(io.fd.fd, IOMMU_TEST_CMD, &rep))
		exit(1);
	t = now_ms() - t0;
	/* Closing the iommufd releases the mock device and everything on it. */
	resolver_free(io.resolver);
	close(io.fault_fd);
	close(io.fd.fd);
	guest_memory_destroy(&mem);
	return t;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

#define REPS 5

int main(void)
{
	const uint64_t sizes[2] = {256, 4096};
	double pin[2][REPS], flt[2][REPS];
	char bdf[32];
	int kvm = open("/dev/kvm", O_RDWR);
	int vm_fd = kvm < 0 ? -1 : ioctl(kvm, KVM_CREATE_VM, 0);

	if (vm_fd < 0 || find_edu(bdf, sizeof(bdf))) {
		fprintf(stderr, "needs /dev/kvm and the edu device\n");
		return 1;
	}
	for (int r = 0; r < REPS; r++)
		for (int s = 0; s < 2; s++) {
			pin[s][r] = pin_once(sizes[s], bdf, vm_fd);
			flt[s][r] = fault_once(sizes[s]);
		}
	for (int s = 0; s < 2; s++) {
		qsort(pin[s], REPS, sizeof(double), cmp);
		qsort(flt[s], REPS, sizeof(double), cmp);
		printf("guest RAM %5llu MiB: pin %8.1f ms, fault %6.2f ms (medians of %d)\n",
		       (unsigned long long)sizes[s], pin[s][REPS / 2], flt[s][REPS / 2], REPS);
	}
	double pr = pin[1][REPS / 2] / pin[0][REPS / 2], fr = flt[1][REPS / 2] / flt[0][REPS / 2];
	printf("fault mode %s flat (goal: 4096/256 MiB ratio <= 1.1)\n", fr <= 1.1 ? "stays" : "is NOT");
	printf("device VM start-up 4096 vs 256 MiB: pin ratio %.2f, fault ratio %.2f\n", pr, fr);
	return 0;
}
