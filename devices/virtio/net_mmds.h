/*
 * The seam between virtio-net's MMDS stack (the guest's ARP and TCP to the MMDS address,
 * answered inside flint instead of going to the TAP) and what answers the HTTP requests
 * that arrive over it (vmm/mmds.c, or a test's stand-in). The stack knows no JSON and
 * no tokens; the responder knows no frames.
 */
#ifndef FLINT_VIRTIO_NET_MMDS_H
#define FLINT_VIRTIO_NET_MMDS_H

#include <stddef.h>
#include <stdint.h>

struct net_mmds_responder {
	/*
	 * @in: the bytes one guest TCP connection has sent that the responder has not consumed
	 * yet (the stack keeps them, in order, up to its own limit). Returns:
	 *   > 0  that many bytes were one whole request; *@out (malloc'd, the stack sends and
	 *        frees it) is its whole response, *@out_len its length;
	 *   0    the request is not complete yet: call again when more bytes arrive;
	 *   < 0  the bytes are no request the responder will serve; *@out may hold a response
	 *        the stack sends before it closes the connection (FIN); with none (NULL) the
	 *        stack resets the connection (RST).
	 * Runs on the loop thread; never blocks.
	 */
	long (*serve)(void *ctx, const uint8_t *in, size_t len, uint8_t **out, size_t *out_len);
	void *ctx;
};

#endif
