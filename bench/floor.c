/*
 * floor: the KVM work flint does to boot the startup benchmark's VM, and nothing else.
 * A helper for bench/startup.sh; built by that script into $BUILD/bench/floor.
 *
 *   floor KERNEL MEM_MIB CMDLINE
 *
 * KERNEL is a PVH ELF (build/guest/pvh.elf), booted on 1 vCPU with MEM_MIB of guest RAM
 * (below 3 GiB: one memory slot). The exit status is what flint's and QEMU's are: the guest
 * writes v to port 0xf4, the floor exits (v << 1) | 1. Anything else the guest does that this
 * VM does not need is printed and the floor exits 125.
 *
 * The same KVM calls as flint, in flint's order (vmm/vm.c, vmm/vcpu.c, vmm/x86/, boot/):
 *   memory  memfd_create(MFD_CLOEXEC) + ftruncate, mmap MAP_SHARED | MAP_NORESERVE
 *   load    the PT_LOAD segments, the cmdline, hvm_start_info + memory map, the GDT
 *   vm      open /dev/kvm, KVM_GET_API_VERSION, KVM_GET_VCPU_MMAP_SIZE, KVM_CREATE_VM,
 *           KVM_SET_TSS_ADDR, KVM_SET_IDENTITY_MAP_ADDR, KVM_CREATE_IRQCHIP,
 *           KVM_CREATE_PIT2 (speaker dummy), KVM_SET_USER_MEMORY_REGION
 *   vcpu    KVM_GET_SUPPORTED_CPUID, KVM_CREATE_VCPU, mmap of kvm_run, KVM_SET_CPUID2 (flint's
 *           edits for vCPU 0 of 1), KVM_SET_MSRS (flint's list), KVM_GET/SET_LAPIC (LINT0
 *           ExtINT, LINT1 NMI), KVM_SET_XCRS, KVM_SET_FPU, KVM_GET/SET_SREGS, KVM_SET_REGS
 *   run     KVM_RUN on the main thread: UART at 0x3f8 (output dropped, as flint
 *           --no-console; LSR reads say "transmitter empty"), boot-timer write at
 *           0xC0000000 (ignored), port 0xf4 (exit)
 *
 * What flint does and the floor leaves out, because this VM does not need it:
 *   - KVM_CHECK_EXTENSION for each capability flint needs (only flint's checking);
 *   - MADV_DONTDUMP on guest RAM (keeps it out of core dumps; no KVM work);
 *   - the MP table (the payload reads only hvm_start_info, its cmdline and memory map);
 *   - the IRQ fds of the serial port and the i8042 (KVM_IRQFD: this payload takes no
 *     interrupt), and every device model;
 *   - the vCPU thread, capabilities, seccomp, the event loop, the config file, logging;
 *   - teardown: at the exit port the floor calls exit() with every fd and mapping still
 *     open, so the kernel frees the vCPU, the VM and guest RAM at process exit.
 *
 * Prints one line to stderr before it exits (the contract shared with flint's
 * --log-level debug): absolute CLOCK_MONOTONIC ns at the end of each phase,
 *   phases: main=NS config=NS memory=NS load=NS vm=NS devices=NS vcpu=NS sandbox=NS
 *           first_run=NS guest_exit=NS exit=NS
 * (one line). The floor has no config, devices or sandbox: config = main, devices = vm,
 * sandbox = vcpu.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* The guest-physical layout flint uses (vmm/x86/layout.h). */
#define GDT_ADDR      0x500ULL
#define PVH_INFO      0x6000ULL
#define PVH_MEMMAP    0x6100ULL
#define CMDLINE_ADDR  0x20000ULL
#define CMDLINE_MAX   2047 /* flint's limit for an ELF kernel */
#define EBDA          0x9fc00ULL
#define LOW_RAM_END   0xa0000ULL
#define KERNEL_ADDR   0x100000ULL
#define MMIO_HOLE     0xC0000000ULL /* 3 GiB: RAM below, the boot timer at its start */
#define KVM_TSS       0xFFFBD000ULL
#define KVM_IDENTITY  0xFFFBC000ULL
#define BOOT_TIMER    0xC0000000ULL
#define UART_BASE     0x3f8
#define UART_LSR      0x3fd
#define UART_LSR_IDLE 0x60 /* THR empty, transmitter empty */
#define EXIT_PORT     0xf4

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC          0x336ec578

