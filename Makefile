# flint — build, test and demo. Plain GNU make; objects under $(BUILD)/.
#   make            build build/flint (and the sanitizer build, build/asan/flint)
#   make check      install deps, build, run unit tests (plain + ASan/UBSan), then the rig
#                   (which also runs the KVM tests when this host has no usable /dev/kvm)
#   make check-unit the fast part of make check: the unit tests, and the KVM tests
#                   when this host's /dev/kvm works (else they are left to the rig), then
#                   the fuzz targets briefly (make fuzz: longer; tests/fuzz/fuzz.mk), and
#                   the rig runner's self-test (tests/rig/test-run.sh, a fake QEMU)
#   make demo       boot configs/demo.json
#   make soak       1000 start/stop cycles of the smallest guest (make check runs 100)
BUILD   ?= build
CC      ?= cc
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo 0.0.0-dev)

# Debian packages flint needs to build and test; `make deps` installs what is missing.
# libfdt joins when the issue that uses it lands.
DEPS := build-essential pkg-config libevent-dev libjansson-dev libcmocka-dev linux-libc-dev \
	libseccomp-dev qemu-system-x86

# The order is the static link's: a library before those it uses.
PKGS     := libevent_extra libevent_core jansson
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -DFLINT_VERSION='"$(VERSION)"' $(WARN) -I. $(PKG_CFLAGS) \
	-MMD -MP $(CFLAGS)
LDLIBS   = $(PKG_LIBS) -lpthread
# flint itself is linked statically, as a static PIE (its address space stays randomised):
# no loader mapping and relocating five libraries at every start, no lazy binding on first
# calls, and only the pages flint touches resident (issue #16, bench/README.md). The
# sanitizer build, the tests and the tools stay dynamic. glibc warns that its name lookups
# (getaddrinfo and the like, in libevent's evutil) would need its shared NSS modules at
# run time: flint never looks a name up (its sockets are Unix ones), so those are hidden.
STATIC_LDLIBS = $(shell pkg-config --libs --static $(PKGS) 2>/dev/null) -lpthread
# The relative relocations a static PIE applies to itself at every start are packed (RELR:
# 0.5 KiB instead of 52 KiB of .rela.dyn read and resident; glibc 2.36 applies them). The
# benchmark's floor (bench/floor.c) is linked the same way.
STATIC_PIE := -static-pie -Wl,-z,pack-relative-relocs
STATIC_LD_QUIET := -e 'in statically linked applications requires at runtime' -e ': in function `'
# ... and the link fails if flint's own code ever calls one (or dlopen, iconv).
NSS_CALLS := getaddrinfo|getnameinfo|gethostbyname2?|getpw(nam|uid)(_r)?|getgr(nam|gid)(_r)?
NSS_CALLS := $(NSS_CALLS)|getservbyname|getprotobyn(ame|umber)|initgroups|dlopen|iconv_open
SAN      := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

