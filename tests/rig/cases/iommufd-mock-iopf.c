/* iommufd-mock-iopf: the fault-queue path flint depends on, end to end, on
 * iommufd's mock device (CONFIG_IOMMUFD_TEST) since no emulated device here
 * can issue PRI page requests:
 *   IOAS_ALLOC -> MOCK_DOMAIN -> FAULT_QUEUE_ALLOC ->
 *   HWPT_ALLOC(pt = IOAS, FAULT_ID_VALID) -> MOCK_DOMAIN_REPLACE ->
 *   TRIGGER_IOPF -> POLLIN -> read one 40-byte record -> IOAS_MAP ->
 *   respond SUCCESS -> MD_CHECK_MAP; then a second fault answered INVALID. */
#include <fcntl.h>
#include <linux/iommufd.h>
#include <poll.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "iommufd_test.h"
#include "rig.h"

#define IOVA (MOCK_APERTURE_START + 0x100000) /* inside the mock page table */
#define LEN 0x4000

_Static_assert(sizeof(struct iommu_hwpt_pgfault) == 40, "pgfault record size");
_Static_assert(sizeof(struct iommu_hwpt_page_response) == 8, "page response size");

static int fd;

static void test_cmd(struct iommu_test_cmd *cmd, const char *what)
{
    cmd->size = sizeof(*cmd);
    if (ioctl(fd, IOMMU_TEST_CMD, cmd) == -1)
        rig_fail("IOMMU_TEST_CMD %s (op %u): %s", what, cmd->op, strerror(errno));
}

static void trigger(uint32_t idev, uint32_t grpid, uint64_t addr)
{
    struct iommu_test_cmd c = {
        .op = IOMMU_TEST_OP_TRIGGER_IOPF,
        .trigger_iopf = {
            .dev_id = idev, .pasid = 0, .grpid = grpid,
            .perm = IOMMU_PGFAULT_PERM_READ | IOMMU_PGFAULT_PERM_WRITE, .addr = addr,
        },
    };
    test_cmd(&c, "TRIGGER_IOPF");
}

/* Wait for one fault group and read it; it must be a single LAST_PAGE record. */
static struct iommu_hwpt_pgfault read_fault(int fault_fd, uint32_t idev, uint32_t grpid,
                                            uint64_t addr)
{
    struct pollfd p = { .fd = fault_fd, .events = POLLIN };
    int n = CHECK_SYS(poll(&p, 1, 5000));
    CHECK(n == 1 && (p.revents & POLLIN), "fault fd not readable (poll %d, revents %#x)", n,
          p.revents);

    struct iommu_hwpt_pgfault rec[2];
    ssize_t got = CHECK_SYS(read(fault_fd, rec, sizeof(rec)));
    CHECK(got == sizeof(rec[0]), "read %zd bytes, want one 40-byte record", got);
    CHECK(rec[0].flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE, "flags %#x lack LAST_PAGE", rec[0].flags);
    CHECK(!(rec[0].flags & IOMMU_PGFAULT_FLAGS_PASID_VALID), "flags %#x: PASID_VALID", rec[0].flags);
    CHECK(rec[0].cookie >= 1, "cookie %u", rec[0].cookie);
    CHECK(rec[0].dev_id == idev, "dev_id %u, want %u", rec[0].dev_id, idev);
    CHECK(rec[0].grpid == grpid, "grpid %u, want %u", rec[0].grpid, grpid);
    CHECK(rec[0].addr == addr, "addr %#llx, want %#llx", (unsigned long long)rec[0].addr,
          (unsigned long long)addr);

    /* Delivered groups no longer make the fd readable, and read gives 0. */
    n = CHECK_SYS(poll(&p, 1, 0));
    CHECK(n == 0, "fault fd still readable after the read (revents %#x)", p.revents);
    got = CHECK_SYS(read(fault_fd, rec, sizeof(rec[0])));
    CHECK(got == 0, "second read returned %zd", got);
    return rec[0];
}