#define CPUID_MAX_ENTRIES 256

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
} __attribute__((packed));

struct hvm_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
} __attribute__((packed));

enum {
	P_MAIN,
	P_CONFIG,
	P_MEMORY,
	P_LOAD,
	P_VM,
	P_DEVICES,
	P_VCPU,
	P_SANDBOX,
	P_FIRST_RUN,
	P_GUEST_EXIT,
	P_EXIT,
	P_COUNT
};
static const char *const phase_names[P_COUNT] = { "main",      "config",     "memory", "load",
	                                          "vm",        "devices",    "vcpu",   "sandbox",
	                                          "first_run", "guest_exit", "exit" };
static long long phase[P_COUNT];

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static _Noreturn void fail(const char *what)
{
	fprintf(stderr, "floor: %s: %s\n", what, errno ? strerror(errno) : "unexpected");
	exit(125);
}

static void kvm(int fd, unsigned long req, const void *arg, const char *name)
{
	errno = 0;
	if (ioctl(fd, req, arg) < 0)
		fail(name);
}

static uint8_t *ram;
static uint64_t ram_size;

static void *gpa(uint64_t addr, uint64_t len)
{
	if (addr > ram_size || len > ram_size - addr) {
		errno = 0;
		fail("guest address outside RAM");
	}
	return ram + addr;
}

static void pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	errno = 0;
	if (pread(fd, buf, len, (off_t)off) != (ssize_t)len)
		fail("reading the kernel");
}

/* PT_LOAD segments into guest RAM; returns the PVH entry from the Xen note. */
static uint32_t load_elf(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint32_t entry = 0;
	Elf64_Ehdr eh;

	if (fd < 0)
		fail(path);
	pread_all(fd, &eh, sizeof(eh), 0);
	errno = 0;
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_phentsize != sizeof(Elf64_Phdr))
		fail("not a 64-bit ELF");
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		pread_all(fd, &ph, sizeof(ph), eh.e_phoff + (uint64_t)i * sizeof(ph));
		if (ph.p_type == PT_LOAD) {
			uint8_t *dst = gpa(ph.p_paddr, ph.p_memsz);
			pread_all(fd, dst, ph.p_filesz, ph.p_offset);
			memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
		} else if (ph.p_type == PT_NOTE && !entry && ph.p_filesz <= 4096) {
			uint8_t notes[4096];
			uint64_t off = 0;

			pread_all(fd, notes, ph.p_filesz, ph.p_offset);
			while (ph.p_filesz - off >= sizeof(Elf64_Nhdr)) {
				Elf64_Nhdr nh;
				memcpy(&nh, notes + off, sizeof(nh));
				uint64_t name = off + sizeof(nh);
				uint64_t desc = name + ((nh.n_namesz + 3ULL) & ~3ULL);
				off = desc + ((nh.n_descsz + 3ULL) & ~3ULL);
				if (off > ph.p_filesz)
					break;
				if (nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh.n_namesz == 4 &&
				    memcmp(notes + name, "Xen", 4) == 0 && nh.n_descsz >= 4)
					memcpy(&entry, notes + desc, 4);
			}
		}
	}
	close(fd);
	errno = 0;
	if (!entry)
		fail("no Xen PHYS32_ENTRY note");
	return entry;
}

