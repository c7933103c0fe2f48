/*
 * text-order: the linker script that lays flint's start-up code out together
 * (vmm/text-order.ld), from profiles of a start.
 *
 *   text-order LINK_MAP CALLGRIND_OUT... [-- ALSO...] > vmm/text-order.ld
 *
 * Each CALLGRIND_OUT is `valgrind --tool=callgrind --dump-instr=yes` of one flint run (the
 * address of every instruction it executed; a start's path depends a little on timing, so
 * several runs are taken together); LINK_MAP is `ld -Map` of that same binary,
 * linked from objects built with -ffunction-sections. Every input section (a function of
 * flint's, one libc or libevent object's .text) holding an executed instruction is listed,
 * in the order the link placed them; then the ALSO patterns as they are given (code the
 * profile cannot see); then, for each of libc's CPU-specific string routines listed
 * (memmove-avx-unaligned-erms.o), its other variants (memmove-*.o), which another CPU
 * picks instead. The linker puts the list first, before the rest of .text.
 *
 * Why: the kernel maps up to 16 already-cached neighbours of every file page a process
 * first touches (fault-around), so code spread over the binary makes nearly all of it
 * resident; gathered, it is a few 64 KiB windows (bench/README.md, "Text order").
 * bench/text-order.sh makes the profile and runs this.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sect {
	uint64_t start, size;
	char *name; /* .text.foo */
	char *file; /* path, or path(member) for an archive member */
	bool hit;
};

static struct sect *sects;
static size_t nsects, capsects;
/* The map's global symbols (name, address), to place callgrind's unnamed code (below). */
struct sym {
	char *name;
	uint64_t addr;
};
static struct sym *syms;
static size_t nsyms, capsyms;

static void die(const char *what, const char *file)
{
	fprintf(stderr, "text-order: %s: %s\n", file, what);
	exit(1);
}

static void *grow(void *p, size_t n, size_t *cap, size_t size)
{
	if (n < *cap)
		return p;
	*cap = *cap ? 2 * *cap : 1024;
	p = realloc(p, *cap * size);
	if (!p)
		die("out of memory", "text-order");
	return p;
}

static void sect_add(const char *name, uint64_t start, uint64_t size, const char *file)
{
	if (size == 0)
		return;
	sects = grow(sects, nsects, &capsects, sizeof(*sects));
	sects[nsects++] = (struct sect){ start, size, strdup(name), strdup(file), false };
}

static void sym_add(const char *name, uint64_t addr)
{
	syms = grow(syms, nsyms, &capsyms, sizeof(*syms));
	syms[nsyms++] = (struct sym){ strdup(name), addr };
}

/* A global symbol's address in the map; 0 when there is none (or more than one). */
static uint64_t sym_addr(const char *name)
{
	uint64_t a = 0;
	for (size_t i = 0; i < nsyms; i++) {
		if (strcmp(syms[i].name, name))
			continue;
		if (a)
			return 0;
		a = syms[i].addr;
	}
	return a;
}

/*
 * The map's memory-map part lists each input section as " .text.foo 0xADDR 0xSIZE file",
 * or, when the name is long, the name alone on one line and the rest on the next.
 */
static void map_read(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[4096], name[1024] = "", file[2048];
	bool in_map = false;
	uint64_t a, s;

	if (!f)
		die(strerror(errno), path);
	while (fgets(line, sizeof(line), f)) {
		if (!in_map) {
			in_map = !strncmp(line, "Linker script and memory map", 28);
			continue;
		}
		if (!strncmp(line, " .text", 6)) {
			char n[1024];
			int got = sscanf(line, " %1023s 0x%" SCNx64 " 0x%" SCNx64 " %2047[^\n]", n,
			                 &a, &s, file);
			if (got == 4)
				sect_add(n, a, s, file);
			else if (got == 1)
				snprintf(name, sizeof(name), "%s", n);
			continue;
		}
		if (name[0] &&
		    sscanf(line, " 0x%" SCNx64 " 0x%" SCNx64 " %2047[^\n]", &a, &s, file) == 3)
			sect_add(name, a, s, file);
		else if (sscanf(line, " 0x%" SCNx64 " %2047s", &a, file) == 2)
			sym_add(file, a);
		name[0] = '\0';
	}
	fclose(f);
}

static int sect_cmp(const void *x, const void *y)
{
	const struct sect *p = x, *q = y;
	return p->start < q->start ? -1 : p->start > q->start;
}

