/* vfio-edu-dma: a real device driven through the VFIO cdev + iommufd.
 * QEMU's edu device (PCI 1234:11e8, bound to vfio-pci by /init) copies a
 * pattern from RAM into its internal buffer and back to another part of RAM,
 * both DMAs translated by the (emulated) Intel IOMMU through an IOAS. */
#include <dirent.h>
#include <fcntl.h>
#include <linux/iommufd.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "rig.h"

/* edu (QEMU 7.2 hw/misc/edu.c) BAR0 registers. */
#define EDU_ID 0x00
#define EDU_DMA_SRC 0x80
#define EDU_DMA_DST 0x88
#define EDU_DMA_CNT 0x90
#define EDU_DMA_CMD 0x98
#define EDU_CMD_START 0x1
#define EDU_CMD_TO_RAM 0x2 /* 0: RAM -> edu buffer, 1: edu buffer -> RAM */
#define EDU_BUF 0x40000    /* device-internal 4 KiB buffer; a transfer must end
                            * strictly below EDU_BUF + 0x1000 or QEMU aborts */
/* edu masks DMA addresses to 28 bits: keep the IOVA low. */
#define IOVA 0x100000ull
#define XFER 2048

static int dev_fd;
static uint64_t bar0_off, cfg_off;

static uint64_t region_offset(uint32_t index)
{
    struct vfio_region_info ri = { .argsz = sizeof(ri), .index = index };
    CHECK_SYS(ioctl(dev_fd, VFIO_DEVICE_GET_REGION_INFO, &ri));
    CHECK(ri.size != 0, "region %u has size 0", index);
    return ri.offset;
}

static uint32_t bar0_read(uint32_t reg)
{
    uint32_t v;
    CHECK(pread(dev_fd, &v, 4, bar0_off + reg) == 4, "bar0 read %#x: %s", reg, strerror(errno));
    return v;
}

static void bar0_write(uint32_t reg, uint32_t v)
{
    CHECK(pwrite(dev_fd, &v, 4, bar0_off + reg) == 4, "bar0 write %#x: %s", reg, strerror(errno));
}

static void edu_dma(uint32_t src, uint32_t dst, uint32_t cmd)
{
    bar0_write(EDU_DMA_SRC, src);
    bar0_write(EDU_DMA_DST, dst);
    bar0_write(EDU_DMA_CNT, XFER);
    bar0_write(EDU_DMA_CMD, cmd | EDU_CMD_START);
    /* edu completes a DMA ~100 ms later (a QEMU timer); wait up to 10 s. */
    for (int i = 0; i < 1000; i++) {
        if (!(bar0_read(EDU_DMA_CMD) & EDU_CMD_START))
            return;
        nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
    }
    rig_fail("edu DMA (cmd %#x) did not complete", cmd);
}

/* The cdev of the edu device: /sys/bus/pci/devices/<BDF>/vfio-dev/vfioN. */
static int open_edu_cdev(char *bdf_out, size_t bdf_len)
{
    DIR *d = opendir("/sys/bus/pci/devices");
    CHECK(d, "opendir /sys/bus/pci/devices: %s", strerror(errno));
    struct dirent *de;
    while ((de = readdir(d))) {
        char path[512], id[16] = "";
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vendor", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        int ok = fgets(id, sizeof(id), f) && strncmp(id, "0x1234", 6) == 0;
        fclose(f);
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", de->d_name);
        if (!ok || !(f = fopen(path, "r")))
            continue;
        ok = fgets(id, sizeof(id), f) && strncmp(id, "0x11e8", 6) == 0;
        fclose(f);
        if (!ok)
            continue;
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vfio-dev", de->d_name);
        DIR *vd = opendir(path);
        CHECK(vd, "edu %s has no vfio-dev (not bound to vfio-pci?)", de->d_name);
        struct dirent *ve;
        while ((ve = readdir(vd))) {
            if (strncmp(ve->d_name, "vfio", 4) == 0) {
                snprintf(path, sizeof(path), "/dev/vfio/devices/%s", ve->d_name);
                snprintf(bdf_out, bdf_len, "%s", de->d_name);
                closedir(vd);
                closedir(d);
                return CHECK_SYS(open(path, O_RDWR | O_CLOEXEC));
            }
        }
        closedir(vd);
    }
    closedir(d);
    rig_fail("no edu device (1234:11e8) found");
}

