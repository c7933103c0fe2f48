/*
 * What a run needs that needs no config, made on a short-lived thread of its own while the
 * main thread reads the config: the VM's KVM part (vm_kvm_open(): /dev/kvm, the VM, its
 * irqchip and PIT) and the event loop (loop_new()). The two overlap (issue #16: in the rig
 * the loop's first run of libevent's code alone was 1.9 ms of the main thread's). The
 * thread makes the loop first and hands it over as soon as it is made; a run (through
 * run_opts.early) takes it when the config is read, and the VM when it needs one, joining
 * the thread, so the process is one thread again before the privilege drop. A VM that
 * could not be made is logged where it is taken, as without the thread; a loop that could
 * not be made is made again by the run, which says why if it fails again.
 *
 * Threads: all calls from one thread (main's); the thread made runs loop_new() and then
 * vm_kvm_open() only, with every signal blocked (the loop's handlers are set by the main
 * thread, loop_handle_signals()), and touches the loop no more once it has handed it over.
 */
#ifndef FLINT_VM_EARLY_H
#define FLINT_VM_EARLY_H

#include <stdbool.h>

struct loop;
struct vm_early;
struct vm_kvm;

/* Opens VM_KVM_PATH (vm.h); NULL when the thread cannot start: the run then opens it itself. */
struct vm_early *vm_early_start(void);
/* Joins the thread and hands its VM over, once: false when already taken (or E is NULL). */
bool vm_early_take(struct vm_early *e, struct vm_kvm *out);
/* Waits for the loop and hands it over, once: NULL when taken, failed (or E is NULL). */
struct loop *vm_early_take_loop(struct vm_early *e);
/* Joins, and closes and frees what no run took. Safe with NULL, and after a run took it. */
void vm_early_end(struct vm_early *e);

#endif
