/*
 * L2's MMDS client: what a guest's curl does against the MMDS, over the kernel's TCP to
 * flint's stack in virtio-net (busybox has no HTTP client that sends headers and PUT).
 *
 *   mmds [-a ADDR] [-p PORT] [-H 'Name: value']... [-d BODY] [-t TTL] METHOD PATH
 *
 * -t TTL first asks for a session token the MMDS version 2 way (PUT /latest/api/token with
 * X-metadata-token-ttl-seconds: TTL, on its own connection) and sends it with the request
 * as X-metadata-token. The answer's body goes to stdout, "mmds: HTTP <status>" to stderr.
 * Exit 0 for a 2xx answer, 1 for another status, 2 when the connection or the answer failed
 * (10 s at most for each).
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define MAX_HEADERS 16
#define MAX_ANSWER  (1 << 20)

static const char *addr = "169.254.169.254";
static int port = 80;

static int fail(const char *what)
{
	fprintf(stderr, "mmds: %s: %s\n", what, errno ? strerror(errno) : "bad answer");
	return -1;
}

/* One request on its own connection: the answer's status, its body in *@body (NUL-ended). */
static int request(const char *req, size_t req_len, char **body, size_t *body_len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = 10 };
	char *buf = malloc(MAX_ANSWER + 1), *end, *cl;
	size_t len = 0, want = 0, hdr = 0;
	int fd, status;
	ssize_t r;

	errno = 0;
	if (!buf)
		return fail("out of memory");
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
		return fail("not an IPv4 address");
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return fail("socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return fail("connect");
	for (size_t off = 0; off < req_len; off += (size_t)r)
		if ((r = write(fd, req + off, req_len - off)) <= 0)
			return fail("write");
	/* Until the headers and Content-Length bytes of body are in, or the MMDS closes. */
	for (;;) {
		buf[len] = 0;
		end = strstr(buf, "\r\n\r\n");
		if (end) {
			hdr = (size_t)(end + 4 - buf);
			cl = strcasestr(buf, "\r\nContent-Length:");
			want = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
			if (len >= hdr + want)
				break;
		}
		if (len == MAX_ANSWER)
			return fail("answer over 1 MiB");
		r = read(fd, buf + len, MAX_ANSWER - len);
		if (r < 0)
			return fail("read");
		if (r == 0) {
			errno = 0;
			if (!end)
				return fail("closed before the headers ended");
			want = len - hdr; /* no Content-Length: the body ends with the connection */
			break;
		}
		len += (size_t)r;
	}
	close(fd);
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) {
		errno = 0;
		return fail("no status line");
	}
	*body = buf + hdr;
	(*body)[want] = 0;
	*body_len = want;
	return status;
}

int main(int argc, char **argv)
{
	const char *headers[MAX_HEADERS], *data = NULL, *ttl = NULL;
	char req[8192], token[512] = "", *body;
	size_t nh = 0, body_len;
	int opt, n, status;

	while ((opt = getopt(argc, argv, "a:p:H:d:t:")) != -1) {
		switch (opt) {
		case 'a':
			addr = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'H':
			if (nh < MAX_HEADERS)
				headers[nh++] = optarg;
			break;
		case 'd':
			data = optarg;
			break;
		case 't':
			ttl = optarg;
			break;
		default:
			goto usage;
		}
	}
	if (argc - optind != 2)
		goto usage;
	if (ttl) {
		n = snprintf(req, sizeof(req),
		             "PUT /latest/api/token HTTP/1.1\r\nHost: %s\r\nAccept: */*\r\n"
		             "X-metadata-token-ttl-seconds: %s\r\n\r\n",
		             addr, ttl);
		status = request(req, (size_t)n, &body, &body_len);
		if (status < 0)
			return 2;
		if (status / 100 != 2 || body_len >= sizeof(token)) {
			fprintf(stderr, "mmds: token: HTTP %d %s\n", status, body);
			return 1;
		}
		memcpy(token, body, body_len + 1);
	}
	n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: %s\r\nAccept: */*\r\n",
	             argv[optind], argv[optind + 1], addr);
	for (size_t i = 0; i < nh && n < (int)sizeof(req); i++)
		n += snprintf(req + n, sizeof(req) - (size_t)n, "%s\r\n", headers[i]);
	if (*token && n < (int)sizeof(req))
		n += snprintf(req + n, sizeof(req) - (size_t)n, "X-metadata-token: %s\r\n", token);
	if (data && n < (int)sizeof(req))
		n += snprintf(req + n, sizeof(req) - (size_t)n,
		              "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		              strlen(data), data);
	else if (n < (int)sizeof(req))
		n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
	if (n >= (int)sizeof(req)) {
		fprintf(stderr, "mmds: request over %zu bytes\n", sizeof(req));
		return 2;
	}
	status = request(req, (size_t)n, &body, &body_len);
	if (status < 0)
		return 2;
	fwrite(body, 1, body_len, stdout);
	fprintf(stderr, "mmds: HTTP %d\n", status);
	return status / 100 == 2 ? 0 : 1;
usage:
	fprintf(stderr, "usage: mmds [-a ADDR] [-p PORT] [-H 'Name: value']... [-d BODY] "
	                "[-t TTL] METHOD PATH\n");
	return 2;
}
