/*
 * Rig helper, for L1 and L2 alike: writes or checks a pattern in a memory BAR of the PCI
 * device VENDOR:DEVICE through sysfs (resourceN, no driver). Memory decoding is turned on
 * through the config space first. The pattern covers 64 bytes at the start, the middle and
 * the last page of the BAR, so a check proves the whole BAR reaches the same memory.
 * With MIN_ADDR, the BAR must lie at or above it (e.g. 0x100000000: above 4 GiB).
 *
 * Usage: barpat VENDOR DEVICE BAR fill|check SEED [MIN_ADDR]   (numbers in C notation)
 * Exit 0 on success; 1 with the reason otherwise.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SPAN 64 /* bytes of pattern at each probed offset */

static _Noreturn void fail(const char *what, const char *detail)
{
	printf("barpat: %s: %s\n", what, detail);
	exit(1);
}

static unsigned long read_hex(const char *dir, const char *file)
{
	char path[512], buf[64] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "r");
	if (!f || !fgets(buf, sizeof(buf), f))
		fail(path, "unreadable");
	fclose(f);
	return strtoul(buf, NULL, 0);
}

static void find(char *dir, size_t len, unsigned long vendor, unsigned long device)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *e;

	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(dir, len, "/sys/bus/pci/devices/%s", e->d_name);
		if (read_hex(dir, "vendor") == vendor && read_hex(dir, "device") == device) {
			closedir(d);
			return;
		}
	}
	fail("no such PCI device", "not in /sys/bus/pci/devices");
}

/* Line @bar of the device's "resource" file: start and end (inclusive). */
static void bar_range(const char *dir, unsigned bar, uint64_t *start, uint64_t *end)
{
	char path[512], line[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/resource", dir);
	f = fopen(path, "r");
	for (unsigned i = 0; f && fgets(line, sizeof(line), f); i++)
		if (i == bar && sscanf(line, "%" SCNx64 " %" SCNx64, start, end) == 2) {
			fclose(f);
			return;
		}
	fail(path, "no such BAR line");
}

static void enable_memory(const char *dir)
{
	char path[512];
	uint16_t cmd;
	int fd;

	snprintf(path, sizeof(path), "%s/config", dir);
	fd = open(path, O_RDWR);
	if (fd < 0 || pread(fd, &cmd, 2, 4) != 2)
		fail(path, "cannot read the command register");
	cmd |= 2;
	if (pwrite(fd, &cmd, 2, 4) != 2)
		fail(path, "cannot write the command register");
	close(fd);
}

static uint8_t pattern(uint64_t seed, uint64_t off)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull ^ off;

	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	return (uint8_t)(x >> 32);
}

int main(int argc, char **argv)
{
	char dir[300], path[400], detail[200];
	uint64_t start, end, size, seed, offs[3];
	volatile uint8_t *m;
	unsigned bar;
	bool fill;
	int fd;

	if (argc < 6)
		fail("usage", "barpat VENDOR DEVICE BAR fill|check SEED [MIN_ADDR]");
	find(dir, sizeof(dir), strtoul(argv[1], NULL, 0), strtoul(argv[2], NULL, 0));
	bar = (unsigned)strtoul(argv[3], NULL, 0);
	fill = !strcmp(argv[4], "fill");
	seed = strtoull(argv[5], NULL, 0);
	bar_range(dir, bar, &start, &end);
	size = end - start + 1;
	printf("barpat: %s BAR%u at %#" PRIx64 ", %" PRIu64 " KiB\n", dir, bar, start, size >> 10);
	if (!start || size < 4096)
		fail("BAR", "not assigned, or smaller than a page");
	if (argc > 6 && start < strtoull(argv[6], NULL, 0))
		fail("BAR", "below the address asked for");
	enable_memory(dir);
	snprintf(path, sizeof(path), "%s/resource%u", dir, bar);
	fd = open(path, O_RDWR | O_SYNC);
	m = fd < 0 ? MAP_FAILED : mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		fail(path, "cannot map");
	offs[0] = 0, offs[1] = size / 2, offs[2] = size - 4096;
	for (unsigned k = 0; k < 3; k++)
		for (uint64_t i = offs[k]; i < offs[k] + SPAN; i++) {
			if (fill) {
				m[i] = pattern(seed, i);
			} else if (m[i] != pattern(seed, i)) {
				snprintf(detail, sizeof(detail),
				         "offset %#" PRIx64 ": %#x, want %#x", i, m[i],
				         pattern(seed, i));
				fail("pattern", detail);
			}
		}
	printf("barpat: pattern %" PRIu64 " %s at 3 places\n", seed, fill ? "written" : "found");
	return 0;
}
