/* The one clock flint measures with: CLOCK_MONOTONIC, in nanoseconds. */
#ifndef FLINT_CLOCK_H
#define FLINT_CLOCK_H

#include <time.h>

static inline long long clock_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#endif
