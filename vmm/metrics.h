/*
 * Firecracker's metrics: one JSON object per line, written to the metrics path (a regular
 * file, appended; a FIFO; a character device) when the VM starts, every 60 s after, on the
 * API's FlushMetrics and when the VM ends. Knows no VM: what a line says comes from the
 * sources registered with it (the VM's counters, the API's), each adding its sections.
 *
 * Counters are written as Firecracker writes them: what was counted since the last line
 * written. A line that cannot be written is dropped and counted (logger.missed_metrics_count
 * on the next line), and what it would have said is carried by the next one. Gauges (a
 * value now, a latency percentile) are written as they are.
 *
 * Never a stall: a FIFO is opened for reading and writing (as Firecracker does), so it
 * needs no reader, and written without blocking: when it is full the line is dropped. A
 * line the FIFO takes only a part of is finished from the loop when the reader makes room,
 * never torn; lines that come meanwhile are dropped.
 *
 * Threading: loop thread only. Sources read what other threads count through atomics or
 * the lock that guards it.
 */
#ifndef FLINT_METRICS_H
#define FLINT_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct metrics;
struct metrics_line;

#define METRICS_PERIOD_US   (60ULL * 1000 * 1000) /* Firecracker's WRITE_METRICS_PERIOD_MS */
#define METRICS_MAX_SOURCES 4
/* Firecracker's message when metrics are configured a second time. */
#define METRICS_REINIT_MSG "Reinitialization of metrics not allowed."

/* A source adds its sections to @l, with metrics_counter() and metrics_gauge(). */
typedef void metrics_source_fn(void *ctx, struct metrics_line *l);

struct metrics_params {
	const char *path;
	bool emit_id;           /* a top-level "id" on every line */
	const char *id;         /* the instance id (--id) */
	const char *properties; /* a JSON object of strings, put on every line; NULL: none */
};

struct metrics_stats {
	uint64_t lines;   /* written (the last one maybe still finishing) */
	uint64_t dropped; /* not written: the FIFO was full, or an error */
	bool pending;     /* the end of the last line waits for the reader */
};

struct metrics *metrics_new(struct loop *loop);
/* Stops the timer and closes the path; a line's end still pending is lost. NULL is fine. */
void metrics_free(struct metrics *m);

/*
 * Opens @p->path, once (Firecracker's rule): a missing file is created (never through a
 * symlink), a FIFO needs no reader. Returns 0, or -errno with the reason in @why ("fit for
 * <path>: <why>", but -EALREADY: METRICS_REINIT_MSG). Nothing changes on failure.
 */
int metrics_configure(struct metrics *m, const struct metrics_params *p, char *why, size_t len);
bool metrics_configured(const struct metrics *m);
const char *metrics_path(const struct metrics *m);

/* Sources are called in the order they were added. -ENOSPC past METRICS_MAX_SOURCES. */
int metrics_add_source(struct metrics *m, metrics_source_fn *fn, void *ctx);
void metrics_remove_source(struct metrics *m, metrics_source_fn *fn, void *ctx);

/*
 * The VM runs: a line now and then one every @period_us on the loop (METRICS_PERIOD_US in
 * flint, shorter in tests). Nothing when no path is configured. 0 or -ENOMEM.
 */
int metrics_start(struct metrics *m, uint64_t period_us);

/*
 * Writes a line now. Returns 0 when it is written (or no path is configured), else -errno
 * with the reason in @why: -EAGAIN when the FIFO is full or the last line's end still
 * waits for the reader. Either way the line is counted as dropped and its counts carried.
 */
int metrics_flush(struct metrics *m, char *why, size_t len);
const struct metrics_stats *metrics_stats(const struct metrics *m);

/*
 * For sources. A counter is given as its total since it began: the line says what it grew
 * by since the last line written. A gauge is said as it is. @section is a top-level key
 * ("vcpu", "block_rootfs"), @key one inside it.
 */
void metrics_counter(struct metrics_line *l, const char *section, const char *key, uint64_t total);
void metrics_gauge(struct metrics_line *l, const char *section, const char *key, uint64_t value);
/*
 * For a histogram of @n buckets: stores their totals as counters that the line does not
 * show, and sets @delta to what each grew by since the last line written.
 */
void metrics_delta(struct metrics_line *l, const char *name, const uint64_t *totals, unsigned n,
                   uint64_t *delta);

#endif
