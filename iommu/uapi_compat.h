/*
 * The one place flint defines kernel uapi its build machine's headers may lack:
 * iommufd (fault queue needs Linux 6.13 headers), VFIO cdev binding (6.6), and KVM's
 * VFIO "file" attribute names (6.6). Each definition is used only when the system
 * header does not provide it, and every struct is checked below against the layout
 * the kernel ABI fixes, whichever header supplied it.
 */
#ifndef FLINT_UAPI_COMPAT_H
#define FLINT_UAPI_COMPAT_H

#include <linux/kvm.h>
#include <linux/types.h>
#include <linux/version.h>
#include <linux/vfio.h>
#include <stddef.h>
#include <sys/ioctl.h>

/* ---- iommufd: complete from 6.13 (IOAS_MAP_FILE, fault queue on paging hwpts) ---- */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 13, 0) && __has_include(<linux/iommufd.h>)
#include <linux/iommufd.h>
#else
#define IOMMUFD_TYPE            (';')

enum {
	IOMMUFD_CMD_BASE = 0x80,
	IOMMUFD_CMD_DESTROY = IOMMUFD_CMD_BASE,
	IOMMUFD_CMD_IOAS_ALLOC = 0x81,
	IOMMUFD_CMD_IOAS_IOVA_RANGES = 0x84,
	IOMMUFD_CMD_IOAS_MAP = 0x85,
	IOMMUFD_CMD_IOAS_UNMAP = 0x86,
	IOMMUFD_CMD_OPTION = 0x87,
	IOMMUFD_CMD_HWPT_ALLOC = 0x89,
	IOMMUFD_CMD_GET_HW_INFO = 0x8a,
	IOMMUFD_CMD_FAULT_QUEUE_ALLOC = 0x8e,
	IOMMUFD_CMD_IOAS_MAP_FILE = 0x8f,
};

struct iommu_destroy {
	__u32 size;
	__u32 id;
};
#define IOMMU_DESTROY           _IO(IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY)

struct iommu_ioas_alloc {
	__u32 size;
	__u32 flags;
	__u32 out_ioas_id;
};
#define IOMMU_IOAS_ALLOC        _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC)

struct iommu_iova_range {
	__aligned_u64 start;
	__aligned_u64 last;
};

struct iommu_ioas_iova_ranges {
	__u32 size;
	__u32 ioas_id;
	__u32 num_iovas;
	__u32 __reserved;
	__aligned_u64 allowed_iovas;
	__aligned_u64 out_iova_alignment;
};
#define IOMMU_IOAS_IOVA_RANGES  _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_IOVA_RANGES)

enum iommufd_ioas_map_flags {
	IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0,
	IOMMU_IOAS_MAP_WRITEABLE = 1 << 1,
	IOMMU_IOAS_MAP_READABLE = 1 << 2,
};

struct iommu_ioas_map {
	__u32 size;
	__u32 flags;
	__u32 ioas_id;
	__u32 __reserved;
	__aligned_u64 user_va;
	__aligned_u64 length;
	__aligned_u64 iova;
};
#define IOMMU_IOAS_MAP          _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP)

struct iommu_ioas_map_file {
	__u32 size;
	__u32 flags;
	__u32 ioas_id;
	__s32 fd;
	__aligned_u64 start;
	__aligned_u64 length;
	__aligned_u64 iova;
};
#define IOMMU_IOAS_MAP_FILE     _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP_FILE)

struct iommu_ioas_unmap {
	__u32 size;
	__u32 ioas_id;
	__aligned_u64 iova;
	__aligned_u64 length;
};
#define IOMMU_IOAS_UNMAP        _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_UNMAP)

enum iommufd_option {
	IOMMU_OPTION_RLIMIT_MODE = 0,
	IOMMU_OPTION_HUGE_PAGES = 1,
};
enum iommufd_option_ops {
	IOMMU_OPTION_OP_SET = 0,
	IOMMU_OPTION_OP_GET = 1,
};
struct iommu_option {
	__u32 size;
	__u32 option_id;
	__u16 op;
	__u16 __reserved;
	__u32 object_id;
	__aligned_u64 val64;
};
#define IOMMU_OPTION            _IO(IOMMUFD_TYPE, IOMMUFD_CMD_OPTION)

enum iommufd_hwpt_alloc_flags {
	IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0,
	IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1,
	IOMMU_HWPT_FAULT_ID_VALID = 1 << 2,
	IOMMU_HWPT_ALLOC_PASID = 1 << 3,
};

struct iommu_hwpt_alloc {
	__u32 size;
	__u32 flags;
	__u32 dev_id;
	__u32 pt_id;
	__u32 out_hwpt_id;
	__u32 __reserved;
	__u32 data_type;
	__u32 data_len;
	__aligned_u64 data_uptr;
	__u32 fault_id;
	__u32 __reserved2;
};
#define IOMMU_HWPT_ALLOC        _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_ALLOC)

