/* Firecracker's metrics lines: built from the sources, written without ever blocking. */
#include "vmm/metrics.h"
#include "vmm/base/file.h"
#include "vmm/base/log.h"
#include "vmm/base/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct metrics_source {
	metrics_source_fn *fn;
	void *ctx;
};

struct metrics {
	struct loop *loop;
	int fd;       /* -1: no path configured */
	bool regular; /* a regular file: a line is written whole at once */
	char *path;
	bool emit_id;
	char *id;
	json_t *properties;
	struct metrics_source sources[METRICS_MAX_SOURCES];
	unsigned nsources;
	json_t *prev; /* the counters' totals as the last line written had them */
	/* The end of a line the FIFO took only the start of: written when it has room. */
	char *tail;
	size_t tail_len, tail_off;
	struct loop_watch *tail_watch;
	struct loop_watch *timer;
	bool dropping; /* lines are being dropped: said once until one goes through again */
	struct metrics_stats stats;
};

struct metrics_line {
	json_t *out;        /* what the line says */
	json_t *totals;     /* the counters' totals: the next line counts from these */
	const json_t *prev; /* the totals the last line written had */
	bool failed;        /* out of memory: the line is not written */
};

/* Where histograms keep their totals in `totals`: no section is named "". */
#define HIDDEN ""

struct metrics *metrics_new(struct loop *loop)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->loop = loop;
	m->fd = -1;
	return m;
}

static bool tail_flush(struct metrics *m);

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	loop_remove(m->timer);
	/* A reader may have made room since the loop last looked: one more try, never a wait. */
	if (m->tail && m->fd >= 0)
		tail_flush(m);
	loop_remove(m->tail_watch);
	if (m->tail)
		log_warn("metrics: %s: the end of the last line was never read; it is lost",
		         MSG_ESC(m->path));
	if (m->fd >= 0)
		close(m->fd);
	free(m->tail);
	free(m->path);
	free(m->id);
	json_decref(m->properties);
	json_decref(m->prev);
	free(m);
}

/* --- configuring -------------------------------------------------------------------------- */

/* A character device (a tty) gets a description of its own that never blocks. */
static int nonblocking(int fd, char *why, size_t len)
{
	bool sock;
	int own = file_nonblocking_writer(fd, &sock);

	if (own == fd)
		return fd;
	close(fd);
	if (own < 0)
		snprintf(why, len, "cannot open it without blocking: %s", strerror(-own));
	return own;
}

/*
 * A FIFO is opened for reading as well, as Firecracker opens it: the open needs no reader
 * and writes never fail for the lack of one (a full FIFO only drops lines). Anything else is
 * opened to append.
 */
static int open_output(const char *path, bool *regular, char *why, size_t len)
{
	struct stat st;
	bool fifo = stat(path, &st) == 0 && S_ISFIFO(st.st_mode);
	int fd = file_open(path, fifo ? O_RDWR : O_WRONLY | O_APPEND | O_CREAT,
	                   FILE_REG | FILE_CHR | FILE_FIFO, 0, why, len);

	if (fd < 0 || fstat(fd, &st) < 0)
		return fd < 0 ? fd : -errno;
	*regular = S_ISREG(st.st_mode);
	return S_ISCHR(st.st_mode) ? nonblocking(fd, why, len) : fd;
}

static int set_properties(struct metrics *m, const char *text, char *why, size_t len)
{
	if (!text)
		return 0;
	m->properties = json_loads(text, 0, NULL);
	if (json_is_object(m->properties))
		return 0;
	json_decref(m->properties);
	m->properties = NULL;
	snprintf(why, len, "properties: not a JSON object");
	return -EINVAL;
}

int metrics_configure(struct metrics *m, const struct metrics_params *p, char *why, size_t len)
{
	bool regular = false;
	int fd;

	if (m->fd >= 0) {
		snprintf(why, len, "%s", METRICS_REINIT_MSG);
		return -EALREADY;
	}
	fd = set_properties(m, p->properties, why, len);
	m->path = strdup(p->path);
	m->id = strdup(p->id ? p->id : "anonymous-instance");
	if (!fd && (!m->path || !m->id)) {
		snprintf(why, len, "out of memory");
		fd = -ENOMEM;
	}
	if (!fd)
		fd = open_output(p->path, &regular, why, len);
	if (fd < 0) {
		free(m->path);
		free(m->id);
		json_decref(m->properties);
		m->path = m->id = NULL;
		m->properties = NULL;
		return fd;
	}
	m->fd = fd;
	m->regular = regular;
	m->emit_id = p->emit_id;
	return 0;
}

