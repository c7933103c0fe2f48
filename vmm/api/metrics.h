/*
 * The API's part of the metrics: PUT /metrics, the FlushMetrics action, flint's
 * GET /flint/iommu, and the requests it serves counted under Firecracker's names
 * (get_api_requests, put_api_requests, patch_api_requests: <name>_count for every request,
 * <name>_fails for those answered 400 or 413) with the jailer's start-up times (api_server), as
 * a source of the VM's metrics lines. Only for the resources flint serves.
 */
#ifndef FLINT_API_METRICS_H
#define FLINT_API_METRICS_H

#include "vmm/api/http.h"

/* Counts from now on, on the metrics of @a->vmm. 0 or -ENOMEM. */
int api_metrics_open(struct api *a, const struct api_params *p);
/* Safe on a half-opened @a. */
void api_metrics_close(struct api *a);
/* Counts @r, answered (or not: then it is not counted). */
void api_count(struct api *a, const struct api_request *r);

/*
 * PUT /metrics, before the start: checked as the config's metrics section, then the path
 * opened at once, once only (Firecracker's rule and messages).
 */
void api_put_metrics(struct api *a, struct api_request *r);
/* InstanceStart: the config was parsed; what PUT /metrics configured is not done again. */
void api_metrics_before_start(struct api *a);
/* FlushMetrics, once the VM runs: 204 when the line went out (or no path is set), else 400. */
void api_flush_metrics(struct api *a, struct api_request *r);
/* GET /flint/iommu, once the VM runs: 200 and the counters, 400 without a fault-mode device. */
void api_get_iommu(struct api *a, struct api_request *r);

#endif