int main(void)
{
    char bdf[256];
    dev_fd = open_edu_cdev(bdf, sizeof(bdf));
    int iommufd = CHECK_SYS(open("/dev/iommu", O_RDWR | O_CLOEXEC));

    struct vfio_device_bind_iommufd bind = {
        .argsz = sizeof(bind), .iommufd = iommufd,
    };
    CHECK_SYS(ioctl(dev_fd, VFIO_DEVICE_BIND_IOMMUFD, &bind));

    struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
    CHECK_SYS(ioctl(iommufd, IOMMU_IOAS_ALLOC, &alloc));
    uint32_t ioas = alloc.out_ioas_id;

    struct vfio_device_attach_iommufd_pt attach = {
        .argsz = sizeof(attach), .pt_id = ioas,
    };
    CHECK_SYS(ioctl(dev_fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach));

    /* The attach narrows the usable IOVA space (aperture, MSI window). */
    struct iommu_iova_range ranges[16];
    struct iommu_ioas_iova_ranges rq = {
        .size = sizeof(rq), .ioas_id = ioas, .num_iovas = 16,
        .allowed_iovas = (uintptr_t)ranges,
    };
    CHECK_SYS(ioctl(iommufd, IOMMU_IOAS_IOVA_RANGES, &rq));
    int in_range = 0;
    for (uint32_t i = 0; i < rq.num_iovas; i++)
        if (ranges[i].start <= IOVA && IOVA + 0x2000 - 1 <= ranges[i].last)
            in_range = 1;
    CHECK(in_range, "IOVA %#llx not allowed after attach", IOVA);

    uint8_t *buf = mmap(NULL, 0x2000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(buf != MAP_FAILED, "mmap");
    for (int i = 0; i < XFER; i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    memset(buf + 0x1000, 0, 0x1000);

    struct iommu_ioas_map map = {
        .size = sizeof(map),
        .flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
        .ioas_id = ioas,
        .user_va = (uintptr_t)buf,
        .length = 0x2000,
        .iova = IOVA,
    };
    CHECK_SYS(ioctl(iommufd, IOMMU_IOAS_MAP, &map));

    bar0_off = region_offset(VFIO_PCI_BAR0_REGION_INDEX);
    cfg_off = region_offset(VFIO_PCI_CONFIG_REGION_INDEX);
    /* vfio-pci leaves bus mastering off: without it edu's DMA goes nowhere.
     * Memory decoding too, for the BAR0 accesses below. */
    uint16_t cmd;
    CHECK(pread(dev_fd, &cmd, 2, cfg_off + PCI_COMMAND) == 2, "config read: %s", strerror(errno));
    cmd |= PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY;
    CHECK(pwrite(dev_fd, &cmd, 2, cfg_off + PCI_COMMAND) == 2, "config write: %s", strerror(errno));

    uint32_t id = bar0_read(EDU_ID);
    CHECK((id & 0xff) == 0xed, "edu id register %#x", id);

    edu_dma(IOVA, EDU_BUF, 0);                            /* RAM -> edu */
    edu_dma(EDU_BUF, IOVA + 0x1000, EDU_CMD_TO_RAM);      /* edu -> RAM */

    if (memcmp(buf, buf + 0x1000, XFER) != 0) {
        int i = 0;
        while (buf[i] == buf[0x1000 + i])
            i++;
        rig_fail("DMA round trip mismatch at byte %d: %#x != %#x", i, buf[0x1000 + i], buf[i]);
    }

    struct iommu_ioas_unmap unmap = {
        .size = sizeof(unmap), .ioas_id = ioas, .iova = IOVA, .length = 0x2000,
    };
    CHECK_SYS(ioctl(iommufd, IOMMU_IOAS_UNMAP, &unmap));
    struct vfio_device_detach_iommufd_pt detach = { .argsz = sizeof(detach) };
    CHECK_SYS(ioctl(dev_fd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach));

    rig_info("edu %s (id %#x, devid %u): %d bytes RAM->edu->RAM via IOVA %#llx ok", bdf, id,
             bind.out_devid, XFER, IOVA);
    close(dev_fd);
    close(iommufd);
    return 0;
}