bool metrics_configured(const struct metrics *m)
{
	return m->fd >= 0;
}

const char *metrics_path(const struct metrics *m)
{
	return m->path;
}

int metrics_add_source(struct metrics *m, metrics_source_fn *fn, void *ctx)
{
	if (m->nsources == METRICS_MAX_SOURCES)
		return -ENOSPC;
	m->sources[m->nsources++] = (struct metrics_source){ fn, ctx };
	return 0;
}

void metrics_remove_source(struct metrics *m, metrics_source_fn *fn, void *ctx)
{
	for (unsigned i = 0; i < m->nsources; i++)
		if (m->sources[i].fn == fn && m->sources[i].ctx == ctx) {
			memmove(&m->sources[i], &m->sources[i + 1],
			        (m->nsources - i - 1) * sizeof(m->sources[0]));
			m->nsources--;
			return;
		}
}

/* --- a line ------------------------------------------------------------------------------- */

static json_t *section(struct metrics_line *l, json_t *root, const char *name)
{
	json_t *o = json_object_get(root, name);

	if (o || l->failed)
		return o;
	o = json_object();
	if (json_object_set_new(root, name, o)) {
		l->failed = true;
		return NULL;
	}
	return o;
}

static void set_int(struct metrics_line *l, json_t *obj, const char *key, uint64_t v)
{
	json_int_t i = v > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)v;

	if (!obj || json_object_set_new(obj, key, json_integer(i)))
		l->failed = true;
}

/* What a counter grew by; a total below the last one means it began again (a new device). */
static uint64_t grown(uint64_t total, const json_t *was)
{
	uint64_t w = (uint64_t)json_integer_value(was);

	return total >= w ? total - w : total;
}

void metrics_counter(struct metrics_line *l, const char *sec, const char *key, uint64_t total)
{
	const json_t *was = json_object_get(json_object_get(l->prev, sec), key);

	set_int(l, section(l, l->out, sec), key, grown(total, was));
	set_int(l, section(l, l->totals, sec), key, total);
}

void metrics_gauge(struct metrics_line *l, const char *sec, const char *key, uint64_t value)
{
	set_int(l, section(l, l->out, sec), key, value);
}

void metrics_delta(struct metrics_line *l, const char *name, const uint64_t *totals, unsigned n,
                   uint64_t *delta)
{
	const json_t *was = json_object_get(json_object_get(l->prev, HIDDEN), name);
	json_t *arr = json_array(), *hidden = section(l, l->totals, HIDDEN);

	for (unsigned i = 0; i < n; i++) {
		delta[i] = grown(totals[i], json_array_get(was, i));
		if (json_array_append_new(arr, json_integer((json_int_t)totals[i])))
			l->failed = true;
	}
	if (!hidden || json_object_set_new(hidden, name, arr))
		l->failed = true;
}

static uint64_t utc_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Firecracker's order: the time, id, properties, then what the sources count. */
static void build(struct metrics *m, struct metrics_line *l)
{
	*l = (struct metrics_line){ json_object(), json_object(), m->prev, false };
	if (!l->out || !l->totals) {
		l->failed = true;
		return;
	}
	set_int(l, l->out, "utc_timestamp_ms", utc_ms());
	if (m->emit_id && json_object_set_new(l->out, "id", json_string(m->id)))
		l->failed = true;
	if (m->properties && json_object_set(l->out, "properties", m->properties))
		l->failed = true;
	for (unsigned i = 0; i < m->nsources; i++)
		m->sources[i].fn(m->sources[i].ctx, l);
	metrics_counter(l, "logger", "missed_metrics_count", m->stats.dropped);
}

/* --- writing ------------------------------------------------------------------------------ */

