# flint inside the rig (included by the top-level Makefile after rig.mk):
#  - flint boots the rig kernel as a nested L2 guest, 1 and 2 vCPUs;
#  - flint's iommu code runs against the real kernel: the fault resolver with
#    iommufd's mock device, and pin mode with QEMU's edu device.
RIG_FLINT_DIR := tests/rig/flint
# The rig programs link flint's one library (the top-level Makefile's $(PLAIN_LIB)), statically.
RIG_FLINT_PROGS := $(RIG_OUT)/flint/resolver-mock $(RIG_OUT)/flint/vfio-edu-pin
RIG_KDIR = $$(cat $(RIG_OUT)/kernel.dir)
# The whole rig run's wall-clock limit (run.sh's default is 900 s): the malicious guest and
# the soak add about 4 minutes to the rig's 8, and on a shared machine (several rigs at once
# on 2 cores) the run has been seen at twice its time alone. A frozen L1 ends sooner: run.sh's
# console watchdog (--silence, 300 s; init's heartbeat every 60 s keeps a live L1's console
# from going quiet longer: 40 s at the most in a full run on a loaded machine, the soak).
RIG_RUN_ARGS += --timeout 2400

$(RIG_OUT)/flint/%: $(RIG_FLINT_DIR)/%.c $(PLAIN_LIB) $(RIG_OUT)/kernel.dir
	@mkdir -p $(@D)
	$(RIG_CC) $(RIG_CFLAGS) -D_GNU_SOURCE -I. -I$(RIG_DIR)/cases -static \
	  -isystem "$(RIG_KDIR)/usr/include" -o $@ $< $(PLAIN_LIB) -levent_core -ljansson -lpthread

$(RIG_OUT)/l2/exitport: tests/rig/l2/exitport.c
	@mkdir -p $(@D)
	$(RIG_CC) -O2 -static -o $@ $<

# L2's AF_VSOCK end of the virtio-vsock case.
$(RIG_OUT)/l2/vsock: tests/rig/l2/vsock.c tests/rig/stream.h
	@mkdir -p $(@D)
	$(RIG_CC) $(RIG_CFLAGS) -static -o $@ $<

# L2's user-space edu driver for the PCI pass-through case (62).
$(RIG_OUT)/l2/edu: tests/rig/l2/edu.c
	@mkdir -p $(@D)
	$(RIG_CC) $(RIG_CFLAGS) -static -o $@ $<

# curl --unix-socket for L1: one request to flint's API (case 66).
$(RIG_OUT)/flint/apireq: tests/rig/flint/apireq.c tests/lib/http_client.c tests/lib/http_client.h
	@mkdir -p $(@D)
	$(RIG_CC) $(RIG_CFLAGS) -D_GNU_SOURCE -I. -static -o $@ tests/rig/flint/apireq.c \
	  tests/lib/http_client.c

# Many clients at once on flint's API while a guest runs (case 66).
$(RIG_OUT)/flint/apiload: tests/rig/flint/apiload.c tests/lib/http_client.c tests/lib/http_client.h
	@mkdir -p $(@D)
	$(RIG_CC) $(RIG_CFLAGS) -D_GNU_SOURCE -I. -static -o $@ tests/rig/flint/apiload.c \
	  tests/lib/http_client.c -lpthread

# A pattern in a PCI memory BAR through sysfs, for L1 and L2 (case 65).
$(RIG_OUT)/l2/barpat: tests/rig/l2/barpat.c
	@mkdir -p $(@D)
	$(RIG_CC) $(RIG_CFLAGS) -static -o $@ $<

# L2's MMDS client: a guest's curl against the MMDS (GET with headers, a V2 token's PUT).
$(RIG_OUT)/l2/mmds: tests/rig/l2/mmds.c
	@mkdir -p $(@D)
	$(RIG_CC) $(RIG_CFLAGS) -static -o $@ $<

