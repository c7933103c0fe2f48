/*
 * L1 side of the rig's virtio-vsock case: the host end of Firecracker's hybrid vsock.
 *   vsock-host connect UDS PORT NBYTES SEED
 *       connect to flint's Unix socket UDS, write "CONNECT PORT\n", read "OK <n>\n" (tried
 *       again every second, up to 200 s, while the socket is not there yet or the guest does
 *       not accept), then send NBYTES of the pattern (SEED) and read them back: every
 *       echoed byte must be the one sent at its offset, and the stream must end after them
 *   vsock-host listen PATH NBYTES SEED
 *       listen on the Unix socket PATH (flint's "<uds_path>_<port>"), accept one
 *       connection, read until EOF: every byte must be the pattern (SEED) at its offset and
 *       exactly NBYTES must come; answer "GOT <NBYTES> <fnv1a32 as %08x>\n" and close
 * Exit 0 on success; otherwise one line on stderr saying why.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../stream.h"

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;

	fputs("vsock-host: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static struct sockaddr_un unix_addr(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(a.sun_path))
		die("%s: path too long", path);
	strcpy(a.sun_path, path);
	return a;
}

/* Up to @secs for @fd to be readable: 1 yes, 0 timed out. */
static int wait_in(int fd, int secs)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;

	do
		r = poll(&p, 1, secs * 1000);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		die("poll: %s", strerror(errno));
	return r;
}

/*
 * One attempt at the handshake: the connected socket, or -1 to try again (the socket is
 * not there yet, or flint closed the connection because the guest refused it).
 */
static int try_connect(const char *uds, unsigned port)
{
	struct sockaddr_un a = unix_addr(uds);
	char line[64], cmd[32];
	size_t len = 0;
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int n;

	if (s < 0)
		die("socket: %s", strerror(errno));
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		if (errno != ENOENT && errno != ECONNREFUSED)
			die("connect %s: %s", uds, strerror(errno));
		close(s);
		return -1;
	}
	n = snprintf(cmd, sizeof(cmd), "CONNECT %u\n", port);
	if (write(s, cmd, (size_t)n) != n)
		die("write CONNECT: %s", strerror(errno));
	/* Byte by byte: what follows the line belongs to the stream. */
	for (;;) {
		ssize_t r;

		if (!wait_in(s, 30))
			die("no answer to CONNECT %u for 30 s", port);
		r = read(s, line + len, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno != ECONNRESET)
			die("read the answer to CONNECT: %s", strerror(errno));
		if (r <= 0) {
			if (len)
				die("flint closed the connection after '%.*s'", (int)len, line);
			close(s);
			return -1;
		}
		if (line[len++] == '\n')
			break;
		if (len == sizeof(line) - 1)
			die("answer to CONNECT too long: '%.*s'", (int)len, line);
	}
	line[len] = '\0';
	{
		char *end;
		unsigned long v;

		if (strncmp(line, "OK ", 3) || line[3] < '0' || line[3] > '9')
			die("answer to CONNECT %u is '%.*s', want 'OK <port>'", port, (int)len - 1,
			    line);
		errno = 0;
		v = strtoul(line + 3, &end, 10);
		if (errno || strcmp(end, "\n") || v > UINT32_MAX)
			die("answer to CONNECT %u is '%.*s', want 'OK <port>'", port, (int)len - 1,
			    line);
		printf("vsock-host: CONNECT %u answered 'OK %lu'\n", port, v);
	}
	return s;
}