enum iommu_hwpt_pgfault_flags {
	IOMMU_PGFAULT_FLAGS_PASID_VALID = 1 << 0,
	IOMMU_PGFAULT_FLAGS_LAST_PAGE = 1 << 1,
};
enum iommu_hwpt_pgfault_perm {
	IOMMU_PGFAULT_PERM_READ = 1 << 0,
	IOMMU_PGFAULT_PERM_WRITE = 1 << 1,
	IOMMU_PGFAULT_PERM_EXEC = 1 << 2,
	IOMMU_PGFAULT_PERM_PRIV = 1 << 3,
};

struct iommu_hwpt_pgfault {
	__u32 flags;
	__u32 dev_id;
	__u32 pasid;
	__u32 grpid;
	__u32 perm;
	__u32 __reserved;
	__aligned_u64 addr;
	__u32 length;
	__u32 cookie;
};

enum iommufd_page_response_code {
	IOMMUFD_PAGE_RESP_SUCCESS = 0,
	IOMMUFD_PAGE_RESP_INVALID = 1,
};

struct iommu_hwpt_page_response {
	__u32 cookie;
	__u32 code;
};

struct iommu_fault_alloc {
	__u32 size;
	__u32 flags;
	__u32 out_fault_id;
	__u32 out_fault_fd;
};
#define IOMMU_FAULT_QUEUE_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_FAULT_QUEUE_ALLOC)
#endif /* iommufd */

/* ---- VFIO cdev (6.6) ---- */
#ifndef VFIO_DEVICE_BIND_IOMMUFD
struct vfio_device_bind_iommufd {
	__u32 argsz;
	__u32 flags;
	__s32 iommufd;
	__u32 out_devid;
};
#define VFIO_DEVICE_BIND_IOMMUFD _IO(VFIO_TYPE, VFIO_BASE + 18)

struct vfio_device_attach_iommufd_pt {
	__u32 argsz;
	__u32 flags;
	__u32 pt_id;
};
#define VFIO_DEVICE_ATTACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 19)

struct vfio_device_detach_iommufd_pt {
	__u32 argsz;
	__u32 flags;
};
#define VFIO_DEVICE_DETACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 20)
#endif

/* ---- KVM: the VFIO pseudo-device takes cdev fds under the "file" names (6.6) ---- */
#ifndef KVM_DEV_VFIO_FILE
#define KVM_DEV_VFIO_FILE     1
#define KVM_DEV_VFIO_FILE_ADD 1
#define KVM_DEV_VFIO_FILE_DEL 2
#endif