/* hvm_start_info, its memory map and the cmdline, as boot/pvh.c and boot/loader.c write them. */
static void write_pvh(const char *cmdline)
{
	struct hvm_memmap_entry map[] = {
		{ 0, EBDA, 1, 0 },
		{ EBDA, LOW_RAM_END - EBDA, 2, 0 },
		{ KERNEL_ADDR, ram_size - KERNEL_ADDR, 1, 0 },
	};
	struct hvm_start_info si = {
		.magic = HVM_START_MAGIC,
		.version = 1,
		.cmdline_paddr = CMDLINE_ADDR,
		.memmap_paddr = PVH_MEMMAP,
		.memmap_entries = sizeof(map) / sizeof(map[0]),
	};
	size_t len = strlen(cmdline);

	errno = 0;
	if (len > CMDLINE_MAX)
		fail("command line too long");
	memcpy(gpa(CMDLINE_ADDR, len + 1), cmdline, len + 1);
	memcpy(gpa(PVH_INFO, sizeof(si)), &si, sizeof(si));
	memcpy(gpa(PVH_MEMMAP, sizeof(map)), map, sizeof(map));
}

/* Flat 32-bit segments (boot/regs.c's GDT for protected mode): null, null, code, data, TSS. */
#define GDT_CODE32 0xc09bULL
#define GDT_DATA   0xc093ULL
#define GDT_TSS    0x808bULL

static uint64_t gdt_entry(uint64_t flags, uint64_t base, uint64_t limit)
{
	return ((base & 0xff000000ULL) << 32) | ((flags & 0xf0ffULL) << 40) |
	       ((limit & 0xf0000ULL) << 32) | ((base & 0xffffffULL) << 16) | (limit & 0xffffULL);
}

static struct kvm_segment segment(uint64_t flags, uint16_t selector)
{
	return (struct kvm_segment){
		.limit = 0xffffffff,
		.selector = selector,
		.type = flags & 0xf,
		.present = (flags >> 7) & 1,
		.dpl = (flags >> 5) & 3,
		.db = (flags >> 14) & 1,
		.s = (flags >> 4) & 1,
		.l = (flags >> 13) & 1,
		.g = (flags >> 15) & 1,
	};
}

static void write_gdt(void)
{
	uint64_t gdt[5] = { 0, 0, gdt_entry(GDT_CODE32, 0, 0xfffff),
		            gdt_entry(GDT_DATA, 0, 0xfffff), gdt_entry(GDT_TSS, 0, 0xfffff) };

	memcpy(gpa(GDT_ADDR, sizeof(gdt)), gdt, sizeof(gdt));
}

/* vmm/x86/cpuid.c's edits for vCPU 0 of 1, no SMT. */
static void patch_cpuid(struct kvm_cpuid2 *c)
{
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffff) | (0U << 24) | (1U << 16);
			e->ecx |= 1U << 31; /* hypervisor */
			break;
		case 4:
			e->eax &= 0x3ff;
			break;
		case 0xb:
		case 0x1f:
			e->edx = 0;
			if (e->index == 0) {
				e->eax = 0;
				e->ebx = 1;
				e->ecx = 0 | (1U << 8);
			} else if (e->index == 1) {
				e->eax = 0;
				e->ebx = 1;
				e->ecx = 1 | (2U << 8);
			} else {
				e->eax = e->ebx = 0;
				e->ecx = e->index;
			}
			break;
		default:
			break;
		}
	}
}

static void set_msrs(int vcpu)
{
	/* SYSENTER_CS/ESP/EIP, STAR, LSTAR, CSTAR, SYSCALL_MASK, KERNEL_GS_BASE, TSC: all 0 */
	static const uint32_t zero[] = { 0x174,      0x175,      0x176,      0xc0000081, 0xc0000082,
		                         0xc0000083, 0xc0000084, 0xc0000102, 0x10 };
	struct kvm_msrs *m = calloc(1, sizeof(*m) + 11 * sizeof(m->entries[0]));
	unsigned n = 0;

	if (!m)
		fail("calloc");
	for (; n < sizeof(zero) / sizeof(zero[0]); n++)
		m->entries[n].index = zero[n];
	m->entries[n].index = 0x1a0; /* MISC_ENABLE: fast strings */
	m->entries[n++].data = 1;
	m->entries[n].index = 0x2ff; /* MTRR_DEF_TYPE: enabled, write-back */
	m->entries[n++].data = (1ULL << 11) | 6;
	m->nmsrs = n;
	errno = 0;
	if (ioctl(vcpu, KVM_SET_MSRS, m) != (int)n)
		fail("KVM_SET_MSRS");
}

