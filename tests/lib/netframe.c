/* Network frames for the MMDS stack's tests: see netframe.h. */
#include "tests/lib/netframe.h"

#include <string.h>

void nf_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

void nf_put32(uint8_t *p, uint32_t v)
{
	nf_put16(p, (uint16_t)(v >> 16));
	nf_put16(p + 2, (uint16_t)v);
}

uint16_t nf_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

uint32_t nf_get32(const uint8_t *p)
{
	return (uint32_t)nf_get16(p) << 16 | nf_get16(p + 2);
}

uint32_t nf_sum16(uint32_t s, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		s += nf_get16(p + i);
	if (len & 1)
		s += (uint32_t)p[len - 1] << 8;
	return s;
}

uint16_t nf_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

uint32_t nf_pseudo(uint32_t src, uint32_t dst, size_t len)
{
	return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + 6 + (uint32_t)len;
}

size_t nf_arp_frame(uint8_t *f, const uint8_t smac[6], uint16_t op, uint32_t spa, uint32_t tpa)
{
	memset(f, 0xff, 6);
	memcpy(f + 6, smac, 6);
	nf_put16(f + 12, 0x0806);
	nf_put16(f + 14, 1);
	nf_put16(f + 16, 0x0800);
	f[18] = 6;
	f[19] = 4;
	nf_put16(f + 20, op);
	memcpy(f + 22, smac, 6);
	nf_put32(f + 28, spa);
	memset(f + 32, 0, 6);
	nf_put32(f + 38, tpa);
	return 42;
}

size_t nf_tcp_frame(uint8_t *f, const struct nf_tcp *t)
{
	uint8_t *ip = f + 14, *th;
	size_t ihl = 20 + t->ipopts, tl = 20 + t->optlen + t->len;

	memcpy(f, t->dmac, 6);
	memcpy(f + 6, t->smac, 6);
	nf_put16(f + 12, 0x0800);
	memset(ip, 0, ihl);
	ip[0] = (uint8_t)(0x40 | ihl / 4);
	nf_put16(ip + 2, (uint16_t)(ihl + tl));
	nf_put16(ip + 6, 0x4000);
	ip[8] = 64;
	ip[9] = 6;
	nf_put32(ip + 12, t->src);
	nf_put32(ip + 16, t->dst);
	memset(ip + 20, 1, t->ipopts);
	nf_put16(ip + 10, (uint16_t)~nf_fold(nf_sum16(0, ip, ihl)));
	th = ip + ihl;
	nf_put16(th, t->sport);
	nf_put16(th + 2, t->dport);
	nf_put32(th + 4, t->seq);
	nf_put32(th + 8, t->ack);
	th[12] = (uint8_t)((20 + t->optlen) / 4 << 4);
	th[13] = t->flags;
	nf_put16(th + 14, t->win);
	nf_put16(th + 16, 0);
	nf_put16(th + 18, 0);
	if (t->optlen)
		memcpy(th + 20, t->opts, t->optlen);
	if (t->len)
		memcpy(th + 20 + t->optlen, t->data, t->len);
	if (t->partial)
		nf_put16(th + 16, nf_fold(nf_pseudo(t->src, t->dst, tl)));
	else
		nf_put16(th + 16,
		         (uint16_t)~nf_fold(nf_sum16(nf_pseudo(t->src, t->dst, tl), th, tl)));
	return 14 + ihl + tl;
}
