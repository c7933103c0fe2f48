/* The VM's KVM part and the loop, made on a thread of their own while the config is read. */
#include "vmm/vm_early.h"
#include "vmm/base/loop.h"
#include "vmm/vm.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>

struct vm_early {
	pthread_t thread;
	bool joined, taken, loop_taken;
	sem_t loop_made; /* posted once @loop is set (or NULL): the thread is done with it */
	struct loop *loop;
	struct vm_kvm kvm;
};

/* The loop first: a run needs it first, as soon as the config is read; the VM later. */
static void *early_thread(void *arg)
{
	struct vm_early *e = arg;

	e->loop = loop_new();
	sem_post(&e->loop_made);
	vm_kvm_open(&e->kvm, VM_KVM_PATH);
	return NULL;
}

struct vm_early *vm_early_start(void)
{
	struct vm_early *e = calloc(1, sizeof(*e));
	sigset_t all, old;
	int r;

	if (!e || sem_init(&e->loop_made, 0, 0)) {
		free(e);
		return NULL;
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&e->thread, NULL, early_thread, e);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		sem_destroy(&e->loop_made);
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
	if (!e || e->loop_taken)
		return NULL;
	while (sem_wait(&e->loop_made) && errno == EINTR)
		;
	e->loop_taken = true;
	return e->loop;
}

void vm_early_end(struct vm_early *e)
{
	if (!e)
		return;
	early_join(e);
	if (!e->taken)
		vm_kvm_close(&e->kvm);
	if (!e->loop_taken)
		loop_free(e->loop);
	sem_destroy(&e->loop_made);
	free(e);
}
