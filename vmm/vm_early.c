/* The VM's KVM part and the loop, made on a thread of their own while the config is read. */
#include "vmm/vm_early.h"
#include "vmm/base/loop.h"
#include "vmm/vm.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

struct vm_early {
	pthread_t thread;
	bool joined, taken;
	struct vm_kvm kvm;
	struct loop *loop;
};

static void *early_thread(void *arg)
{
	struct vm_early *e = arg;

	vm_kvm_open(&e->kvm, VM_KVM_PATH);
	e->loop = loop_new();
	return NULL;
}

struct vm_early *vm_early_start(void)
{
	struct vm_early *e = calloc(1, sizeof(*e));
	sigset_t all, old;
	int r;

	if (!e)
		return NULL;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&e->thread, NULL, early_thread, e);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		free(e);
		return NULL;
	}
	return e;
}

static void early_join(struct vm_early *e)
{
	if (!e->joined)
		pthread_join(e->thread, NULL);
	e->joined = true;
}

bool vm_early_take(struct vm_early *e, struct vm_kvm *out)
{
	if (!e || e->taken)
		return false;
	early_join(e);
	e->taken = true;
	*out = e->kvm;
	return true;
}

struct loop *vm_early_take_loop(struct vm_early *e)
{
	struct loop *l;

	if (!e)
		return NULL;
	early_join(e);
	l = e->loop;
	e->loop = NULL;
	return l;
}

void vm_early_end(struct vm_early *e)
{
	if (!e)
		return;
	early_join(e);
	if (!e->taken)
		vm_kvm_close(&e->kvm);
	loop_free(e->loop);
	free(e);
}
