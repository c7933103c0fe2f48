/* Test-only iommufd definitions: the CONFIG_IOMMUFD_TEST mock device.
 * Linux keeps these in drivers/iommu/iommufd/iommufd_test.h, which is not a
 * uapi header; only the parts the rig uses are restated here (7.3 layout),
 * with the offsets checked at compile time. Never use these outside tests. */
#ifndef FLINT_RIG_IOMMUFD_TEST_H
#define FLINT_RIG_IOMMUFD_TEST_H

#include <linux/iommufd.h>
#include <linux/types.h>
#include <stddef.h>

enum {
    IOMMU_TEST_OP_MOCK_DOMAIN = 2,
    IOMMU_TEST_OP_MD_CHECK_MAP = 3,
    IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE = 10,
    IOMMU_TEST_OP_TRIGGER_IOPF = 15,
};

/* The mock domain's page table covers only this IOVA window. */
#define MOCK_APERTURE_START (1ull << 24)
#define MOCK_APERTURE_LAST ((1ull << 31) - 1)

struct iommu_test_cmd {
    __u32 size;
    __u32 op;
    __u32 id;
    __u32 __reserved;
    union {
        struct {
            __u32 out_stdev_id;
            __u32 out_hwpt_id;
            __u32 out_idev_id; /* the iommufd device id of the mock device */
        } mock_domain;
        struct {
            __u32 pt_id;
        } mock_domain_replace;
        struct {
            __aligned_u64 iova;
            __aligned_u64 length;
            __aligned_u64 uptr;
        } check_map;
        struct {
            __u32 dev_id;
            __u32 pasid;
            __u32 grpid;
            __u32 perm;
            __u64 addr;
        } trigger_iopf;
        __u8 union_size[48]; /* the kernel's largest member (dirty) */
    };
    __u32 last;
};
#define IOMMU_TEST_CMD _IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + 32)

_Static_assert(IOMMU_TEST_CMD == 0x3ba0, "IOMMU_TEST_CMD");
_Static_assert(sizeof(struct iommu_test_cmd) == 72, "iommu_test_cmd size");
_Static_assert(offsetof(struct iommu_test_cmd, mock_domain.out_idev_id) == 24, "out_idev_id");
_Static_assert(offsetof(struct iommu_test_cmd, check_map.uptr) == 32, "check_map.uptr");
_Static_assert(offsetof(struct iommu_test_cmd, trigger_iopf.addr) == 32, "trigger_iopf.addr");
_Static_assert(offsetof(struct iommu_test_cmd, last) == 64, "last");

#endif
