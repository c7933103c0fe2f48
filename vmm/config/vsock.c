/* vsock (PUT /vsock): the guest's CID and the host's Unix socket. */
#include "vmm/config/sections.h"

#include <stdint.h>
#include <stdlib.h>

int cfg_vsock(struct cfg_ctx *c, json_t *v, const char *path, struct vm_config *cfg)
{
	char *vsock_id = NULL;
	uint64_t cid = 0;
	int r;

	if (!v)
		return 0;
	r = cfg_object(c, v, path, CFG_KEYS("vsock_id", "guest_cid", "uds_path"));
	/* Checked, then dropped: Firecracker deprecated vsock_id and names nothing by it. */
	if (!r)
		r = cfg_string(c, v, path, "vsock_id", false, &vsock_id);
	free(vsock_id);
	/* CIDs 0-2 are reserved (hypervisor, local, host); -1U is VMADDR_CID_ANY. */
	if (!r)
		r = cfg_uint(c, v, path, "guest_cid", true, 3, UINT32_MAX - 1, &cid);
	if (!r)
		r = cfg_string(c, v, path, "uds_path", true, &cfg->vsock.uds_path);
	cfg->vsock.guest_cid = (uint32_t)cid;
	cfg->vsock.present = r == 0;
	return r;
}
