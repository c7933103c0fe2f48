/* network-interfaces (PUT /network-interfaces/{id}): TAP devices with optional MACs. */
#include "vmm/config/config.h"
#include "vmm/config/sections.h"
#include "vmm/base/log.h"

#include <errno.h>
#include <net/if.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * "06:00:ac:10:00:02": six colon-separated bytes of two characters each, as Firecracker
 * reads them (u8::from_str_radix on each: two hex digits, or '+' and one). By hand: sscanf's
 * %2x also took "-2" (as 0xfe... cut to a byte), " 2" and "0x".
 */
static int parse_mac(const char *s, uint8_t mac[6])
{
	if (strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		const char *b = s + i * 3;
		int hi = b[0] == '+' ? 0 : hex_digit(b[0]), lo = hex_digit(b[1]);

		if (hi < 0 || lo < 0 || (i < 5 && b[2] != ':'))
			return -EINVAL;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static int guest_mac(struct cfg_ctx *c, json_t *v, const char *p, struct net_config *n)
{
	char sub[CFG_PATH_MAX];
	char *mac = NULL;
	int r = cfg_string(c, v, p, "guest_mac", false, &mac);

	if (r || !mac)
		return r;
	n->has_mac = true;
	cfg_join(sub, p, "guest_mac");
	if (parse_mac(mac, n->mac))
		r = cfg_fail(c, sub, "\"%s\" is not a MAC address like 06:00:ac:10:00:02",
		             MSG_ESC(mac));
	else if (n->mac[0] & 1)
		r = cfg_fail(c, sub, "\"%s\" is a multicast address", MSG_ESC(mac));
	free(mac);
	return r;
}

/*
 * mtu: Firecracker's u16, at least 68 (its Net::new), which it offers the guest with
 * VIRTIO_NET_F_MTU. Checked, then refused: flint's virtio-net does not offer that yet.
 */
static int mtu(struct cfg_ctx *c, json_t *v, const char *p)
{
	char sub[CFG_PATH_MAX];
	uint64_t m = 0;
	int r = cfg_uint(c, v, p, "mtu", false, 0, UINT16_MAX, &m);

	if (r || !cfg_member(v, "mtu"))
		return r;
	cfg_join(sub, p, "mtu");
	if (m < 68)
		return cfg_fail(c, sub, "%llu is less than 68, the least an IPv4 link takes",
		                (unsigned long long)m);
	return cfg_fail(c, sub,
	                "not supported yet (flint's virtio-net does not offer "
	                "VIRTIO_NET_F_MTU)");
}

static int net_one(struct cfg_ctx *c, json_t *v, const char *p, void *out)
{
	struct net_config *n = out;
	char sub[CFG_PATH_MAX];
	int r;

	r = cfg_object(c, v, p,
	               CFG_KEYS("iface_id", "host_dev_name", "guest_mac", "mtu", "rx_rate_limiter",
	                        "tx_rate_limiter"));
	if (!r)
		r = cfg_string(c, v, p, "iface_id", true, &n->id);
	if (!r)
		r = cfg_string(c, v, p, "host_dev_name", true, &n->host_dev);
	if (!r && strlen(n->host_dev) >= IFNAMSIZ)
		r = cfg_fail(c, cfg_join(sub, p, "host_dev_name"), "\"%s\" is longer than %d bytes",
		             MSG_ESC(n->host_dev), IFNAMSIZ - 1);
	if (!r)
		r = guest_mac(c, v, p, n);
	if (!r)
		r = cfg_rate_limiter(c, v, p, "rx_rate_limiter", &n->rx);
	if (!r)
		r = cfg_rate_limiter(c, v, p, "tx_rate_limiter", &n->tx);
	if (!r)
		r = mtu(c, v, p);
	return r;
}

void cfg_net_release(struct net_config *n)
{
	free(n->id);
	free(n->host_dev);
	memset(n, 0, sizeof(*n));
}

/* Another interface (not one @n replaces) with @n's MAC; -1 when none. */
static ssize_t mac_user(const struct net_config *list, size_t count, const struct net_config *n)
{
	for (size_t i = 0; n->has_mac && i < count; i++)
		if (list[i].has_mac && !memcmp(list[i].mac, n->mac, 6) && strcmp(list[i].id, n->id))
			return (ssize_t)i;
	return -1;
}

/*
 * One entry into @out as Firecracker's NetBuilder::build() takes it: a MAC another
 * interface has is an error; an iface_id seen before replaces that interface (Rust's
 * swap_remove: the last one takes its place) and the new one goes last. @src[i] is the
 * config index of @out[i], for messages. Moves @n into @out.
 */
static int insert_net(struct cfg_ctx *c, const char *path, size_t idx, struct net_config *out,
                      size_t *src, size_t *count, struct net_config *n)
{
	char sub[CFG_PATH_MAX], at[CFG_PATH_MAX];
	ssize_t other = mac_user(out, *count, n);

	if (other >= 0)
		return cfg_fail(c, cfg_join(sub, cfg_index(at, path, idx), "guest_mac"),
		                "the MAC address is already in use by \"%s\" (%s[%zu])",
		                MSG_ESC(out[other].id), path, src[other]);
	for (size_t i = 0; i < *count; i++) {
		if (strcmp(out[i].id, n->id))
			continue;
		cfg_net_release(&out[i]);
		out[i] = out[*count - 1];
		src[i] = src[*count - 1];
		(*count)--;
		break;
	}
	src[*count] = idx;
	out[(*count)++] = *n;
	memset(n, 0, sizeof(*n));
	return 0;
}

/* The later (in the config) of two interfaces on one TAP, named by config index. */
static int tap_clash(struct cfg_ctx *c, const char *path, const char *tap, size_t a, size_t b)
{
	char sub[CFG_PATH_MAX], at[CFG_PATH_MAX];

	return cfg_fail(c, cfg_join(sub, cfg_index(at, path, a > b ? a : b), "host_dev_name"),
	                "duplicate TAP device \"%s\" (also %s[%zu])", MSG_ESC(tap), path,
	                a > b ? b : a);
}

/* Two interfaces on one TAP: Firecracker's second TUNSETIFF would fail, flint says so now. */
static int unique_taps(struct cfg_ctx *c, const char *path, const struct net_config *list,
                       const size_t *src, size_t count)
{
	for (size_t i = 0; i < count; i++)
		for (size_t j = 0; j < i; j++)
			if (!strcmp(list[i].host_dev, list[j].host_dev))
				return tap_clash(c, path, list[i].host_dev, src[i], src[j]);
	return 0;
}

/* The list in Firecracker's order; on failure what was not moved stays, to be freed. */
static int insert_nets(struct cfg_ctx *c, const char *path, struct vm_config *cfg)
{
	struct net_config *out = calloc(cfg->nnets + 1, sizeof(*out));
	size_t *src = calloc(cfg->nnets + 1, sizeof(*src));
	size_t n = 0, i;
	int r = out && src ? 0 : -ENOMEM;

	for (i = 0; i < cfg->nnets && !r; i++)
		r = insert_net(c, path, i, out, src, &n, &cfg->nets[i]);
	if (!r)
		r = unique_taps(c, path, out, src, n);
	for (i = 0; out && i < cfg->nnets; i++)
		if (cfg->nets[i].id)
			out[n++] = cfg->nets[i];
	free(src);
	if (!out)
		return r;
	free(cfg->nets);
	cfg->nets = out;
	cfg->nnets = n;
	return r;
}

int cfg_net(struct cfg_ctx *c, json_t *v, const char *path, struct vm_config *cfg)
{
	int r = cfg_list(c, v, path, CONFIG_MAX_DEVICES, sizeof(*cfg->nets), (void **)&cfg->nets,
	                 &cfg->nnets, net_one);

	return r ? r : insert_nets(c, path, cfg);
}
