/* A blocking HTTP/1.1 client over a Unix socket, for the API tests. */
#include "tests/lib/http_client.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define REPLY_MAX    (1 << 20)
#define READ_WAIT_MS 30000 /* an answer slower than this is no answer */

int http_connect(const char *sock, int wait_ms)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };

	if (strlen(sock) >= sizeof(a.sun_path))
		return -1;
	strcpy(a.sun_path, sock);
	for (int waited = 0;; waited += 10) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			return fd;
		if (fd >= 0)
			close(fd);
		if (waited >= wait_ms)
			return -1;
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Reads until the server closes (Connection: close). Returns the bytes or NULL. */
static char *read_all(int fd, size_t *len)
{
	char *buf = malloc(REPLY_MAX + 1);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t n = 0;
	ssize_t k = 1;

	while (buf && n < REPLY_MAX && k > 0 && poll(&p, 1, READ_WAIT_MS) == 1)
		if ((k = read(fd, buf + n, REPLY_MAX - n)) > 0)
			n += (size_t)k;
	if (buf)
		buf[n] = 0;
	*len = n;
	return buf;
}

int http_request(const char *sock, const char *method, const char *path, const char *body,
                 struct http_reply *out)
{
	size_t blen = body ? strlen(body) : 0, n;
	int fd = http_connect(sock, 0), r = -1;
	char head[512], *buf = NULL, *sep;

	out->status = 0;
	out->body = NULL;
	if (fd < 0)
		goto done;
	snprintf(
	        head, sizeof(head),
	        "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAccept: "
	        "application/json\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
	        method, path, blen);
	if (write_all(fd, head, strlen(head)) || (blen && write_all(fd, body, blen)))
		goto done;
	buf = read_all(fd, &n);
	if (!buf || sscanf(buf, "HTTP/1.1 %d", &out->status) != 1)
		goto done;
	sep = strstr(buf, "\r\n\r\n");
	out->body = strdup(sep ? sep + 4 : "");
	r = out->body ? 0 : -1;
done:
	if (fd >= 0)
		close(fd);
	free(buf);
	if (r)
		out->status = 0;
	if (!out->body)
		out->body = strdup("");
	return r;
}