/* A regular file takes a whole line at once; a short write there means an error. */
static int write_all(int fd, const char *buf, size_t n)
{
	size_t done = 0;
	ssize_t w;

	while (done < n) {
		w = write(fd, buf + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		done += (size_t)w;
	}
	return 0;
}

/* Bytes the FIFO (or device) took, possibly fewer than @n, or -errno (-EAGAIN: none). */
static ssize_t write_some(int fd, const char *buf, size_t n)
{
	ssize_t w;

	do
		w = write(fd, buf, n);
	while (w < 0 && errno == EINTR);
	return w < 0 ? -errno : w;
}

static void drop_tail(struct metrics *m)
{
	loop_remove(m->tail_watch);
	m->tail_watch = NULL;
	free(m->tail);
	m->tail = NULL;
	m->stats.pending = false;
}

/* Writes what the reader has room for of the pending line's end. True once none is left. */
static bool tail_flush(struct metrics *m)
{
	ssize_t w;

	if (!m->tail)
		return true;
	w = write_some(m->fd, m->tail + m->tail_off, m->tail_len - m->tail_off);
	if (w == -EAGAIN)
		return false;
	if (w < 0)
		log_warn("metrics: %s: the end of a line could not be written: %s",
		         MSG_ESC(m->path), strerror((int)-w));
	else if ((m->tail_off += (size_t)w) < m->tail_len)
		return false;
	drop_tail(m);
	return true;
}

static void on_writable(int fd, int events, void *arg)
{
	(void)fd;
	(void)events;
	tail_flush(arg);
}

/* Keeps the end of a line that was only partly taken; the loop writes it when it can. */
static int keep_tail(struct metrics *m, const char *rest, size_t n, char *why, size_t len)
{
	m->tail = malloc(n);
	if (m->tail)
		m->tail_watch = loop_add_fd(m->loop, m->fd, LOOP_WRITE, on_writable, m);
	if (!m->tail_watch) {
		/* The line's start is out and its end cannot follow: end it, so the next parses. */
		drop_tail(m);
		snprintf(why, len, "out of memory; the line was cut short");
		return write_some(m->fd, "\n", 1) == 1 ? -ENOMEM : -EIO;
	}
	memcpy(m->tail, rest, n);
	m->tail_len = n;
	m->tail_off = 0;
	m->stats.pending = true;
	return 0;
}

/* 0: the line is out (or its end follows from the loop); -errno: nothing of it is. */
static int write_line(struct metrics *m, const char *text, size_t n, char *why, size_t len)
{
	ssize_t w;
	int r;

	if (!tail_flush(m)) {
		snprintf(why, len, "the last line is not read yet (nobody reads the FIFO?)");
		return -EAGAIN;
	}
	if (m->regular) {
		r = write_all(m->fd, text, n);
		if (r)
			snprintf(why, len, "%s", strerror(-r));
		return r;
	}
	w = write_some(m->fd, text, n);
	if (w == (ssize_t)n)
		return 0;
	if (w == -EAGAIN)
		snprintf(why, len, "it is full (nobody reads the FIFO?)");
	else if (w < 0)
		snprintf(why, len, "%s", strerror((int)-w));
	return w < 0 ? (int)w : keep_tail(m, text + w, n - (size_t)w, why, len);
}

/* The line as text with its newline, or NULL when it could not be made. */
static char *line_text(struct metrics_line *l, size_t *n)
{
	char *body = l->failed ? NULL : json_dumps(l->out, JSON_COMPACT);
	size_t len = body ? strlen(body) : 0;
	char *text = body ? realloc(body, len + 2) : NULL;

	if (!text) {
		free(body);
		return NULL;
	}
	text[len] = '\n';
	text[len + 1] = 0;
	*n = len + 1;
	return text;
}

/* A line went out: the next counts from its totals. */
static void written(struct metrics *m, struct metrics_line *l)
{
	json_decref(m->prev);
	m->prev = l->totals;
	l->totals = NULL;
	m->stats.lines++;
	if (m->dropping)
		log_info("metrics: %s: lines are written again", MSG_ESC(m->path));
	m->dropping = false;
}

int metrics_flush(struct metrics *m, char *why, size_t len)
{
	struct metrics_line l;
	size_t n = 0;
	char *text;
	int r = -ENOMEM;

	if (m->fd < 0)
		return 0;
	build(m, &l);
	text = line_text(&l, &n);
	if (!text)
		snprintf(why, len, "out of memory");
	else
		r = write_line(m, text, n, why, len);
	if (r) {
		m->stats.dropped++;
		if (!m->dropping)
			log_warn("metrics: %s: a line was dropped: %s (said once until lines go "
			         "through again; counted in logger.missed_metrics_count)",
			         MSG_ESC(m->path), why);
		m->dropping = true;
	} else {
		written(m, &l);
	}
	free(text);
	json_decref(l.out);
	json_decref(l.totals);
	return r;
}

const struct metrics_stats *metrics_stats(const struct metrics *m)
{
	return &m->stats;
}

static void on_tick(void *arg)
{
	char why[160];

	metrics_flush(arg, why, sizeof(why)); /* a drop is logged and counted there */
}

int metrics_start(struct metrics *m, uint64_t period_us)
{
	char why[160];

	if (m->fd < 0 || m->timer)
		return 0;
	m->timer = loop_add_timer(m->loop, period_us, true, on_tick, m);
	if (!m->timer)
		return -ENOMEM;
	metrics_flush(m, why, sizeof(why));
	return 0;
}