static void respond(int fault_fd, uint32_t cookie, uint32_t code)
{
    struct iommu_hwpt_page_response r = { .cookie = cookie, .code = code };
    ssize_t n = CHECK_SYS(write(fault_fd, &r, sizeof(r)));
    CHECK(n == sizeof(r), "response write returned %zd", n);
}

int main(void)
{
    fd = CHECK_SYS(open("/dev/iommu", O_RDWR | O_CLOEXEC));

    struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
    CHECK_SYS(ioctl(fd, IOMMU_IOAS_ALLOC, &alloc));
    uint32_t ioas = alloc.out_ioas_id;

    struct iommu_test_cmd md = { .op = IOMMU_TEST_OP_MOCK_DOMAIN, .id = ioas };
    test_cmd(&md, "MOCK_DOMAIN");
    uint32_t stdev = md.mock_domain.out_stdev_id, idev = md.mock_domain.out_idev_id;

    struct iommu_fault_alloc fa = { .size = sizeof(fa) };
    CHECK_SYS(ioctl(fd, IOMMU_FAULT_QUEUE_ALLOC, &fa));
    int fault_fd = fa.out_fault_fd;

    struct iommu_hwpt_alloc ha = {
        .size = sizeof(ha),
        .flags = IOMMU_HWPT_FAULT_ID_VALID,
        .dev_id = idev,
        .pt_id = ioas,
        .fault_id = fa.out_fault_id,
    };
    CHECK_SYS(ioctl(fd, IOMMU_HWPT_ALLOC, &ha));
    uint32_t hwpt = ha.out_hwpt_id;

    struct iommu_test_cmd rep = {
        .op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, .id = stdev,
        .mock_domain_replace = { .pt_id = hwpt },
    };
    test_cmd(&rep, "MOCK_DOMAIN_REPLACE");

    /* Fault 1: resolve it by mapping the page, answer SUCCESS. */
    trigger(idev, 1, IOVA);
    struct iommu_hwpt_pgfault f1 = read_fault(fault_fd, idev, 1, IOVA);

    uint8_t *buf = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(buf != MAP_FAILED, "mmap");
    memset(buf, 0xa5, LEN);
    struct iommu_ioas_map map = {
        .size = sizeof(map),
        .flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
        .ioas_id = ioas,
        .user_va = (uintptr_t)buf,
        .length = LEN,
        .iova = IOVA,
    };
    CHECK_SYS(ioctl(fd, IOMMU_IOAS_MAP, &map));
    respond(fault_fd, f1.cookie, IOMMUFD_PAGE_RESP_SUCCESS);

    /* The fault hwpt's (mock) page table now translates IOVA to our pages. */
    struct iommu_test_cmd chk = {
        .op = IOMMU_TEST_OP_MD_CHECK_MAP, .id = hwpt,
        .check_map = { .iova = IOVA, .length = LEN, .uptr = (uintptr_t)buf },
    };
    test_cmd(&chk, "MD_CHECK_MAP");

    /* An answered cookie cannot be answered again. */
    struct iommu_hwpt_page_response again = { .cookie = f1.cookie, .code = 0 };
    ssize_t n = write(fault_fd, &again, sizeof(again));
    CHECK(n == -1 && errno == EINVAL, "second response to cookie %u: %zd errno %d", f1.cookie, n,
          errno);

    /* Fault 2: refuse it (INVALID); that must be accepted too. */
    trigger(idev, 2, IOVA + 0x100000);
    struct iommu_hwpt_pgfault f2 = read_fault(fault_fd, idev, 2, IOVA + 0x100000);
    /* (Its cookie may equal f1's: an answered cookie is freed and reused.) */
    respond(fault_fd, f2.cookie, IOMMUFD_PAGE_RESP_INVALID);

    rig_info("faults at %#llx (cookie %u, SUCCESS) and %#llx (cookie %u, INVALID) handled",
             (unsigned long long)f1.addr, f1.cookie, (unsigned long long)f2.addr, f2.cookie);
    close(fault_fd);
    close(fd);
    return 0;
}