static void set_lapic(int vcpu)
{
	struct kvm_lapic_state l;
	uint32_t v;

	kvm(vcpu, KVM_GET_LAPIC, &l, "KVM_GET_LAPIC");
	memcpy(&v, l.regs + 0x350, 4); /* LVT0: ExtINT */
	v = (v & ~(7U << 8)) | (7U << 8);
	memcpy(l.regs + 0x350, &v, 4);
	memcpy(&v, l.regs + 0x360, 4); /* LVT1: NMI */
	v = (v & ~(7U << 8)) | (4U << 8);
	memcpy(l.regs + 0x360, &v, 4);
	kvm(vcpu, KVM_SET_LAPIC, &l, "KVM_SET_LAPIC");
}

static void set_xcr0(int vcpu, const struct kvm_cpuid2 *c)
{
	struct kvm_xcrs x = { .nr_xcrs = 1 };
	uint64_t mask = 0;

	for (unsigned i = 0; i < c->nent; i++)
		if (c->entries[i].function == 0xd && c->entries[i].index == 0)
			mask = c->entries[i].eax | ((uint64_t)c->entries[i].edx << 32);
	x.xcrs[0].value = (mask & 0x2ffULL) | 1;
	kvm(vcpu, KVM_SET_XCRS, &x, "KVM_SET_XCRS");
}

static void set_boot_regs(int vcpu, uint32_t entry)
{
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
	struct kvm_regs regs = { .rflags = 2, .rip = entry, .rbx = PVH_INFO };
	struct kvm_sregs s;
	struct kvm_segment data = segment(GDT_DATA, 0x18);

	kvm(vcpu, KVM_SET_FPU, &fpu, "KVM_SET_FPU");
	kvm(vcpu, KVM_GET_SREGS, &s, "KVM_GET_SREGS");
	s.gdt.base = GDT_ADDR;
	s.gdt.limit = 5 * 8 - 1;
	s.idt.base = 0;
	s.idt.limit = 0;
	s.cs = segment(GDT_CODE32, 0x10);
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	s.tr = segment(GDT_TSS, 0x20);
	s.cr0 = 0x1 | 0x10; /* PE, ET */
	s.cr4 = 0;
	s.efer = 0;
	kvm(vcpu, KVM_SET_SREGS, &s, "KVM_SET_SREGS");
	kvm(vcpu, KVM_SET_REGS, &regs, "KVM_SET_REGS");
}

static _Noreturn void leave(int code)
{
	phase[P_EXIT] = now_ns();
	fprintf(stderr, "phases:");
	for (int i = 0; i < P_COUNT; i++)
		fprintf(stderr, " %s=%lld", phase_names[i], phase[i]);
	fprintf(stderr, "\n");
	exit(code);
}

static _Noreturn void unexpected(const struct kvm_run *run)
{
	if (run->exit_reason == KVM_EXIT_IO)
		fprintf(stderr, "floor: unexpected port I/O %s at %#x (size %u)\n",
		        run->io.direction == KVM_EXIT_IO_OUT ? "write" : "read", run->io.port,
		        run->io.size);
	else if (run->exit_reason == KVM_EXIT_MMIO)
		fprintf(stderr, "floor: unexpected MMIO %s at %#llx (len %u)\n",
		        run->mmio.is_write ? "write" : "read",
		        (unsigned long long)run->mmio.phys_addr, run->mmio.len);
	else
		fprintf(stderr, "floor: unexpected exit reason %u\n", run->exit_reason);
	exit(125);
}

/* Port I/O: the UART and the exit port. Returns -1 to go on, else the exit code. */
static int port_io(struct kvm_run *run)
{
	uint8_t *data = (uint8_t *)run + run->io.data_offset;

	if (run->io.port == EXIT_PORT && run->io.direction == KVM_EXIT_IO_OUT) {
		uint32_t v = 0;
		memcpy(&v, data, run->io.size <= 4 ? run->io.size : 4);
		return (int)(((v << 1) | 1) & 0xff);
	}
	if (run->io.port < UART_BASE || run->io.port > UART_BASE + 7)
		unexpected(run);
	if (run->io.direction == KVM_EXIT_IO_IN)
		memset(data, run->io.port == UART_LSR ? UART_LSR_IDLE : 0,
		       (size_t)run->io.size * run->io.count);
	return -1; /* output dropped, as flint --no-console */
}