# L2's own initramfs: busybox, its init (checks nproc/MemTotal), the exit-port tool.
$(RIG_OUT)/l2/initramfs.cpio.gz: $(RIG_OUT)/l2/exitport $(RIG_OUT)/l2/vsock $(RIG_OUT)/l2/edu \
		$(RIG_OUT)/l2/barpat $(RIG_OUT)/l2/mmds tests/rig/l2/init $(RIG_DIR)/mkinitramfs.sh \
		$(wildcard tests/rig/l2/checks/*.sh)
	bash $(RIG_DIR)/mkinitramfs.sh -o $@ --init tests/rig/l2/init \
	  --add $(RIG_OUT)/l2/exitport:/bin/exitport --add $(RIG_OUT)/l2/vsock:/bin/vsock \
	  --add $(RIG_OUT)/l2/edu:/bin/edu --add $(RIG_OUT)/l2/barpat:/bin/barpat \
	  --add $(RIG_OUT)/l2/mmds:/bin/mmds --add tests/rig/l2/checks:/checks

# L2's ext4 root disk for the virtio-blk case (mkfs.ext4 -d from e2fsprogs).
$(RIG_OUT)/l2/rootfs.ext4: tests/rig/l2/mkrootfs.sh $(RIG_OUT)/l2/exitport
	bash tests/rig/l2/mkrootfs.sh $@ $(RIG_OUT)/l2/exitport

$(RIG_OUT)/initramfs.cpio.gz: $(BUILD)/flint $(RIG_FLINT_PROGS) $(RIG_OUT)/l2/initramfs.cpio.gz \
	$(RIG_OUT)/l2/rootfs.ext4
# The host end of the virtio-vsock case (Firecracker's hybrid handshake over Unix sockets).
$(RIG_OUT)/initramfs.cpio.gz: $(RIG_OUT)/flint/vsock-host $(RIG_OUT)/l2/barpat $(RIG_OUT)/flint/apireq \
	$(RIG_OUT)/flint/apiload $(BUILD)/tests/soak $(BUILD)/guest/elf64.elf $(BUILD)/guest/hostile.elf
$(RIG_OUT)/flint/vsock-host: tests/rig/stream.h
RIG_INITRAMFS_ARGS += --add-bin $(BUILD)/flint:/bin/flint \
	--add $(RIG_OUT)/l2/initramfs.cpio.gz:/rig/l2/initramfs.cpio.gz \
	--add $(RIG_KDIR)/bzImage:/rig/l2/bzImage \
	--add $(RIG_OUT)/l2/rootfs.ext4:/rig/l2/rootfs.ext4 \
	--add $(RIG_FLINT_DIR)/case-lib.sh:/rig/lib/case-lib.sh \
	--add $(RIG_FLINT_DIR)/l2-boot.sh:/rig/lib/l2-boot.sh \
	--add $(RIG_FLINT_DIR)/edu-bdf.sh:/rig/lib/edu-bdf.sh \
	--add $(RIG_FLINT_DIR)/l2-virtio.sh:/rig/lib/l2-virtio.sh \
	--add $(RIG_OUT)/flint/vsock-host:/rig/bin/vsock-host \
	--add $(RIG_OUT)/l2/barpat:/rig/bin/barpat \
	--add $(RIG_OUT)/flint/apireq:/rig/bin/apireq \
	--add $(RIG_OUT)/flint/apiload:/rig/bin/apiload \
	--case $(RIG_FLINT_DIR)/50-l2-boot-1cpu.sh:50-flint-l2-boot-1cpu \
	--case $(RIG_FLINT_DIR)/51-l2-boot-2cpu.sh:51-flint-l2-boot-2cpu \
	--case $(RIG_FLINT_DIR)/52-l2-boot-edu.sh:52-flint-l2-boot-edu \
	--case $(RIG_FLINT_DIR)/53-l2-boot-edu-inherited-fd.sh:53-flint-l2-boot-edu-inherited-fd \
	--case $(RIG_FLINT_DIR)/54-l2-virtio-rng.sh:54-flint-l2-virtio-rng \
	--case $(RIG_FLINT_DIR)/55-l2-virtio-root.sh:55-flint-l2-virtio-root \
	--case $(RIG_FLINT_DIR)/56-l2-virtio-disks.sh:56-flint-l2-virtio-disks \
	--case $(RIG_FLINT_DIR)/57-l2-virtio-net.sh:57-flint-l2-virtio-net \
	--case $(RIG_FLINT_DIR)/58-l2-virtio-vsock.sh:58-flint-l2-virtio-vsock \
	--case $(RIG_FLINT_DIR)/59-l2-virtio-blk-ratelimit.sh:59-flint-l2-virtio-blk-ratelimit \
	--case $(RIG_OUT)/flint/resolver-mock:60-flint-resolver-mock \
	--case $(RIG_OUT)/flint/vfio-edu-pin:61-flint-vfio-edu-pin \
	--case $(RIG_FLINT_DIR)/62-l2-pci-edu.sh:62-flint-l2-pci-edu \
	--case $(RIG_FLINT_DIR)/63-l2-firecracker-config.sh:63-flint-l2-firecracker-config \
	--case $(RIG_FLINT_DIR)/64-l2-edu-fault-refused.sh:64-flint-l2-edu-fault-refused \
	--case $(RIG_FLINT_DIR)/65-l2-pci-ivshmem.sh:65-flint-l2-pci-ivshmem \
	--case $(RIG_FLINT_DIR)/66-l2-api.sh:66-flint-l2-api \
	--case $(RIG_FLINT_DIR)/67-l2-api-patch-drive.sh:67-flint-l2-api-patch-drive \
	--case $(RIG_FLINT_DIR)/68-l2-caps.sh:68-flint-l2-caps \
	--case $(RIG_FLINT_DIR)/69-l2-seccomp.sh:69-flint-l2-seccomp \
	--case $(RIG_FLINT_DIR)/72-l2-jail.sh:72-flint-l2-jail \
	--case $(RIG_FLINT_DIR)/74-l2-mmds.sh:74-flint-l2-mmds \
	--add-bin $(BUILD)/tests/soak:/rig/bin/soak \
	--add $(BUILD)/guest/elf64.elf:/rig/guest/elf64.elf \
	--add $(BUILD)/guest/hostile.elf:/rig/guest/hostile.elf \
	--case $(RIG_FLINT_DIR)/73-hostile-pci.sh:73-flint-hostile-pci \
	--case $(RIG_FLINT_DIR)/75-soak.sh:75-flint-soak

# The KVM tests (tests/kvm), each test a case of its own, plain and ASan, when this host
# cannot run them (tests/kvm/where.sh); the args file is empty when they ran on the host.
$(RIG_OUT)/kvm.args: $(KVM_BINS) $(BUILD)/flint $(BUILD)/asan/flint $(GUEST_PAYLOADS) \
		$(BUILD)/tests/kvm-probe rig-always
	@mkdir -p $(@D)
	sh tests/kvm/rig-stage.sh $(BUILD) $(RIG_OUT)/kvm-cases $(KVM_SUITES) >$@.tmp
	@mv $@.tmp $@
$(RIG_OUT)/initramfs.cpio.gz: $(RIG_OUT)/kvm.args
RIG_INITRAMFS_ARGS += --args-file $(RIG_OUT)/kvm.args