static int do_connect(const char *uds, unsigned port, uint64_t nbytes, uint32_t seed)
{
	uint8_t buf[16384];
	uint64_t sent = 0, got = 0;
	bool shut = false;
	int s = -1;

	for (int tries = 0; s < 0; tries++) {
		if (tries == 200)
			die("no 'OK' from %s for CONNECT %u after %d tries", uds, port, tries);
		if (tries)
			sleep(1);
		s = try_connect(uds, port);
	}
	if (fcntl(s, F_SETFL, O_NONBLOCK) < 0)
		die("fcntl: %s", strerror(errno));
	/* Send and read the echo at once: the guest echoes as it reads. */
	for (;;) {
		struct pollfd p = { .fd = s, .events = POLLIN | (sent < nbytes ? POLLOUT : 0) };
		int r = poll(&p, 1, 60000);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die("poll: %s", strerror(errno));
		if (r == 0)
			die("no progress for 60 s: sent %" PRIu64 ", echoed %" PRIu64
			    " of %" PRIu64,
			    sent, got, nbytes);
		if (p.revents & POLLOUT) {
			size_t n =
			        nbytes - sent < sizeof(buf) ? (size_t)(nbytes - sent) : sizeof(buf);
			ssize_t w;

			for (size_t i = 0; i < n; i++)
				buf[i] = pattern(sent + i, seed);
			w = send(s, buf, n, MSG_NOSIGNAL);
			if (w < 0 && errno != EAGAIN && errno != EINTR)
				die("send after %" PRIu64 " bytes: %s", sent, strerror(errno));
			if (w > 0)
				sent += (uint64_t)w;
		}
		if (sent == nbytes && !shut) {
			if (shutdown(s, SHUT_WR) < 0)
				die("shutdown: %s", strerror(errno));
			shut = true;
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = recv(s, buf, sizeof(buf), 0);

			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n < 0)
				die("recv after %" PRIu64 " echoed bytes: %s", got,
				    strerror(errno));
			if (n == 0)
				break;
			for (ssize_t i = 0; i < n; i++)
				if (buf[i] != pattern(got + (uint64_t)i, seed))
					die("echoed byte %" PRIu64 " is %#x, want %#x",
					    got + (uint64_t)i, buf[i],
					    pattern(got + (uint64_t)i, seed));
			got += (uint64_t)n;
			if (got > sent)
				die("%" PRIu64 " bytes echoed, only %" PRIu64 " sent", got, sent);
		}
	}
	if (got != nbytes)
		die("the echo ended after %" PRIu64 " bytes, want %" PRIu64, got, nbytes);
	close(s);
	printf("vsock-host: %" PRIu64 " bytes sent to guest port %u and echoed back intact\n",
	       nbytes, port);
	return 0;
}

static int do_listen(const char *path, uint64_t nbytes, uint32_t seed)
{
	struct sockaddr_un a = unix_addr(path);
	uint8_t buf[16384];
	char reply[64];
	uint64_t got = 0, bad_at = UINT64_MAX;
	uint32_t h = 2166136261u;
	int s, c, n;

	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		die("socket: %s", strerror(errno));
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 4) < 0)
		die("bind/listen %s: %s", path, strerror(errno));
	printf("vsock-host: listening on %s\n", path);
	fflush(stdout);
	if (!wait_in(s, 240))
		die("nobody connected to %s in 240 s", path);
	c = accept(s, NULL, NULL);
	if (c < 0)
		die("accept: %s", strerror(errno));
	for (;;) {
		ssize_t r;

		if (!wait_in(c, 60))
			die("no data for 60 s after %" PRIu64 " bytes", got);
		r = read(c, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die("read after %" PRIu64 " bytes: %s", got, strerror(errno));
		if (r == 0)
			break;
		for (ssize_t i = 0; i < r && bad_at == UINT64_MAX; i++)
			if (buf[i] != pattern(got + (uint64_t)i, seed))
				bad_at = got + (uint64_t)i;
		h = fnv1a(h, buf, (size_t)r);
		got += (uint64_t)r;
	}
	if (bad_at != UINT64_MAX)
		n = snprintf(reply, sizeof(reply), "BAD byte %" PRIu64 "\n", bad_at);
	else
		n = snprintf(reply, sizeof(reply), "GOT %" PRIu64 " %08x\n", got, h);
	if (write(c, reply, (size_t)n) != n)
		die("write the answer: %s", strerror(errno));
	close(c);
	close(s);
	unlink(path);
	if (bad_at != UINT64_MAX)
		die("byte %" PRIu64 " from the guest is not the pattern", bad_at);
	if (got != nbytes)
		die("the guest sent %" PRIu64 " bytes, want %" PRIu64, got, nbytes);
	printf("vsock-host: %" PRIu64 " bytes from the guest checked (fnv1a %08x)\n", got, h);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 6 && !strcmp(argv[1], "connect"))
		return do_connect(argv[2], (unsigned)strtoul(argv[3], NULL, 0),
		                  strtoull(argv[4], NULL, 0), (uint32_t)strtoul(argv[5], NULL, 0));
	if (argc == 5 && !strcmp(argv[1], "listen"))
		return do_listen(argv[2], strtoull(argv[3], NULL, 0),
		                 (uint32_t)strtoul(argv[4], NULL, 0));
	fprintf(stderr,
	        "usage: vsock-host connect UDS PORT NBYTES SEED | listen PATH NBYTES SEED\n");
	return 2;
}