static void mark(uint64_t addr)
{
	size_t lo = 0, hi = nsects;
	while (lo < hi) { /* the last section starting at or below addr */
		size_t mid = lo + (hi - lo) / 2;
		if (sects[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo && addr < sects[lo - 1].start + sects[lo - 1].size)
		sects[lo - 1].hit = true;
}

/*
 * Callgrind names every object and function once, on the first line that mentions it
 * (ob=, cob=, fn= or cfn=: "(ID) name"), and by its ID alone after that. Cost lines start
 * with a position: an absolute 0xADDR, +N or -N from the previous one, or * for the same;
 * they belong to the object and function of the last ob= and fn= lines (cob=/cfn= name a
 * call's target only). Code in the binary's .text comes as offsets into the binary, under
 * the binary's name; code outside it (.text.flint_hot once this list is in use, .init,
 * .plt) as run-time addresses under "???". The base of those is found from the functions
 * whose first instruction ran: their lowest address less their address in the map.
 */
struct names {
	char **v;
	size_t n, cap;
};

/* "(ID) name" or "(ID)" after PREFIX=: the ID, its name remembered; -1 for another line. */
static long name_ref(const char *line, const char *prefix, struct names *t)
{
	size_t pl = strlen(prefix);
	char *end;
	long id;

	if (strncmp(line, prefix, pl) || line[pl] != '(')
		return -1;
	id = strtol(line + pl + 1, &end, 10);
	if (id < 0 || *end != ')')
		return -1;
	while ((size_t)id >= t->n) {
		t->v = grow(t->v, t->n, &t->cap, sizeof(*t->v));
		t->v[t->n++] = NULL;
	}
	if (end[1] == ' ' && !t->v[id])
		t->v[id] = strdup(end + 2);
	return id;
}

struct hit {
	uint64_t addr;
	long fn;
	bool unnamed;
};
static struct hit *hits;
static size_t nhits, caphits;

static const char *base_name(const char *path)
{
	const char *b = strrchr(path, '/');
	return b ? b + 1 : path;
}

/*
 * The base of the unnamed code: the value most functions agree on; UINT64_MAX when none
 * can say (without the list, the unnamed code is only .init and .fini, whose functions
 * callgrind names by their addresses: nothing of the list's is there).
 */
static uint64_t unnamed_base(const struct names *fns, const char *path)
{
	uint64_t *lo = calloc(fns->n, sizeof(*lo)), *at = calloc(fns->n, sizeof(*at)), best = 0;
	size_t best_n = 0;

	if (!lo || !at)
		die("out of memory", path);
	for (size_t i = 0; i < fns->n; i++) {
		lo[i] = UINT64_MAX;
		at[i] = fns->v[i] ? sym_addr(fns->v[i]) : 0;
	}
	for (size_t i = 0; i < nhits; i++)
		if (hits[i].unnamed && hits[i].fn >= 0 && hits[i].addr < lo[hits[i].fn])
			lo[hits[i].fn] = hits[i].addr;
	for (size_t i = 0; i < fns->n; i++) {
		uint64_t cand;
		size_t n = 0;
		if (lo[i] == UINT64_MAX || !at[i] || lo[i] < at[i] ||
		    ((cand = lo[i] - at[i]) & 0xfff))
			continue;
		for (size_t j = 0; j < fns->n; j++)
			n += lo[j] != UINT64_MAX && at[j] && lo[j] - at[j] == cand;
		if (n > best_n)
			best = cand, best_n = n;
	}
	free(lo);
	free(at);
	return best_n ? best : UINT64_MAX;
}

static void profile_read(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[4096], exe[1024] = "";
	struct names obs = { 0 }, fns = { 0 };
	long ob = -1, fn = -1, id;
	uint64_t cur = 0, base = 0;
	bool any_unnamed = false;

	if (!f)
		die(strerror(errno), path);
	nhits = 0;
	while (fgets(line, sizeof(line), f)) {
		char *end;
		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "cmd: %1023s", exe) == 1)
			continue;
		if ((id = name_ref(line, "ob=", &obs)) >= 0) {
			ob = id;
			continue;
		}
		if (name_ref(line, "cob=", &obs) >= 0 || name_ref(line, "cfn=", &fns) >= 0)
			continue;
		if ((id = name_ref(line, "fn=", &fns)) >= 0) {
			fn = id;
			continue;
		}
		if (!strncmp(line, "0x", 2))
			cur = strtoull(line + 2, &end, 16);
		else if (line[0] == '+' || line[0] == '-')
			cur += (uint64_t)strtoll(line, &end, 10);
		else if (line[0] != '*')
			continue;
		const char *obn = ob >= 0 ? obs.v[ob] : NULL;
		bool unnamed = obn && !strcmp(obn, "\?\?\?");
		/* Only flint's own code: the binary the profile's command ran, or unnamed. */
		if (!obn || (!unnamed && strcmp(base_name(obn), base_name(exe))))
			continue;
		hits = grow(hits, nhits, &caphits, sizeof(*hits));
		hits[nhits++] = (struct hit){ cur, fn, unnamed };
		any_unnamed |= unnamed;
	}
	fclose(f);
	if (any_unnamed && (base = unnamed_base(&fns, path)) == UINT64_MAX)
		fprintf(stderr,
		        "text-order: %s: code under ??? that no function places: left out\n", path);
	for (size_t i = 0; i < nhits; i++) {
		if (!hits[i].unnamed)
			mark(hits[i].addr);
		else if (base != UINT64_MAX)
			mark(hits[i].addr - base);
	}
}