int main(int argc, char **argv)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	uint64_t identity = KVM_IDENTITY;
	struct kvm_cpuid2 *cpuid;
	struct kvm_run *run;
	int kvm_fd, vm, vcpu, memfd, run_size, code = -1;
	uint32_t entry;

	/* No config: config = main, and parsing the three arguments counts as memory. */
	phase[P_MAIN] = phase[P_CONFIG] = now_ns();
	if (argc != 4) {
		fprintf(stderr, "usage: floor KERNEL MEM_MIB CMDLINE\n");
		return 125;
	}
	ram_size = strtoull(argv[2], NULL, 10) << 20;
	if (ram_size <= KERNEL_ADDR || ram_size > MMIO_HOLE) {
		fprintf(stderr, "floor: MEM_MIB must be above 1 and at most 3072\n");
		return 125;
	}

	memfd = memfd_create("floor-guest-ram", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, (off_t)ram_size) < 0)
		fail("guest memory");
	ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, memfd, 0);
	if (ram == MAP_FAILED)
		fail("mmap of guest memory");
	phase[P_MEMORY] = now_ns();

	entry = load_elf(argv[1]);
	write_pvh(argv[3]);
	write_gdt();
	phase[P_LOAD] = now_ns();

	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0)
		fail("/dev/kvm");
	errno = 0;
	if (ioctl(kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		fail("KVM_GET_API_VERSION");
	run_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	vm = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (vm < 0 || run_size <= 0)
		fail("KVM_CREATE_VM");
	if (ioctl(vm, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS) < 0)
		fail("KVM_SET_TSS_ADDR");
	kvm(vm, KVM_SET_IDENTITY_MAP_ADDR, &identity, "KVM_SET_IDENTITY_MAP_ADDR");
	if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
		fail("KVM_CREATE_IRQCHIP");
	kvm(vm, KVM_CREATE_PIT2, &pit, "KVM_CREATE_PIT2");
	kvm(vm, KVM_SET_USER_MEMORY_REGION,
	    &(struct kvm_userspace_memory_region){ .slot = 0,
	                                           .guest_phys_addr = 0,
	                                           .memory_size = ram_size,
	                                           .userspace_addr = (uintptr_t)ram },
	    "KVM_SET_USER_MEMORY_REGION");
	phase[P_VM] = phase[P_DEVICES] = now_ns();

	cpuid = calloc(1, sizeof(*cpuid) + CPUID_MAX_ENTRIES * sizeof(cpuid->entries[0]));
	if (!cpuid)
		fail("calloc");
	cpuid->nent = CPUID_MAX_ENTRIES;
	kvm(kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid, "KVM_GET_SUPPORTED_CPUID");
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		fail("KVM_CREATE_VCPU");
	run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		fail("mmap of kvm_run");
	patch_cpuid(cpuid);
	kvm(vcpu, KVM_SET_CPUID2, cpuid, "KVM_SET_CPUID2");
	set_msrs(vcpu);
	set_lapic(vcpu);
	set_xcr0(vcpu, cpuid);
	set_boot_regs(vcpu, entry);
	phase[P_VCPU] = phase[P_SANDBOX] = now_ns();

	while (code < 0) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fail("KVM_RUN");
		}
		if (!phase[P_FIRST_RUN])
			phase[P_FIRST_RUN] = now_ns();
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			code = port_io(run);
			break;
		case KVM_EXIT_MMIO:
			if (!run->mmio.is_write || run->mmio.phys_addr != BOOT_TIMER)
				unexpected(run);
			break; /* the boot timer: flint logs the time, the floor needs nothing */
		default:
			unexpected(run);
		}
	}
	phase[P_GUEST_EXIT] = now_ns();
	leave(code);
}
