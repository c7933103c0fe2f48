/*
 * text-order: the linker script that lays flint's start-up code out together
 * (vmm/text-order.ld), from a profile of one start.
 *
 *   text-order CALLGRIND_OUT LINK_MAP [ALSO...] > vmm/text-order.ld
 *
 * CALLGRIND_OUT is `valgrind --tool=callgrind --dump-instr=yes` of one flint run (the
 * addresses of every instruction it executed, relative to the binary); LINK_MAP is `ld -Map`
 * of that same binary, linked from objects built with -ffunction-sections. Every input
 * section (a function of flint's, one libc or libevent object's .text) holding an executed
 * instruction is listed, in the order the link placed them, then the ALSO patterns as they
 * are given (code the profile cannot see: under valgrind flint runs without its seccomp
 * filters). The linker puts the list first, before the rest of .text.
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
static uint64_t map_main; /* main's address in the map */

static void die(const char *what, const char *file)
{
	fprintf(stderr, "text-order: %s: %s\n", file, what);
	exit(1);
}

static void sect_add(const char *name, uint64_t start, uint64_t size, const char *file)
{
	if (size == 0)
		return;
	if (nsects == capsects) {
		capsects = capsects ? 2 * capsects : 1024;
		sects = realloc(sects, capsects * sizeof(*sects));
		if (!sects)
			die("out of memory", "sections");
	}
	sects[nsects++] = (struct sect){ start, size, strdup(name), strdup(file), false };
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
		else if (sscanf(line, " 0x%" SCNx64 " %2047s", &a, file) == 2 &&
		         !strcmp(file, "main"))
			map_main = a;
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
 * Callgrind's cost lines start with a position: an absolute 0xADDR, +N or -N from the
 * previous one, or * for the same. Lines of other kinds (fn=, calls=, headers) do not.
 * Positions are offsets into the binary when callgrind names its object (ob=(1) /b/flint);
 * now and then it names it ??? and gives run-time addresses instead (a PIE loaded at
 * valgrind's base): then main's first instruction, against main's address in the map,
 * gives the base.
 */
static uint64_t *addrs;
static size_t naddrs, capaddrs;

static void addr_add(uint64_t a)
{
	if (naddrs == capaddrs) {
		capaddrs = capaddrs ? 2 * capaddrs : 65536;
		addrs = realloc(addrs, capaddrs * sizeof(*addrs));
		if (!addrs)
			die("out of memory", "profile");
	}
	addrs[naddrs++] = a;
}

static void profile_read(const char *path, uint64_t map_main)
{
	FILE *f = fopen(path, "r");
	char line[4096], exe[1024] = "";
	long main_id = -1, id;
	bool in_exe = false, in_main = false, unnamed = false;
	uint64_t cur = 0, main_min = UINT64_MAX, base = 0;
	int off;

	if (!f)
		die(strerror(errno), path);
	while (fgets(line, sizeof(line), f)) {
		char *end;
		line[strcspn(line, "\n")] = '\0';
		/* Only flint's own instructions: the binary the profile's command ran. */
		if (sscanf(line, "cmd: %1023s", exe) == 1)
			continue;
		if (sscanf(line, "ob=(%ld)%n", &id, &off) == 1) {
			const char *name = line + off + (line[off] == ' ');
			if (*name) /* first mention: id and name; later ones: the id alone */
				in_exe = !strcmp(name, exe) || (unnamed = !strcmp(name, "\?\?\?"));
			continue;
		}
		if (sscanf(line, "fn=(%ld)%n", &id, &off) == 1) {
			if (!strcmp(line + off, " main"))
				main_id = id;
			in_main = id == main_id;
			continue;
		}
		if (!in_exe)
			continue;
		if (!strncmp(line, "0x", 2))
			cur = strtoull(line + 2, &end, 16);
		else if (line[0] == '+' || line[0] == '-')
			cur += (uint64_t)strtoll(line, &end, 10);
		else if (line[0] != '*')
			continue;
		addr_add(cur);
		if (in_main && cur < main_min)
			main_min = cur;
	}
	fclose(f);
	if (unnamed) {
		if (main_min == UINT64_MAX || !map_main || main_min < map_main)
			die("flint named \"\?\?\?\" and no main to place it by", path);
		base = main_min - map_main;
	}
	for (size_t i = 0; i < naddrs; i++)
		mark(addrs[i] - base);
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

int main(int argc, char **argv)
{
	size_t n = 0;
	uint64_t bytes = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: text-order CALLGRIND_OUT LINK_MAP [ALSO...]\n");
		return 2;
	}
	map_read(argv[2]);
	if (!nsects)
		die("no .text input sections (not an ld -Map file?)", argv[2]);
	qsort(sects, nsects, sizeof(*sects), sect_cmp);
	profile_read(argv[1], map_main);

	printf("/* Generated by bench/text-order.sh (bench/text-order.c) from a profile of one\n"
	       " * start: the code flint runs when it boots a VM, laid out first, together\n"
	       " * (bench/README.md, \"Text order\"). `make text-order` remakes it; `make check`\n"
	       " * fails on a line that names no section of the link. */\n"
	       "SECTIONS\n{\n  .text.flint_hot :\n  {\n");
	for (size_t i = 0; i < nsects; i++) {
		if (!sects[i].hit)
			continue;
		pattern_print(&sects[i]);
		n++;
		bytes += sects[i].size;
	}
	if (!n)
		die("no executed instruction falls in the map's code", argv[1]);
	for (int i = 3; i < argc; i++)
		printf("    %s\n", argv[i]);
	printf("  }\n}\nINSERT BEFORE .text;\n");
	fprintf(stderr, "text-order: %zu sections, %" PRIu64 " bytes, then %d patterns\n", n, bytes,
	        argc - 3);
	return 0;
}
