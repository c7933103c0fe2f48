/*
 * L2 helper for the rig's virtio-vsock case (static: L2 has only busybox).
 *   vsock cid                          print this guest's CID
 *   vsock listen PORT NBYTES SEED      accept one connection on PORT; every byte read must
 *                                      be the pattern (SEED) at its offset and is echoed
 *                                      back; the stream must end after exactly NBYTES
 *   vsock send CID PORT NBYTES SEED    connect to CID:PORT, send NBYTES of the pattern,
 *                                      shut down writing; the peer must answer
 *                                      "GOT <NBYTES> <fnv1a32 as %08x>\n" and close
 * Exit 0 on success; otherwise one line on stderr saying why.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>

#include "../stream.h"

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;

	fputs("vsock: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("write: %s", w < 0 ? strerror(errno) : "wrote nothing");
		p += w;
		n -= (size_t)w;
	}
}

/* Waits up to @secs for @fd to be readable. */
static void wait_in(int fd, int secs, const char *what)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;

	do
		r = poll(&p, 1, secs * 1000);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		die("poll: %s", strerror(errno));
	if (r == 0)
		die("nothing for %d s while %s", secs, what);
}

static int do_listen(unsigned port, uint64_t nbytes, uint32_t seed)
{
	struct sockaddr_vm a = { .svm_family = AF_VSOCK,
		                 .svm_cid = VMADDR_CID_ANY,
		                 .svm_port = port };
	uint8_t buf[16384];
	uint64_t got = 0;
	int s, c;

	s = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (s < 0)
		die("socket(AF_VSOCK): %s", strerror(errno));
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 1) < 0)
		die("bind/listen on port %u: %s", port, strerror(errno));
	printf("flint-l2: vsock listening on port %u\n", port);
	fflush(stdout);
	wait_in(s, 200, "waiting for the host to connect");
	c = accept(s, NULL, NULL);
	if (c < 0)
		die("accept: %s", strerror(errno));
	for (;;) {
		ssize_t n;

		wait_in(c, 60, "reading the host's stream");
		n = read(c, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("read after %" PRIu64 " bytes: %s", got, strerror(errno));
		if (n == 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != pattern(got + (uint64_t)i, seed))
				die("byte %" PRIu64 " from the host is %#x, want %#x",
				    got + (uint64_t)i, buf[i], pattern(got + (uint64_t)i, seed));
		got += (uint64_t)n;
		if (got > nbytes)
			die("the host sent %" PRIu64 " bytes, more than %" PRIu64, got, nbytes);
		write_all(c, buf, (size_t)n);
	}
	if (got != nbytes)
		die("the host's stream ended after %" PRIu64 " bytes, want %" PRIu64, got, nbytes);
	close(c);
	close(s);
	printf("flint-l2: vsock port %u: %" PRIu64 " bytes from the host checked and echoed\n",
	       port, got);
	return 0;
}

static int do_send(unsigned cid, unsigned port, uint64_t nbytes, uint32_t seed)
{
	struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port };
	uint8_t buf[16384];
	char reply[128], want[128];
	size_t rlen = 0;
	uint32_t h = 2166136261u;
	uint64_t sent = 0;
	int s = -1;

	for (int tries = 0;; tries++) {
		s = socket(AF_VSOCK, SOCK_STREAM, 0);
		if (s < 0)
			die("socket(AF_VSOCK): %s", strerror(errno));
		if (connect(s, (struct sockaddr *)&a, sizeof(a)) == 0)
			break;
		if (tries == 10)
			die("connect to %u:%u: %s (10 tries)", cid, port, strerror(errno));
		fprintf(stderr, "vsock: connect to %u:%u: %s; again in 1 s\n", cid, port,
		        strerror(errno));
		close(s);
		sleep(1);
	}
	while (sent < nbytes) {
		size_t n = nbytes - sent < sizeof(buf) ? (size_t)(nbytes - sent) : sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(sent + i, seed);
		h = fnv1a(h, buf, n);
		write_all(s, buf, n);
		sent += n;
	}
	if (shutdown(s, SHUT_WR) < 0)
		die("shutdown: %s", strerror(errno));
	for (;;) {
		ssize_t n;

		wait_in(s, 60, "waiting for the host's answer");
		n = read(s, reply + rlen, sizeof(reply) - 1 - rlen);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("read the answer: %s", strerror(errno));
		if (n == 0)
			break;
		rlen += (size_t)n;
		if (rlen == sizeof(reply) - 1)
			break;
	}
	reply[rlen] = '\0';
	snprintf(want, sizeof(want), "GOT %" PRIu64 " %08x\n", nbytes, h);
	if (strcmp(reply, want))
		die("the host answered '%.*s', want '%.*s'", (int)strcspn(reply, "\n"), reply,
		    (int)strcspn(want, "\n"), want);
	close(s);
	printf("flint-l2: vsock %u:%u: the host got our %" PRIu64 " bytes (fnv1a %08x)\n", cid,
	       port, nbytes, h);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "cid")) {
		unsigned cid = 0;
		int fd = open("/dev/vsock", O_RDONLY);
		if (fd < 0 || ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) < 0)
			die("/dev/vsock: %s", strerror(errno));
		printf("%u\n", cid);
		return 0;
	}
	if (argc == 5 && !strcmp(argv[1], "listen"))
		return do_listen((unsigned)strtoul(argv[2], NULL, 0), strtoull(argv[3], NULL, 0),
		                 (uint32_t)strtoul(argv[4], NULL, 0));
	if (argc == 6 && !strcmp(argv[1], "send"))
		return do_send((unsigned)strtoul(argv[2], NULL, 0),
		               (unsigned)strtoul(argv[3], NULL, 0), strtoull(argv[4], NULL, 0),
		               (uint32_t)strtoul(argv[5], NULL, 0));
	fprintf(stderr, "usage: vsock cid | listen PORT NBYTES SEED | send CID PORT NBYTES SEED\n");
	return 2;
}