/* A map file name as a linker-script file pattern: *libc.a:malloc.o or *main.o. */
static void pattern_print(const struct sect *s)
{
	const char *open = strchr(s->file, '(');
	const char *base;

	if (open && s->file[strlen(s->file) - 1] == ')') {
		base = open;
		while (base > s->file && base[-1] != '/')
			base--;
		printf("    *%.*s:%.*s(%s)\n", (int)(open - base), base, (int)(strlen(open) - 2),
		       open + 1, s->name);
		return;
	}
	base = strrchr(s->file, '/');
	printf("    *%s(%s)\n", base ? base + 1 : s->file, s->name);
}

/*
 * libc's CPU-specific string routines are objects named FAMILY-ISA...o (strlen-avx2.o,
 * memmove-evex-unaligned-erms.o), chosen at start by the CPU. For each family the profile
 * ran, the variants it did not run: after the list, together, so that another CPU's choice
 * is a window or two, not one per family scattered through libc.
 */
static bool variant_family(const struct sect *s, char *fam, size_t len)
{
	static const char *isas[] = { "sse2", "ssse3", "sse4", "avx", "evex" };
	const char *m = strstr(s->file, "libc.a("), *dash;

	if (!m || !(dash = strchr(m += 7, '-')))
		return false;
	for (size_t i = 0; i < sizeof(isas) / sizeof(*isas); i++) {
		if (!strncmp(dash + 1, isas[i], strlen(isas[i]))) {
			snprintf(fam, len, "%.*s", (int)(dash - m), m);
			return true;
		}
	}
	return false;
}

static void variants_print(void)
{
	char fam[256], prev[256];

	for (size_t i = 0; i < nsects; i++) {
		bool seen = false;
		if (!sects[i].hit || !variant_family(&sects[i], fam, sizeof(fam)))
			continue;
		for (size_t j = 0; j < i && !seen; j++)
			seen = sects[j].hit && variant_family(&sects[j], prev, sizeof(prev)) &&
			       !strcmp(prev, fam);
		if (!seen)
			printf("    *libc.a:%s-*.o(.text .text.*)\n", fam);
	}
}

int main(int argc, char **argv)
{
	size_t n = 0;
	uint64_t bytes = 0;
	int i = 2, nalso;

	if (argc < 3) {
		fprintf(stderr, "usage: text-order LINK_MAP CALLGRIND_OUT... [-- ALSO...]\n");
		return 2;
	}
	map_read(argv[1]);
	if (!nsects)
		die("no .text input sections (not an ld -Map file?)", argv[1]);
	qsort(sects, nsects, sizeof(*sects), sect_cmp);
	for (; i < argc && strcmp(argv[i], "--"); i++)
		profile_read(argv[i]); /* the union of the runs */
	nalso = i < argc ? argc - i - 1 : 0;

	printf("/* Generated by bench/text-order.sh (bench/text-order.c) from profiles of a\n"
	       " * start: the code flint runs when it boots a VM, laid out first, together\n"
	       " * (bench/README.md, \"Text order\"). `make text-order` remakes it; `make check`\n"
	       " * fails on a line that names no section of the link. */\n"
	       "SECTIONS\n{\n  .text.flint_hot :\n  {\n");
	for (size_t k = 0; k < nsects; k++) {
		if (!sects[k].hit)
			continue;
		pattern_print(&sects[k]);
		n++;
		bytes += sects[k].size;
	}
	if (!n)
		die("no executed instruction falls in the map's code", argv[2]);
	for (int k = argc - nalso; k < argc; k++)
		printf("    %s\n", argv[k]);
	variants_print(); /* last: code this CPU does not run */
	printf("  }\n}\nINSERT BEFORE .text;\n");
	fprintf(stderr, "text-order: %zu sections, %" PRIu64 " bytes, then %d patterns\n", n, bytes,
	        nalso);
	return 0;
}
