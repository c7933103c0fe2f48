/*
 * curl --unix-socket for the rig (L1 has no curl): one request to flint's API.
 * Usage: apireq SOCKET METHOD PATH [BODY]
 * Prints "<status> <body>" on one line; exits 0 on a 2xx answer, 1 otherwise. The socket is
 * waited for up to 5 s (flint may still be starting).
 */
#include "tests/lib/http_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct http_reply r;
	int fd;

	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: apireq SOCKET METHOD PATH [BODY]\n");
		return 2;
	}
	fd = http_connect(argv[1], 5000);
	if (fd >= 0)
		close(fd);
	http_request(argv[1], argv[2], argv[3], argc == 5 ? argv[4] : NULL, &r);
	printf("%d %s\n", r.status, r.body);
	free(r.body);
	return r.status >= 200 && r.status < 300 ? 0 : 1;
}
