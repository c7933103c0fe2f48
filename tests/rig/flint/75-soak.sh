#!/bin/sh
# Rig case: the soak (tests/kvm/soak.c) on L1's nested KVM, 100 start/stop cycles of the
# smallest guest, each exit code checked; fds and RSS printed at cycles 1, 10 and 100.
# `make soak` runs 1000 (tests/kvm/soak.sh).
exec /rig/bin/soak /bin/flint /rig/guest/elf64.elf 100
