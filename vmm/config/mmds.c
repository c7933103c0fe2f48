/*
 * mmds-config (PUT /mmds/config): which interfaces the guest reaches the MMDS on, at which
 * address, V1 or V2, and imds_compat; checked as Firecracker's MmdsConfig (serde) and then
 * as its VmResources::set_mmds_config() (the address, then the list, then the ids), with
 * its messages. network-interfaces is read before this section, so the ids are checked
 * against the interfaces the config (or the API, so far) has.
 */
#include "vmm/config/config.h"
#include "vmm/config/sections.h"
#include "vmm/base/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *const config_mmds_version_names[] = { "V1", "V2", NULL };

/*
 * Firecracker's is_link_local_valid(): 169.254.0.0/16 without its first and last /24,
 * which RFC 3927 reserves.
 */
static bool link_local_valid(const uint8_t a[4])
{
	return a[0] == 169 && a[1] == 254 && a[2] != 0 && a[2] != 255;
}

static int address(struct cfg_ctx *c, json_t *v, const char *path, struct mmds_config *m)
{
	const uint8_t def[4] = MMDS_DEFAULT_IPV4;
	char sub[CFG_PATH_MAX], *ip = NULL;
	int r = cfg_string(c, v, path, "ipv4_address", false, &ip);

	memcpy(m->ipv4, def, sizeof(def));
	if (r || !ip)
		return r;
	cfg_join(sub, path, "ipv4_address");
	if (inet_pton(AF_INET, ip, m->ipv4) != 1)
		r = cfg_fail(c, sub, "\"%s\" is not an IPv4 address", MSG_ESC(ip));
	else if (!link_local_valid(m->ipv4))
		r = cfg_fail(c, sub, "\"%s\": The MMDS IPv4 address is not link local.",
		             MSG_ESC(ip));
	free(ip);
	return r;
}

static bool has_net(const struct vm_config *cfg, const char *id)
{
	for (size_t i = 0; i < cfg->nnets; i++)
		if (!strcmp(cfg->nets[i].id, id))
			return true;
	return false;
}

/* network_interfaces: strings (serde's Vec<String>), at most one per possible interface. */
static int ifaces(struct cfg_ctx *c, json_t *v, const char *path, struct mmds_config *m)
{
	char p[CFG_PATH_MAX], sub[CFG_PATH_MAX];
	json_t *list = cfg_member(v, "network_interfaces"), *s;
	size_t i;

	cfg_join(p, path, "network_interfaces");
	if (!list)
		return cfg_fail(c, p, "required key is missing");
	if (!json_is_array(list))
		return cfg_fail(c, p, "must be an array of strings");
	if (json_array_size(list) > CONFIG_MAX_DEVICES)
		return cfg_fail(c, p, "%zu entries, more than the limit of %d",
		                json_array_size(list), CONFIG_MAX_DEVICES);
	json_array_foreach(list, i, s)
	{
		if (!json_is_string(s))
			return cfg_fail(c, cfg_index(sub, p, i), "must be a string");
	}
	m->ifaces = calloc(json_array_size(list) + 1, sizeof(*m->ifaces));
	if (!m->ifaces)
		return -ENOMEM;
	json_array_foreach(list, i, s)
	{
		m->ifaces[i] = strdup(json_string_value(s));
		if (!m->ifaces[i])
			return -ENOMEM;
		m->nifaces++;
	}
	return 0;
}

/* set_mmds_config()'s checks, in its order, after the address's. */
static int check_ifaces(struct cfg_ctx *c, const char *path, const struct vm_config *cfg,
                        const struct mmds_config *m)
{
	char p[CFG_PATH_MAX], sub[CFG_PATH_MAX];

	cfg_join(p, path, "network_interfaces");
	if (!m->nifaces)
		return cfg_fail(c, p,
		                "The list of network interface IDs that allow forwarding MMDS "
		                "requests is empty.");
	for (size_t i = 0; i < m->nifaces; i++)
		if (!has_net(cfg, m->ifaces[i]))
			return cfg_fail(
			        c, cfg_index(sub, p, i),
			        "\"%s\": The list of network interface IDs provided contains "
			        "at least one ID that does not correspond to any existing "
			        "network interface.",
			        MSG_ESC(m->ifaces[i]));
	return 0;
}

void cfg_mmds_release(struct mmds_config *m)
{
	for (size_t i = 0; i < m->nifaces; i++)
		free(m->ifaces[i]);
	free(m->ifaces);
	memset(m, 0, sizeof(*m));
}

int cfg_mmds(struct cfg_ctx *c, json_t *v, const char *path, struct vm_config *cfg)
{
	struct mmds_config *m = &cfg->mmds;
	int version = MMDS_V1, r;

	cfg_mmds_release(m);
	if (!v)
		return 0;
	r = cfg_object(c, v, path,
	               CFG_KEYS("version", "network_interfaces", "ipv4_address", "imds_compat"));
	if (!r)
		r = cfg_enum(c, v, path, "version", config_mmds_version_names, &version);
	if (!r)
		r = ifaces(c, v, path, m);
	if (!r)
		r = address(c, v, path, m);
	if (!r)
		r = cfg_bool(c, v, path, "imds_compat", false, &m->imds_compat);
	if (!r)
		r = check_ifaces(c, path, cfg, m);
	m->version = (enum mmds_version)version;
	m->present = r == 0;
	return r;
}

json_t *config_mmds_json(const struct mmds_config *m)
{
	char ip[INET_ADDRSTRLEN];
	json_t *list;

	if (!m->present)
		return json_null();
	list = json_array();
	for (size_t i = 0; list && i < m->nifaces; i++)
		if (json_array_append_new(list, json_string(m->ifaces[i]))) {
			json_decref(list);
			return NULL;
		}
	inet_ntop(AF_INET, m->ipv4, ip, sizeof(ip));
	return json_pack("{s:s,s:o,s:s,s:b}", "version", config_mmds_version_names[m->version],
	                 "network_interfaces", list, "ipv4_address", ip, "imds_compat",
	                 m->imds_compat);
}
