/*
 * The VM's KVM part (vm_kvm_open(): /dev/kvm, the VM, its irqchip and PIT), which needs no
 * config, made on a short-lived thread of its own while the main thread reads the config
 * and loads the images: the two waits overlap (issue #16). A run (through run_opts.early)
 * takes it before it needs the VM, joining the thread, so the process is one thread again
 * before the privilege drop; a failure is logged there, as without it.
 *
 * Threads: all calls from one thread (main's); the thread made runs vm_kvm_open() only,
 * with every signal blocked (the loop's handlers are the main thread's business).
 */
#ifndef FLINT_VM_EARLY_H
#define FLINT_VM_EARLY_H

#include <stdbool.h>

struct vm_early;
struct vm_kvm;

/* Opens VM_KVM_PATH (vm.h); NULL when the thread cannot start: the run then opens it itself. */
struct vm_early *vm_early_start(void);
/* Joins the thread and hands its VM over, once: false when already taken (or E is NULL). */
bool vm_early_take(struct vm_early *e, struct vm_kvm *out);
/* Joins, and closes what no run took. Safe with NULL, and after a run took it. */
void vm_early_end(struct vm_early *e);

#endif
