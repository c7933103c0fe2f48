# Make fragment: tiny guest payloads for flint's boot tests.
#
# Included by the top-level Makefile (`include tests/guest/guest.mk`) or
# used standalone from the repository root:
#     make -f tests/guest/guest.mk guest-payloads [BUILD=build]
# Builds into $(BUILD)/guest/:
#     bzimage.bin elf64.elf pvh.elf pvh32.elf triple.elf badmmio.elf hostile.elf
#     test-initrd.img
# Needs only GNU as, ld and objcopy (binutils).  All names defined here
# start with GUEST_ / guest- so they do not clash with the includer's.

# Directory of this fragment, taken before any other include changes
# MAKEFILE_LIST; relative to where make runs.
GUEST_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
GUEST_STANDALONE := $(if $(filter-out $(lastword $(MAKEFILE_LIST)),$(MAKEFILE_LIST)),,1)
GUEST_SAVED_GOAL := $(.DEFAULT_GOAL)

BUILD ?= build
GUEST_OUT := $(BUILD)/guest

# Debian packages needed to build the payloads (the top-level Makefile adds
# this to its `make deps` list).
GUEST_DEPS := binutils coreutils

GUEST_AS ?= as
GUEST_LD ?= ld
GUEST_OBJCOPY ?= objcopy
GUEST_ASFLAGS := --64 -I $(GUEST_DIR)
GUEST_ASFLAGS32 := --32 -I $(GUEST_DIR)
GUEST_LDFLAGS := -nostdlib -static --build-id=none -z noexecstack \
                 -z max-page-size=0x1000 --no-warn-rwx-segments

GUEST_PAYLOADS := $(addprefix $(GUEST_OUT)/,bzimage.bin elf64.elf pvh.elf \
                  pvh32.elf triple.elf badmmio.elf hostile.elf test-initrd.img)
GUEST_SRC_DEPS := $(GUEST_DIR)/guest.inc $(GUEST_DIR)/guest.mk

.PHONY: guest-payloads guest-clean
guest-payloads: $(GUEST_PAYLOADS)

guest-clean:
	rm -rf $(GUEST_OUT)

$(GUEST_OUT):
	mkdir -p $@

# Entry objects: 64-bit payloads and pvh (which mixes .code32/.code64).
GUEST_ENTRY_OBJS := $(addprefix $(GUEST_OUT)/,bzimage.o elf64.o pvh.o \
                    triple.o badmmio.o hostile.o)
$(GUEST_ENTRY_OBJS): $(GUEST_OUT)/%.o: $(GUEST_DIR)/%.s $(GUEST_SRC_DEPS) | $(GUEST_OUT)
	$(GUEST_AS) $(GUEST_ASFLAGS) --defsym BITS=64 -o $@ $<

# Shared routines, once per CPU mode.
$(GUEST_OUT)/common32.o $(GUEST_OUT)/common64.o: $(GUEST_OUT)/common%.o: \
		$(GUEST_DIR)/common.s $(GUEST_SRC_DEPS) | $(GUEST_OUT)
	$(GUEST_AS) $(GUEST_ASFLAGS) --defsym BITS=$* -o $@ $<

$(GUEST_OUT)/elf64.elf $(GUEST_OUT)/triple.elf $(GUEST_OUT)/badmmio.elf $(GUEST_OUT)/hostile.elf: \
		$(GUEST_OUT)/%.elf: $(GUEST_OUT)/%.o $(GUEST_OUT)/common64.o \
		$(GUEST_DIR)/elf.ld
	$(GUEST_LD) $(GUEST_LDFLAGS) -T $(GUEST_DIR)/elf.ld -o $@ \
		$(GUEST_OUT)/$*.o $(GUEST_OUT)/common64.o

$(GUEST_OUT)/pvh.elf: $(GUEST_OUT)/pvh.o $(GUEST_OUT)/common32.o \
		$(GUEST_DIR)/pvh.ld
	$(GUEST_LD) $(GUEST_LDFLAGS) -T $(GUEST_DIR)/pvh.ld -o $@ \
		$(GUEST_OUT)/pvh.o $(GUEST_OUT)/common32.o

# pvh32.elf: the PVH payload as an ELF32 i386 image, every object --32.
$(GUEST_OUT)/pvh32.o: $(GUEST_DIR)/pvh.s $(GUEST_SRC_DEPS) | $(GUEST_OUT)
	$(GUEST_AS) $(GUEST_ASFLAGS32) --defsym BITS=32 --defsym PVH32=1 -o $@ $<

$(GUEST_OUT)/common32-i386.o: $(GUEST_DIR)/common.s $(GUEST_SRC_DEPS) | $(GUEST_OUT)
	$(GUEST_AS) $(GUEST_ASFLAGS32) --defsym BITS=32 -o $@ $<

$(GUEST_OUT)/pvh32.elf: $(GUEST_OUT)/pvh32.o $(GUEST_OUT)/common32-i386.o \
		$(GUEST_DIR)/pvh32.ld
	$(GUEST_LD) -m elf_i386 $(GUEST_LDFLAGS) -T $(GUEST_DIR)/pvh32.ld -o $@ \
		$(GUEST_OUT)/pvh32.o $(GUEST_OUT)/common32-i386.o

$(GUEST_OUT)/bzimage.elf: $(GUEST_OUT)/bzimage.o $(GUEST_OUT)/common64.o \
		$(GUEST_DIR)/bzimage.ld
	$(GUEST_LD) $(GUEST_LDFLAGS) -T $(GUEST_DIR)/bzimage.ld -o $@ \
		$(GUEST_OUT)/bzimage.o $(GUEST_OUT)/common64.o

$(GUEST_OUT)/bzimage.bin: $(GUEST_OUT)/bzimage.elf
	$(GUEST_OBJCOPY) -O binary -j .setup -j .text $< $@

# 4 KiB initrd: "FLINTRD\n" then zero padding.
$(GUEST_OUT)/test-initrd.img: $(GUEST_DIR)/guest.mk | $(GUEST_OUT)
	printf 'FLINTRD\n' > $@.tmp
	truncate -s 4096 $@.tmp
	mv $@.tmp $@

# Do not steal the includer's default goal.
ifeq ($(GUEST_STANDALONE),)
.DEFAULT_GOAL := $(GUEST_SAVED_GOAL)
endif
