/*
 * Rig case: flint's iommu_setup() with QEMU's edu device behind the emulated Intel
 * IOMMU. edu has no PRI, so "auto" must choose pin mode: all guest RAM mapped into the
 * IOAS (IOVA = guest physical), then an edu DMA round trip through that mapping lands
 * in guest memory. An explicit "fault" for edu must fail loudly, not fall back.
 */
#include "iommu/iommu.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/pci_regs.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "rig.h"

#define RAM      (64ULL << 20)
#define EDU_SRC  0x80
#define EDU_DST  0x88
#define EDU_CNT  0x90
#define EDU_CMD  0x98
#define EDU_BUF  0x40000
#define XFER     2048
#define SRC_GPA  0x100000
#define DST_GPA  0x300000

static void find_edu(char *bdf, size_t len)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *e;

	CHECK(d, "no /sys/bus/pci/devices");
	while ((e = readdir(d))) {
		char path[300], id[16] = "";
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", e->d_name);
		FILE *f = fopen(path, "r");
		if (f && fgets(id, sizeof(id), f) && strncmp(id, "0x11e8", 6) == 0) {
			snprintf(bdf, len, "%s", e->d_name);
			fclose(f);
			closedir(d);
			return;
		}
		if (f)
			fclose(f);
	}
	rig_fail("no edu device (1234:11e8)");
}

static void bar0_write(struct vfio_dev *v, uint32_t reg, uint32_t val)
{
	CHECK(pwrite(v->fd, &val, 4, (off_t)(v->regions[0].offset + reg)) == 4, "bar0 write");
}

static uint32_t bar0_read(struct vfio_dev *v, uint32_t reg)
{
	uint32_t val = 0;
	CHECK(pread(v->fd, &val, 4, (off_t)(v->regions[0].offset + reg)) == 4, "bar0 read");
	return val;
}

static void edu_dma(struct vfio_dev *v, uint32_t src, uint32_t dst, uint32_t dir)
{
	bar0_write(v, EDU_SRC, src);
	bar0_write(v, EDU_DST, dst);
	bar0_write(v, EDU_CNT, XFER);
	bar0_write(v, EDU_CMD, 1 | dir);
	for (int i = 0; i < 300 && (bar0_read(v, EDU_CMD) & 1); i++)
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	CHECK(!(bar0_read(v, EDU_CMD) & 1), "edu DMA did not finish");
}

static int setup(struct iommu *io, struct guest_memory *mem, int vm_fd, const char *bdf,
		 enum dma_mode mode)
{
	static struct vfio_config vc;
	static const struct flint_iommu_config icfg = {.path = "/dev/iommu", .fd = -1,
						       .chunk_bytes = 2ULL << 20};

	vc = (struct vfio_config){ .id = "edu", .spec = (char *)bdf, .mode = mode, .guest_slot = -1 };
	return iommu_setup(io, &icfg, &vc, 1, mem, vm_fd, NULL);
}

int main(void)
{
	struct guest_memory mem;
	struct iommu io;
	char bdf[300];
	int kvm = CHECK_SYS(open("/dev/kvm", O_RDWR));
	int vm_fd = CHECK_SYS(ioctl(kvm, KVM_CREATE_VM, 0));

	find_edu(bdf, sizeof(bdf));
	CHECK(guest_memory_init(&mem, RAM, GUEST_BACKING_4K) == 0, "guest memory");
	CHECK(setup(&io, &mem, vm_fd, bdf, DMA_MODE_AUTO) == 0, "iommu_setup(auto) for %s", bdf);
	CHECK(io.ndevs == 1 && io.devs[0].mode == DMA_MODE_PIN && io.pinned,
	      "auto chose mode %d (pinned %d), want pin", io.devs[0].mode, io.pinned);
	CHECK(io.devs[0].vfio.regions[0].size >= 0x100, "edu BAR0 missing");

	struct vfio_dev *v = &io.devs[0].vfio;
	uint16_t cmd;
	CHECK(vfio_config_read(v, PCI_COMMAND, &cmd, 2) == 0, "config read");
	cmd |= PCI_COMMAND_MASTER;
	CHECK(vfio_config_write(v, PCI_COMMAND, &cmd, 2) == 0, "config write");

	for (int i = 0; i < XFER; i++)
		mem.base[SRC_GPA + i] = (uint8_t)(i * 7 + 3);
	memset(mem.base + DST_GPA, 0, XFER);
	edu_dma(v, SRC_GPA, EDU_BUF, 0); /* guest RAM -> edu */
	edu_dma(v, EDU_BUF, DST_GPA, 2); /* edu -> guest RAM */
	CHECK(memcmp(mem.base + SRC_GPA, mem.base + DST_GPA, XFER) == 0,
	      "guest memory at %#x does not hold what edu read from %#x", DST_GPA, SRC_GPA);
	rig_info("%s: pin mode, %d bytes guest %#x -> edu -> guest %#x through flint's IOAS", bdf,
		 XFER, SRC_GPA, DST_GPA);
	iommu_teardown(&io);

	/* edu cannot do PRI: an explicit fault mode is an error, not a silent pin. */
	CHECK(setup(&io, &mem, vm_fd, bdf, DMA_MODE_FAULT) != 0, "fault mode accepted for edu");
	iommu_teardown(&io);
	return 0;
}
