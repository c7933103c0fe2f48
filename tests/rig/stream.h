/*
 * The byte stream both ends of the rig's vsock case agree on (L1's flint/vsock-host.c and
 * L2's l2/vsock.c): one definition, so the two programs cannot drift apart.
 */
#ifndef FLINT_RIG_STREAM_H
#define FLINT_RIG_STREAM_H

#include <stddef.h>
#include <stdint.h>

/* The stream's byte at @off: a hash of the offset, so a lost, repeated or moved chunk shows. */
static inline uint8_t pattern(uint64_t off, uint32_t seed)
{
	uint32_t x = (uint32_t)off * 0x9E3779B1u + seed + (uint32_t)(off >> 32);

	x ^= x >> 15;
	x *= 0x85EBCA6Bu;
	x ^= x >> 13;
	x *= 0xC2B2AE35u;
	x ^= x >> 16;
	return (uint8_t)x;
}

/* FNV-1a over @n more bytes, from @h (2166136261 to start). */
static inline uint32_t fnv1a(uint32_t h, const uint8_t *p, size_t n)
{
	while (n--) {
		h ^= *p++;
		h *= 16777619u;
	}
	return h;
}

#endif
