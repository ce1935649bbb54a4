// Parses and judges `istioctl proxy-status` output, whatever the istioctl version printed.
//
// What istioctl prints (read from istio/istio `istioctl/pkg/writer/pilot/status.go` across versions,
// its `testdata/`, and `pilot/pkg/xds/statusgen.go`; samples in tests/unit/fixtures/istioctl/):
//
// - <= 1.26, default table, one column per xDS type, produced by a tabwriter (padding 5):
//     NAME  CLUSTER  CDS  LDS  EDS  RDS  ECDS  ISTIOD  VERSION
//   Older releases had no CLUSTER/ECDS column, and 1.0/1.1 said `PROXY` and `PILOT` instead of
//   `NAME` and `ISTIOD`. A cell is `SYNCED`, `NOT SENT`, `STALE`, `STALE (Never Acknowledged)`,
//   `ERROR`, `IGNORED` (ConfigStatus UNKNOWN: a type the proxy does not use, e.g. every column of a
//   ztunnel), since ~1.23 with an age suffix (`SYNCED (78s)`), in 1.0/1.1 `SYNCED (100%)` for EDS,
//   and in ~1.19 the raw enum name (`NOT_SENT`, `UNKNOWN`).
// - >= 1.27, default table: `NAME CLUSTER ISTIOD VERSION SUBSCRIBED TYPES`, a cell like
//   `4 (CDS,LDS,EDS,RDS)`. It says which types a proxy subscribed to, NOT whether they are synced.
// - >= 1.27 with `-v 1`: per-type columns again, every known type, sorted by type URL
//   (`NAME CLUSTER CDS ECDS EDS LDS RDS ISTIOD VERSION`), types a proxy lacks printed `IGNORED`.
// - `-o json`: protojson of the xDS `DiscoveryResponse` istiod answered to the syncz debug request:
//   `{versionInfo, resources: [{"@type": ...ClientConfig, node: {id, metadata: {CLUSTER_ID,
//   ISTIO_VERSION, NAMESPACE}}, genericXdsConfigs: [{typeUrl, configStatus, lastUpdated?}]}],
//   typeUrl, controlPlane: {identifier: "<JSON with ID = istiod pod>"}}`, one document per istiod.
//   protojson omits zero values, so `configStatus` is absent when it is UNKNOWN (= IGNORED).
//   This parser accepts one document, several concatenated, a JSON array of them, or an object
//   keyed by istiod name.
//
// Both table kinds are split on the header's column offsets (tabwriter aligns every row on them),
// falling back to "two or more blanks" separators for hand-edited samples whose header is not
// aligned. Cells contain single spaces only (`NOT SENT`, `SYNCED (78s)`, `SUBSCRIBED TYPES`).

import { ProxyStatusReport } from "./proxyStatusModel";
import { parseJson } from "./proxyStatusJson";
import { parseTable } from "./proxyStatusTable";

export * from "./proxyStatusModel";
export * from "./proxyStatusEvaluation";

/** Parses `istioctl proxy-status` output of any supported shape; throws a descriptive Error otherwise. */
export function parseProxyStatus(output: string): ProxyStatusReport {
    if (typeof output !== "string" || output.trim() === "") {
        throw new Error(
            "empty istioctl proxy-status output: expected at least a table header (NAME ... ISTIOD VERSION) or JSON",
        );
    }
    const start = output.trimStart()[0];
    if (start === "{" || start === "[") {
        return parseJson(output);
    }
    return parseTable(output);
}
