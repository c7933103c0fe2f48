# The kernel rig: flint's kernel-facing code tested on a real Linux 7.3
# (KVM, iommufd, VFIO cdev, iommufd's mock device) booted under QEMU TCG.
#
# Include from the top-level Makefile, or use standalone from the repo root:
#   make -f tests/rig/rig.mk check-rig
# Targets:
#   check-rig    build the kernel if needed, the cases, the initramfs; boot and run
#   rig-kernel   build (or find in the cache) the kernel only
#   rig-cases    build the case programs into $(BUILD)/rig/cases
#   rig-initramfs, rig-clean
# Variables:
#   BUILD               output root (default build); rig files go to $(BUILD)/rig
#   RIG_DEPS            Debian packages the rig needs (for `make deps`)
#   RIG_INITRAMFS_ARGS  extra mkinitramfs.sh options, e.g.
#                       --add-bin build/flint:/bin/flint --add x.cpio.gz:/l2/initramfs
#   RIG_RUN_ARGS        extra run.sh options (e.g. --timeout 1800)
#   FLINT_RIG_CACHE     kernel cache root (default ~/.cache/flint-rig)

# Where this file lives, whichever directory make runs from (must be taken
# before any other include changes MAKEFILE_LIST).
RIG_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
# Standalone (make -f tests/rig/rig.mk) when this is the only makefile read.
RIG_STANDALONE := $(filter 1,$(words $(MAKEFILE_LIST)))
# Including this file must not change the includer's default goal.
RIG_SAVED_GOAL := $(.DEFAULT_GOAL)

# An includer that sets BUILD must do so before the include: the rule
# targets below are expanded as this file is read.
BUILD ?= build
RIG_OUT := $(BUILD)/rig

RIG_DEPS := build-essential flex bison bc libelf-dev rsync cpio xz-utils \
	busybox-static qemu-system-x86 e2fsprogs

# Cases are static programs (the initramfs has no libc), built against the
# 7.3 uapi headers installed next to the cached kernel. Their own compiler
# flags: the project's CFLAGS (sanitizers etc.) do not belong in them.
RIG_CC ?= gcc
RIG_CFLAGS ?= -O2 -g -Wall -Wextra -Werror -std=gnu11
RIG_CASE_SRCS := $(sort $(wildcard $(RIG_DIR)/cases/*.c))
RIG_CASE_HDRS := $(wildcard $(RIG_DIR)/cases/*.h)
RIG_CASE_BINS := $(patsubst $(RIG_DIR)/cases/%.c,$(RIG_OUT)/cases/%,$(RIG_CASE_SRCS))

RIG_INITRAMFS_ARGS ?=
RIG_RUN_ARGS ?=

.PHONY: check-rig rig-kernel rig-cases rig-initramfs rig-clean rig-always

# build-kernel.sh runs every time (a cache hit takes well under a second) and
# records the cache dir; the file is rewritten only when the dir changes, so
# the cases are recompiled only for a different kernel.
$(RIG_OUT)/kernel.dir: rig-always
	@mkdir -p $(@D)
	@out=$$(bash $(RIG_DIR)/build-kernel.sh) && bz=$$(printf '%s\n' "$$out" | tail -n 1) && \
	  [ -f "$$bz" ] || { echo "rig kernel: no kernel built (see above)" >&2; exit 1; }; \
	  dir=$$(dirname "$$bz"); \
	  if [ "$$(cat $@ 2>/dev/null)" != "$$dir" ]; then echo "$$dir" >$@; fi; \
	  echo "rig kernel: $$bz"

rig-kernel: $(RIG_OUT)/kernel.dir

$(RIG_OUT)/cases/%: $(RIG_DIR)/cases/%.c $(RIG_CASE_HDRS) $(RIG_OUT)/kernel.dir
	@mkdir -p $(@D)
	$(RIG_CC) $(RIG_CFLAGS) -static -isystem "$$(cat $(RIG_OUT)/kernel.dir)/usr/include" \
	  -o $@ $<

rig-cases: $(RIG_CASE_BINS)

# Always rebuilt (about a second): whatever RIG_INITRAMFS_ARGS adds may have
# changed without make knowing.
$(RIG_OUT)/initramfs.cpio.gz: $(RIG_CASE_BINS) rig-always
	bash $(RIG_DIR)/mkinitramfs.sh -o $@ --cases $(RIG_OUT)/cases $(RIG_INITRAMFS_ARGS)

rig-initramfs: $(RIG_OUT)/initramfs.cpio.gz

check-rig: $(RIG_OUT)/initramfs.cpio.gz $(RIG_OUT)/kernel.dir
	BUILD=$(BUILD) bash $(RIG_DIR)/run.sh --kernel "$$(cat $(RIG_OUT)/kernel.dir)/bzImage" \
	  --initrd $(RIG_OUT)/initramfs.cpio.gz --log $(RIG_OUT)/serial.log $(RIG_RUN_ARGS)

rig-clean:
	rm -rf $(RIG_OUT)

rig-always:

.DEFAULT_GOAL := $(if $(RIG_STANDALONE),check-rig,$(RIG_SAVED_GOAL))