/* ---- The ABI, checked: numbers and layouts from the kernel's uapi ---- */
#define FLINT_CHECK_SIZE(type, n) _Static_assert(sizeof(struct type) == (n), #type " size")
#define FLINT_CHECK_OFF(type, field, n)                                                            \
	_Static_assert(offsetof(struct type, field) == (n), #type "." #field " offset")

_Static_assert(IOMMU_DESTROY == 0x3b80, "IOMMU_DESTROY");
_Static_assert(IOMMU_IOAS_ALLOC == 0x3b81, "IOMMU_IOAS_ALLOC");
_Static_assert(IOMMU_IOAS_IOVA_RANGES == 0x3b84, "IOMMU_IOAS_IOVA_RANGES");
_Static_assert(IOMMU_IOAS_MAP == 0x3b85, "IOMMU_IOAS_MAP");
_Static_assert(IOMMU_IOAS_UNMAP == 0x3b86, "IOMMU_IOAS_UNMAP");
_Static_assert(IOMMU_OPTION == 0x3b87, "IOMMU_OPTION");
_Static_assert(IOMMU_HWPT_ALLOC == 0x3b89, "IOMMU_HWPT_ALLOC");
_Static_assert(IOMMU_FAULT_QUEUE_ALLOC == 0x3b8e, "IOMMU_FAULT_QUEUE_ALLOC");
_Static_assert(IOMMU_IOAS_MAP_FILE == 0x3b8f, "IOMMU_IOAS_MAP_FILE");
_Static_assert(VFIO_DEVICE_BIND_IOMMUFD == 0x3b76, "VFIO_DEVICE_BIND_IOMMUFD");
_Static_assert(VFIO_DEVICE_ATTACH_IOMMUFD_PT == 0x3b77, "VFIO_DEVICE_ATTACH_IOMMUFD_PT");
_Static_assert(VFIO_DEVICE_DETACH_IOMMUFD_PT == 0x3b78, "VFIO_DEVICE_DETACH_IOMMUFD_PT");
_Static_assert(VFIO_DEVICE_GET_INFO == 0x3b6b && VFIO_DEVICE_RESET == 0x3b6f, "VFIO device");

FLINT_CHECK_SIZE(iommu_destroy, 8);
FLINT_CHECK_SIZE(iommu_ioas_alloc, 12);
FLINT_CHECK_OFF(iommu_ioas_alloc, out_ioas_id, 8);
FLINT_CHECK_SIZE(iommu_ioas_iova_ranges, 32);
FLINT_CHECK_OFF(iommu_ioas_iova_ranges, allowed_iovas, 16);
FLINT_CHECK_OFF(iommu_ioas_iova_ranges, out_iova_alignment, 24);
FLINT_CHECK_SIZE(iommu_iova_range, 16);
FLINT_CHECK_SIZE(iommu_ioas_map, 40);
FLINT_CHECK_OFF(iommu_ioas_map, ioas_id, 8);
FLINT_CHECK_OFF(iommu_ioas_map, user_va, 16);
FLINT_CHECK_OFF(iommu_ioas_map, length, 24);
FLINT_CHECK_OFF(iommu_ioas_map, iova, 32);
FLINT_CHECK_SIZE(iommu_ioas_map_file, 40);
FLINT_CHECK_OFF(iommu_ioas_map_file, fd, 12);
FLINT_CHECK_OFF(iommu_ioas_map_file, start, 16);
FLINT_CHECK_OFF(iommu_ioas_map_file, iova, 32);
FLINT_CHECK_SIZE(iommu_ioas_unmap, 24);
FLINT_CHECK_OFF(iommu_ioas_unmap, iova, 8);
FLINT_CHECK_OFF(iommu_ioas_unmap, length, 16);
FLINT_CHECK_SIZE(iommu_option, 24);
FLINT_CHECK_OFF(iommu_option, op, 8);
FLINT_CHECK_OFF(iommu_option, object_id, 12);
FLINT_CHECK_OFF(iommu_option, val64, 16);
FLINT_CHECK_SIZE(iommu_hwpt_alloc, 48);
FLINT_CHECK_OFF(iommu_hwpt_alloc, pt_id, 12);
FLINT_CHECK_OFF(iommu_hwpt_alloc, out_hwpt_id, 16);
FLINT_CHECK_OFF(iommu_hwpt_alloc, data_type, 24);
FLINT_CHECK_OFF(iommu_hwpt_alloc, data_uptr, 32);
FLINT_CHECK_OFF(iommu_hwpt_alloc, fault_id, 40);
FLINT_CHECK_SIZE(iommu_fault_alloc, 16);
FLINT_CHECK_OFF(iommu_fault_alloc, out_fault_id, 8);
FLINT_CHECK_OFF(iommu_fault_alloc, out_fault_fd, 12);
FLINT_CHECK_SIZE(iommu_hwpt_pgfault, 40);
FLINT_CHECK_OFF(iommu_hwpt_pgfault, dev_id, 4);
FLINT_CHECK_OFF(iommu_hwpt_pgfault, pasid, 8);
FLINT_CHECK_OFF(iommu_hwpt_pgfault, grpid, 12);
FLINT_CHECK_OFF(iommu_hwpt_pgfault, perm, 16);
FLINT_CHECK_OFF(iommu_hwpt_pgfault, addr, 24);
FLINT_CHECK_OFF(iommu_hwpt_pgfault, length, 32);
FLINT_CHECK_OFF(iommu_hwpt_pgfault, cookie, 36);
FLINT_CHECK_SIZE(iommu_hwpt_page_response, 8);
FLINT_CHECK_OFF(iommu_hwpt_page_response, code, 4);
/* Newer headers append fields (a token, a pasid); the kernel takes argsz either way. */
#define FLINT_CHECK_MIN_SIZE(type, n) _Static_assert(sizeof(struct type) >= (n), #type " size")
FLINT_CHECK_MIN_SIZE(vfio_device_bind_iommufd, 16);
FLINT_CHECK_OFF(vfio_device_bind_iommufd, iommufd, 8);
FLINT_CHECK_OFF(vfio_device_bind_iommufd, out_devid, 12);
FLINT_CHECK_MIN_SIZE(vfio_device_attach_iommufd_pt, 12);
FLINT_CHECK_OFF(vfio_device_attach_iommufd_pt, pt_id, 8);
FLINT_CHECK_MIN_SIZE(vfio_device_detach_iommufd_pt, 8);
/* Older headers lack the trailing pad; the kernel only needs the fields up to num_irqs. */
FLINT_CHECK_OFF(vfio_device_info, num_irqs, 12);
FLINT_CHECK_OFF(vfio_device_info, cap_offset, 16);
FLINT_CHECK_SIZE(vfio_region_info, 32);
FLINT_CHECK_OFF(vfio_region_info, size, 16);
FLINT_CHECK_OFF(vfio_region_info, offset, 24);
FLINT_CHECK_SIZE(vfio_irq_info, 16);
FLINT_CHECK_SIZE(vfio_irq_set, 20);
_Static_assert(IOMMU_HWPT_FAULT_ID_VALID == 4 && IOMMU_PGFAULT_FLAGS_LAST_PAGE == 2,
               "iommufd flag values");
_Static_assert(KVM_DEV_VFIO_FILE == 1 && KVM_DEV_VFIO_FILE_ADD == 1, "KVM VFIO file attr");

#endif
