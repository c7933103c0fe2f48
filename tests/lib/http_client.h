/*
 * A blocking HTTP/1.1 client over a Unix socket, for tests that drive flint's API (unit
 * tests, KVM tests, the rig's apireq tool). One request per connection.
 */
#ifndef FLINT_TEST_HTTP_CLIENT_H
#define FLINT_TEST_HTTP_CLIENT_H

#include <stddef.h>

struct http_reply {
	int status;  /* 0: no answer (connection refused, closed, timed out) */
	char *body;  /* NUL-terminated, "" when none; free() it */
};

/* Connects to @sock, retrying for up to @wait_ms while it does not exist yet. fd or -1. */
int http_connect(const char *sock, int wait_ms);
/* @method @path with @body (NULL: none) on a new connection; the answer in @out. 0 or -1. */
int http_request(const char *sock, const char *method, const char *path, const char *body,
                 struct http_reply *out);

#endif
