# libFuzzer targets: tests/fuzz/fuzz_<name>.c, each an LLVMFuzzerTestOneInput over one of
# flint's parsers, built with clang and -fsanitize=fuzzer,address,undefined against a
# separate build of flint's sources with the same flags ($(BUILD)/fuzz/: not the gcc
# libflint.a). Included by the top-level Makefile, after LIB_SRCS and WARN.
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="config pci"]   fuzz each target N seconds
#   make fuzz-build                                            build the targets only
#   make fuzz-check   what check-unit runs: each target FUZZ_CHECK_SECONDS, then every
#                     corpus and regression input replayed; fails on any crash
# Seeds: tests/fuzz/corpus/<name>/ (read only); what fuzzing finds goes to
# $(BUILD)/fuzz/corpus/<name>/, crashes to $(BUILD)/fuzz/crashes/<name>/. An input that
# once crashed a target is kept in tests/fuzz/regressions/<name>/ and replayed for good.

# Debian's clang 14 and its compiler-rt (libFuzzer, the sanitizers' runtimes).
FUZZ_DEPS := clang-14 libclang-rt-14-dev
FUZZ_CC ?= clang-14
FUZZ_OUT := $(BUILD)/fuzz
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(addprefix $(FUZZ_OUT)/fuzz_,$(FUZZ_NAMES))
FUZZ_SAN := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -DFLINT_VERSION='"$(VERSION)"' $(WARN) -I. $(PKG_CFLAGS) \
	-MMD -MP -O1 -g $(FUZZ_SAN)
# The floors the targets reach: all of flint but the VM itself (vmm/*.c: KVM, the API's
# server); and what they share with the unit tests: the simulated IOMMU, the virtio driver,
# the fake VFIO device's set-up, the network frames.
FUZZ_LIB_SRCS := $(filter-out $(wildcard vmm/*.c) vmm/api/%,$(LIB_SRCS))
FUZZ_HELPER_SRCS := tests/unit/sim_iommu.c tests/lib/virtio_driver.c tests/lib/vfio_fake.c \
	tests/lib/netframe.c
FUZZ_LIB := $(FUZZ_OUT)/libflint.a
FUZZ_SECONDS ?= 60
FUZZ_CHECK_SECONDS ?= 10
FUZZ_TARGETS ?= $(FUZZ_NAMES)

$(FUZZ_OUT)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC fuzz $<")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_LIB): $(call OBJ,$(FUZZ_OUT),$(FUZZ_LIB_SRCS) $(FUZZ_HELPER_SRCS))
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(FUZZ_OUT)/fuzz_%: $(FUZZ_OUT)/obj/tests/fuzz/fuzz_%.o $(FUZZ_OUT)/obj/tests/fuzz/common.o $(FUZZ_LIB)
	@$(if $(Q),echo "  LD fuzz $@")
	$(Q)$(FUZZ_CC) $(FUZZ_SAN) -o $@ $^ $(LDLIBS)

.PHONY: fuzz fuzz-build fuzz-check
fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@sh tests/fuzz/run.sh fuzz $(FUZZ_OUT) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-check: fuzz-build
	@sh tests/fuzz/run.sh check $(FUZZ_OUT) $(FUZZ_CHECK_SECONDS) $(FUZZ_NAMES)

# clang (not gcc) says a struct ending in a flexible array may not be a member: msr.c
# builds KVM_SET_MSRS's argument that way, as the kernel's own users do.
$(FUZZ_OUT)/obj/vmm/x86/msr.o: FUZZ_CFLAGS += -Wno-gnu-variable-sized-type-not-at-end
