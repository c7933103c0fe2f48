/* network-interfaces (PUT /network-interfaces/{id}): TAP devices with optional MACs. */
#include "vmm/config/config.h"
#include "vmm/config/sections.h"
#include "vmm/base/log.h"

#include <errno.h>
#include <net/if.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "06:00:ac:10:00:02": six two-digit hex bytes, colon-separated, nothing else. */
static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned b[6];
	char tail;

	if (strlen(s) != 17 || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3],
	                              &b[4], &b[5], &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		if (s[i * 3 + 2] != ':' && i < 5)
			return -EINVAL;
		mac[i] = (uint8_t)b[i];
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

static int net_one(struct cfg_ctx *c, json_t *v, const char *p, void *out)
{
	struct net_config *n = out;
	char sub[CFG_PATH_MAX];
	int r;

	r = cfg_object(c, v, p,
	               CFG_KEYS("iface_id", "host_dev_name", "guest_mac", "rx_rate_limiter",
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
	return r;
}

/* Two interfaces with one MAC would confuse the guest's network, not flint. */
static int unique_macs(struct cfg_ctx *c, const char *path, const struct vm_config *cfg)
{
	char sub[CFG_PATH_MAX], idx[CFG_PATH_MAX];
	const struct net_config *a, *b;

	for (size_t i = 1; i < cfg->nnets; i++)
		for (size_t j = 0; j < i; j++) {
			a = &cfg->nets[i];
			b = &cfg->nets[j];
			if (a->has_mac && b->has_mac && memcmp(a->mac, b->mac, 6) == 0)
				return cfg_fail(c,
				                cfg_join(sub, cfg_index(idx, path, i), "guest_mac"),
				                "same MAC as %s[%zu]", path, j);
		}
	return 0;
}

int cfg_net(struct cfg_ctx *c, json_t *v, const char *path, struct vm_config *cfg)
{
	const size_t size = sizeof(*cfg->nets);
	int r = cfg_list(c, v, path, CONFIG_MAX_DEVICES, size, (void **)&cfg->nets, &cfg->nnets,
	                 net_one);

	if (!r)
		r = cfg_unique(c, path, cfg->nets, cfg->nnets, size,
		               offsetof(struct net_config, id), "iface_id", "id");
	if (!r)
		r = cfg_unique(c, path, cfg->nets, cfg->nnets, size,
		               offsetof(struct net_config, host_dev), "host_dev_name",
		               "TAP device");
	if (!r)
		r = unique_macs(c, path, cfg);
	return r;
}