# Everything but main() is one library, built once per flavour: flint, the tests, the rig
# programs and the benchmarks all link it (build/libflint.a, build/asan/libflint.a).
SRC_DIRS := vmm vmm/api vmm/base vmm/config vmm/mmds vmm/x86 boot devices/legacy devices/pseudo devices/virtio devices/pci devices/vfio iommu
LIB_SRCS := $(filter-out vmm/main.c,$(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.c)))
# Test programs: tests/unit/test_*.c need no KVM, tests/kvm/test_*.c do (they run on the
# host's /dev/kvm when it works, else inside the rig: tests/kvm/where.sh decides).
UNIT_SUITES := $(patsubst tests/%.c,%,$(wildcard tests/unit/test_*.c))
KVM_SUITES  := $(patsubst tests/%.c,%,$(wildcard tests/kvm/test_*.c))
TEST_HELPER_SRCS := $(wildcard tests/lib/*.c) $(filter-out tests/unit/test_%,$(wildcard tests/unit/*.c))

# Two flavours of every object: plain in $(BUILD)/, sanitized in $(BUILD)/asan/.
OBJ      = $(patsubst %.c,$(1)/obj/%.o,$(2))
PLAIN_LIB := $(BUILD)/libflint.a
ASAN_LIB  := $(BUILD)/asan/libflint.a

.PHONY: all deps check check-build check-unit tests demo clean format bench-startup bench-fault bench-iommu-startup
# Keep test objects: make would otherwise delete them as intermediates.
.SECONDARY:
all: $(BUILD)/flint $(BUILD)/asan/flint $(PLAIN_LIB) $(ASAN_LIB)

# `make V=1` shows the full commands.
Q := $(if $(V),,@)

# Objects are made again when the flags they were made with change: each flavour's flags
# are kept in a stamp, rewritten only when they differ, that every object depends on.
# Plain objects keep each function in its own section, so that flint's link can lay the
# code it runs at start-up out together (vmm/text-order.ld).
PLAIN_CFLAGS = $(ALL_CFLAGS) -ffunction-sections
ASAN_CFLAGS = $(ALL_CFLAGS) $(SAN) -O1
# ... stamped per flavour without the version, which changes with every commit
stamp_flags = $(CC) $(filter-out -DFLINT_VERSION=%,$(1))
# A stamp's recipe: the target rewritten with TEXT only when it holds something else.
write_stamp = @mkdir -p $(dir $@); echo '$(1)' | cmp -s - $@ || echo '$(1)' >$@
$(BUILD)/obj/.flags: FORCE
	$(call write_stamp,$(call stamp_flags,$(PLAIN_CFLAGS)))
$(BUILD)/asan/obj/.flags: FORCE
	$(call write_stamp,$(call stamp_flags,$(ASAN_CFLAGS)))

# The version is left out of the stamps (it changes with every commit); the one object that
# prints it (--version) depends on a stamp of its own.
$(BUILD)/.version: FORCE
	$(call write_stamp,$(VERSION))
$(BUILD)/obj/vmm/cli.o $(BUILD)/asan/obj/vmm/cli.o: $(BUILD)/.version

$(BUILD)/obj/%.o: %.c $(BUILD)/obj/.flags
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(PLAIN_CFLAGS) -c $< -o $@
$(BUILD)/asan/obj/%.o: %.c $(BUILD)/asan/obj/.flags
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC asan $<")
	$(Q)$(CC) $(ASAN_CFLAGS) -c $< -o $@

# The seccomp programs: the lists in vmm/sandbox/ compiled with libseccomp at build time, by
# a generator that only the build runs (vmm/sandbox.h); flint carries the result as data.
SANDBOX_GEN_SRCS := $(wildcard vmm/sandbox/*.c)
$(BUILD)/sandbox-gen: $(call OBJ,$(BUILD),$(SANDBOX_GEN_SRCS))
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(shell pkg-config --libs libseccomp)
$(BUILD)/gen/sandbox_bpf.c: $(BUILD)/sandbox-gen
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GEN     $@")
	$(Q)$< plain >$@.tmp && mv $@.tmp $@
$(BUILD)/asan/gen/sandbox_bpf.c: $(BUILD)/sandbox-gen
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GEN     $@")
	$(Q)$< sanitized >$@.tmp && mv $@.tmp $@
$(BUILD)/obj/gen/sandbox_bpf.o: $(BUILD)/gen/sandbox_bpf.c $(BUILD)/obj/.flags
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(PLAIN_CFLAGS) -c $< -o $@
$(BUILD)/asan/obj/gen/sandbox_bpf.o: $(BUILD)/asan/gen/sandbox_bpf.c $(BUILD)/asan/obj/.flags
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC asan $<")
	$(Q)$(CC) $(ASAN_CFLAGS) -c $< -o $@

$(PLAIN_LIB): $(call OBJ,$(BUILD),$(LIB_SRCS)) $(BUILD)/obj/gen/sandbox_bpf.o
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^
$(ASAN_LIB): $(call OBJ,$(BUILD)/asan,$(LIB_SRCS)) $(BUILD)/asan/obj/gen/sandbox_bpf.o
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

# vmm/text-order.ld puts the code a start runs first, together (make text-order remakes it);
# the link map ($@.map) is what tests/text-order.sh and bench/text-order.sh read.
$(BUILD)/flint: $(BUILD)/obj/vmm/main.o $(PLAIN_LIB) vmm/text-order.ld
	@$(if $(Q),echo "  LD      $@")
	$(Q)if nm -u $(filter %.o %.a,$^) | grep -wE '$(NSS_CALLS)'; then \
		echo "$@: flint calls the name lookups above, which a static glibc cannot do" >&2; \
		exit 1; fi
	$(Q)$(CC) $(STATIC_PIE) -o $@ $(filter %.o %.a,$^) $(STATIC_LDLIBS) -Wl,-T,vmm/text-order.ld \
		-Wl,-Map,$@.map 2>$@.ld || { cat $@.ld; rm -f $@.ld; exit 1; }
	@grep -v $(STATIC_LD_QUIET) $@.ld >&2; rm -f $@.ld
$(BUILD)/asan/flint: $(BUILD)/asan/obj/vmm/main.o $(ASAN_LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(SAN) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(call OBJ,$(BUILD),$(TEST_HELPER_SRCS)) $(PLAIN_LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $^ $(LDLIBS) -lcmocka
$(BUILD)/asan/tests/%: $(BUILD)/asan/obj/tests/%.o $(call OBJ,$(BUILD)/asan,$(TEST_HELPER_SRCS)) $(ASAN_LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(SAN) -o $@ $^ $(LDLIBS) -lcmocka
# The soak harness (tests/kvm/soak.c): runs the flint binary, links none of it.
$(BUILD)/tests/soak: tests/kvm/soak.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $<
# Knows nothing of flint: only whether this host's /dev/kvm runs a guest.
$(BUILD)/tests/kvm-probe: tests/kvm/kvm_probe.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $<

SUITES    := $(UNIT_SUITES) $(KVM_SUITES)
TEST_BINS := $(addprefix $(BUILD)/tests/,$(SUITES)) $(addprefix $(BUILD)/asan/tests/,$(SUITES)) \
	$(BUILD)/tests/kvm-probe $(BUILD)/tests/soak
KVM_BINS  := $(addprefix $(BUILD)/tests/,$(KVM_SUITES)) $(addprefix $(BUILD)/asan/tests/,$(KVM_SUITES))

# After the variables above: rig.mk and flint.mk use them in rules.
include tests/guest/guest.mk
include tests/rig/rig.mk
include tests/rig/flint.mk
include tests/fuzz/fuzz.mk
DEPS += $(GUEST_DEPS) $(RIG_DEPS) $(FUZZ_DEPS)
# Plain `make` builds flint, whatever the fragments above define first.
.DEFAULT_GOAL := all

deps:
	@sh tests/deps.sh $(sort $(DEPS))

# Stage by stage (deps, build, unit, kernel, rig), each timed; says where the KVM tests ran.
check:
	@MAKE="$(MAKE)" bash tests/check.sh $(BUILD)

check-build: all tests $(GUEST_PAYLOADS) fuzz-build
tests: $(TEST_BINS)

# The unit tests, then the fuzz targets (tests/fuzz/fuzz.mk: a short run each and every
# seed and regression input replayed), then the rig's run.sh against a fake QEMU (its console
# watchdog: tests/rig/test-run.sh); all run, any failing fails.
check-unit: check-build
	@sh tests/run-unit.sh $(BUILD) $(SUITES); s=$$?; \
	sh tests/fuzz/run.sh check $(FUZZ_OUT) $(FUZZ_CHECK_SECONDS) $(FUZZ_NAMES) || s=1; \
	BUILD=$(BUILD) bash tests/rig/test-run.sh || s=1; \
	sh tests/text-order.sh $(BUILD) "$(CFLAGS)" || s=1; exit $$s

demo: deps
	$(MAKE) all $(GUEST_PAYLOADS)
	@sh tests/demo.sh $(BUILD)

# 1000 start/stop cycles of the smallest guest (make check runs 100, as rig case 69);
# SOAK_CYCLES=N for another count. On the host's /dev/kvm, else in the rig.
.PHONY: soak
SOAK_CYCLES ?= 1000
soak: $(BUILD)/flint $(BUILD)/tests/soak $(BUILD)/guest/elf64.elf $(BUILD)/tests/kvm-probe
	@sh tests/kvm/soak.sh $(BUILD) $(SOAK_CYCLES)

bench-startup: all guest-payloads $(BUILD)/tests/kvm-probe
	@sh bench/startup.sh $(BUILD)

# The benchmark's floor, linked as flint is; made again whenever it is asked for (well under
# a second), so that a floor built some other way is never measured.
.PHONY: FORCE
$(BUILD)/bench/floor: bench/floor.c FORCE
	@mkdir -p $(dir $@)
	$(Q)$(CC) -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror $(STATIC_PIE) -o $@ bench/floor.c

bench-fault: all
	@sh bench/fault.sh $(BUILD)

# Profile three starts (callgrind, on the host's /dev/kvm or in the rig) and rewrite
# vmm/text-order.ld from them; then flint is linked again with the new order.
.PHONY: text-order
text-order: all guest-payloads $(BUILD)/tests/kvm-probe
	@sh bench/text-order.sh $(BUILD)
	@$(MAKE) -s $(BUILD)/flint

bench-iommu-startup: all
	@sh bench/rig-startup.sh $(BUILD)
	@sh bench/iommu-e2e.sh $(BUILD)

format:
	clang-format -i $(foreach d,$(SRC_DIRS) vmm/sandbox,$(wildcard $(d)/*.[ch]))

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# I/O engine benchmark: blk_io's worker pool against io_uring, from the same event loop.
# liburing is the benchmark's alone (flint does not link it), so it is installed here, not
# in DEPS. Always relinked (well under a second): the library changes under it.
.PHONY: bench-blk-io
BENCH_BLK_IO_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) -I. $(PKG_CFLAGS) -O2 -g
bench-blk-io: $(PLAIN_LIB)
	@sh tests/deps.sh liburing-dev
	@mkdir -p $(BUILD)/bench
	@$(if $(Q),echo "  LD      $(BUILD)/bench/blk-io")
	$(Q)$(CC) $(BENCH_BLK_IO_CFLAGS) -o $(BUILD)/bench/blk-io bench/blk-io.c bench/blk_io_uring.c \
		$(PLAIN_LIB) $(LDLIBS) -luring
	$(BUILD)/bench/blk-io $(BENCH_BLK_IO_ARGS)

# virtio-blk and virtio-net throughput, flint against QEMU -M microvm, both on the rig's
# nested KVM (bench/virtio.sh; see bench/README.md).
.PHONY: bench-virtio
bench-virtio: $(BUILD)/flint
	@sh bench/virtio.sh $(BUILD)

# Cold page-request faults on the rig's real kernel (iommufd's mock device): flint's
# resolver against a naive read/IOMMU_IOAS_MAP/write floor (bench/fault-cold.sh; see
# bench/README.md). Not part of make check.
.PHONY: bench-fault-cold
bench-fault-cold: $(PLAIN_LIB)
	@sh bench/fault-cold.sh $(BUILD)
