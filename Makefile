# flint — build, test and demo. Plain GNU make; objects under $(BUILD)/.
#   make            build build/flint (and the sanitizer build, build/asan/flint)
#   make check      install deps, build, run unit tests (plain + ASan/UBSan), then the rig
#   make check-unit the fast part of make check
#   make demo       boot configs/demo.json
BUILD   ?= build
CC      ?= cc
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo 0.0.0-dev)

# Debian packages flint needs to build and test; `make deps` installs what is missing.
DEPS := build-essential pkg-config libevent-dev libjansson-dev libfdt-dev libcap-ng-dev \
	libseccomp-dev libcmocka-dev linux-libc-dev qemu-system-x86
-include tests/guest/guest.mk
-include tests/rig/rig.mk
-include tests/rig/flint.mk
DEPS += $(GUEST_DEPS) $(RIG_DEPS)

PKGS     := libevent_core jansson
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -DFLINT_VERSION='"$(VERSION)"' $(WARN) -I. $(PKG_CFLAGS) \
	-MMD -MP $(CFLAGS)
LDLIBS   = $(PKG_LIBS) -lpthread
SAN      := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

LIB_SRCS := $(filter-out vmm/main.c,$(wildcard vmm/*.c boot/*.c devices/*.c iommu/*.c))
TEST_SRCS := $(wildcard tests/unit/test_*.c)
TESTS    := $(patsubst tests/unit/%.c,%,$(TEST_SRCS))
UTIL_SRCS := $(filter-out $(TEST_SRCS),$(wildcard tests/unit/*.c))

# Two flavours of every object: plain in $(BUILD)/, sanitized in $(BUILD)/asan/.
OBJ      = $(patsubst %.c,$(1)/obj/%.o,$(2))
PLAIN_LIB := $(call OBJ,$(BUILD),$(LIB_SRCS))
ASAN_LIB  := $(call OBJ,$(BUILD)/asan,$(LIB_SRCS))

.PHONY: all deps check check-unit demo clean format bench-startup bench-fault bench-iommu-startup
# Keep test objects: make would otherwise delete them as intermediates.
.SECONDARY:
all: $(BUILD)/flint $(BUILD)/asan/flint

# `make V=1` shows the full commands.
Q := $(if $(V),,@)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@
$(BUILD)/asan/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC asan $<")
	$(Q)$(CC) $(ALL_CFLAGS) $(SAN) -O1 -c $< -o $@

$(BUILD)/flint: $(BUILD)/obj/vmm/main.o $(PLAIN_LIB)
	$(CC) -o $@ $^ $(LDLIBS)
$(BUILD)/asan/flint: $(BUILD)/asan/obj/vmm/main.o $(ASAN_LIB)
	$(CC) $(SAN) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(call OBJ,$(BUILD),$(UTIL_SRCS)) $(PLAIN_LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDLIBS) -lcmocka
$(BUILD)/asan/tests/%: $(BUILD)/asan/obj/tests/unit/%.o $(call OBJ,$(BUILD)/asan,$(UTIL_SRCS)) $(ASAN_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^ $(LDLIBS) -lcmocka

UNIT_BINS := $(addprefix $(BUILD)/tests/,$(TESTS)) $(addprefix $(BUILD)/asan/tests/,$(TESTS))

deps:
	@sh tests/deps.sh $(sort $(DEPS))

check: deps
	$(MAKE) check-unit
	$(MAKE) check-rig

check-unit: all $(UNIT_BINS) $(GUEST_PAYLOADS)
	@sh tests/run-unit.sh $(BUILD) $(TESTS)

demo: deps
	$(MAKE) all $(GUEST_PAYLOADS)
	@sh tests/demo.sh $(BUILD)

bench-startup: all guest-payloads
	@sh bench/startup.sh $(BUILD)

bench-fault: all
	@sh bench/fault.sh $(BUILD)

bench-iommu-startup: all
	@sh bench/rig-startup.sh $(BUILD)

format:
	clang-format -i $(wildcard vmm/*.[ch] boot/*.[ch] devices/*.[ch] iommu/*.[ch])

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
