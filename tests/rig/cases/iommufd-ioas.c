/* iommufd-ioas: the basic /dev/iommu object life cycle, no device needed.
 * IOAS_ALLOC, IOAS_IOVA_RANGES (EMSGSIZE sizing protocol), IOAS_MAP with a
 * kernel-chosen and with a fixed IOVA, EEXIST on overlap, UNMAP, DESTROY. */
#include <fcntl.h>
#include <linux/iommufd.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "rig.h"

#define BUF_LEN (2u << 20)
#define FIXED_IOVA 0x40000000ull

int main(void)
{
    int fd = CHECK_SYS(open("/dev/iommu", O_RDWR | O_CLOEXEC));

    struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
    CHECK_SYS(ioctl(fd, IOMMU_IOAS_ALLOC, &alloc));
    uint32_t ioas = alloc.out_ioas_id;
    CHECK(ioas != 0, "ioas id 0");

    /* Ask with no room: EMSGSIZE and the number of ranges needed. */
    struct iommu_ioas_iova_ranges rq = { .size = sizeof(rq), .ioas_id = ioas };
    int rc = ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &rq);
    CHECK(rc == -1 && errno == EMSGSIZE, "IOVA_RANGES with no room: rc %d errno %d", rc, errno);
    CHECK(rq.num_iovas >= 1 && rq.num_iovas < 64, "num_iovas %u", rq.num_iovas);
    struct iommu_iova_range ranges[64];
    rq.allowed_iovas = (uintptr_t)ranges;
    CHECK_SYS(ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &rq));
    CHECK(rq.out_iova_alignment != 0, "out_iova_alignment 0");
    int fixed_ok = 0;
    for (uint32_t i = 0; i < rq.num_iovas; i++) {
        rig_info("allowed iova range %#llx-%#llx", (unsigned long long)ranges[i].start,
                 (unsigned long long)ranges[i].last);
        if (ranges[i].start <= FIXED_IOVA && FIXED_IOVA + BUF_LEN - 1 <= ranges[i].last)
            fixed_ok = 1;
    }
    CHECK(fixed_ok, "%#llx not inside an allowed range", FIXED_IOVA);

    uint8_t *buf = mmap(NULL, BUF_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(buf != MAP_FAILED, "mmap");
    memset(buf, 0x5a, BUF_LEN);

    /* Kernel-chosen IOVA. */
    struct iommu_ioas_map map = {
        .size = sizeof(map),
        .flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
        .ioas_id = ioas,
        .user_va = (uintptr_t)buf,
        .length = BUF_LEN / 2,
    };
    CHECK_SYS(ioctl(fd, IOMMU_IOAS_MAP, &map));
    uint64_t auto_iova = map.iova;
    CHECK(auto_iova % rq.out_iova_alignment == 0, "auto iova %#llx misaligned",
          (unsigned long long)auto_iova);

    /* Fixed IOVA, then the same again must collide. */
    map.flags |= IOMMU_IOAS_MAP_FIXED_IOVA;
    map.user_va = (uintptr_t)buf + BUF_LEN / 2;
    map.iova = FIXED_IOVA;
    CHECK_SYS(ioctl(fd, IOMMU_IOAS_MAP, &map));
    rc = ioctl(fd, IOMMU_IOAS_MAP, &map);
    CHECK(rc == -1 && errno == EEXIST, "overlapping FIXED_IOVA map: rc %d errno %d", rc, errno);

    struct iommu_ioas_unmap unmap = {
        .size = sizeof(unmap), .ioas_id = ioas, .iova = FIXED_IOVA, .length = BUF_LEN / 2,
    };
    CHECK_SYS(ioctl(fd, IOMMU_IOAS_UNMAP, &unmap));
    CHECK(unmap.length == BUF_LEN / 2, "unmapped %llu bytes", (unsigned long long)unmap.length);

    /* iova 0 + length U64_MAX unmaps everything left: the automatic one. */
    unmap.iova = 0;
    unmap.length = UINT64_MAX;
    CHECK_SYS(ioctl(fd, IOMMU_IOAS_UNMAP, &unmap));
    CHECK(unmap.length == BUF_LEN / 2, "unmap-all removed %llu bytes",
          (unsigned long long)unmap.length);

    struct iommu_destroy destroy = { .size = sizeof(destroy), .id = ioas };
    CHECK_SYS(ioctl(fd, IOMMU_DESTROY, &destroy));
    rc = ioctl(fd, IOMMU_DESTROY, &destroy);
    CHECK(rc == -1 && errno == ENOENT, "second DESTROY: rc %d errno %d", rc, errno);

    rig_info("ioas %u: mapped at %#llx and %#llx, unmapped, destroyed", ioas,
             (unsigned long long)auto_iova, FIXED_IOVA);
    close(fd);
    return 0;
}
