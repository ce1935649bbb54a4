// What `istioctl proxy-status` says about each proxy, whatever the output format (steps/verify/proxyStatus.ts
// describes the formats), and the pieces both parsers share.


/** Statuses istioctl prints, normalised: `NOT_SENT` -> `NOT SENT`, `UNKNOWN`/empty -> `IGNORED`. */
export type XdsSyncStatus = "SYNCED" | "NOT SENT" | "STALE" | "ERROR" | "IGNORED";

export interface XdsTypeStatus {
    /** Normalised status word; an unrecognised one is kept verbatim (and judged a problem). */
    status: XdsSyncStatus | string;
    /** Parenthesised suffix, e.g. `78s`, `Never Acknowledged`, `100%`, or JSON `lastUpdated`. */
    detail?: string;
    /** The cell (or JSON value) exactly as printed. */
    raw: string;
}

export interface ProxyStatusEntry {
    /** `pod.namespace` as istioctl prints it. */
    name: string;
    /** Cluster ID (`Kubernetes` by default); undefined when the output has no CLUSTER column. */
    cluster?: string;
    /** The istiod instance the proxy is connected to. */
    istiod: string;
    /** The VERSION column: the proxy's Istio version (1.20+) or istiod's (older). */
    version: string;
    /** Per xDS type, by short name (`CDS`, `LDS`, `EDS`, `RDS`, `ECDS`, `WDS`, ...). Empty for `subscribed-table`. */
    xds: Record<string, XdsTypeStatus>;
    /** Only in the 1.27+ default table: the subscribed types, e.g. `["CDS","LDS","EDS","RDS"]`. */
    subscribedTypes?: string[];
}

export type ProxyStatusFormat =
    /** A table with one column per xDS type: <=1.26 default, 1.27+ `-v 1`, and the 1.0/1.1 PROXY/PILOT tables. */
    | "xds-table"
    /** The 1.27+ default table: `SUBSCRIBED TYPES`, no per-type sync status. */
    | "subscribed-table"
    /** `-o json`: DiscoveryResponse document(s). */
    | "json";

export interface ProxyStatusReport {
    format: ProxyStatusFormat;
    /** False for `subscribed-table`: the output says which proxies are connected, not whether they are synced. */
    syncReported: boolean;
    /** Type columns in header order (tables), or every type seen (json). */
    types: string[];
    proxies: ProxyStatusEntry[];
}

export const KNOWN_STATUSES: ReadonlySet<string> = new Set(["SYNCED", "NOT SENT", "STALE", "ERROR", "IGNORED"]);

/** Short names, as istio/istio `pilot/pkg/xds/v3` `GetShortType` prints them. */
export const SHORT_TYPES: Record<string, string> = {
    "type.googleapis.com/envoy.config.cluster.v3.Cluster": "CDS",
    "type.googleapis.com/envoy.config.listener.v3.Listener": "LDS",
    "type.googleapis.com/envoy.config.route.v3.RouteConfiguration": "RDS",
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment": "EDS",
    "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig": "ECDS",
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret": "SDS",
    "type.googleapis.com/istio.networking.nds.v1.NameTable": "NDS",
    "type.googleapis.com/istio.mesh.v1alpha1.ProxyConfig": "PCDS",
    "type.googleapis.com/istio.workload.Address": "WDS",
    "type.googleapis.com/istio.workload.Workload": "WDS",
    "type.googleapis.com/istio.security.Authorization": "WADS",
};

export const CLIENT_CONFIG_TYPE = "type.googleapis.com/envoy.service.status.v3.ClientConfig";

/** Short xDS type name for a type URL (`CDS` for `...cluster.v3.Cluster`); unknown URLs keep their last segment. */
export function shortXdsType(typeUrl: string): string {
    return SHORT_TYPES[typeUrl] ?? typeUrl.slice(typeUrl.lastIndexOf("/") + 1);
}

/** Normalises one status cell: `SYNCED (78s)` -> {SYNCED, 78s}; `NOT_SENT` -> NOT SENT; `UNKNOWN`/`` -> IGNORED. */
export function parseStatusCell(cell: string): XdsTypeStatus {
    const raw = cell;
    const trimmed = cell.trim();
    const m = /^([^()]*?)\s*(?:\((.*)\))?$/.exec(trimmed);
    let word = (m?.[1] ?? trimmed).trim().toUpperCase().replace(/_/g, " ");
    const detail = m?.[2]?.trim();
    if (word === "" || word === "UNKNOWN") {
        word = "IGNORED";
    }
    return detail ? { status: word, detail, raw } : { status: word, raw };
}

export function firstLine(output: string): string {
    const line = output.split(/\r?\n/).find((l) => l.trim() !== "") ?? "";
    return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

export function formatError(output: string, why: string): Error {
    return new Error(
        `unrecognised istioctl proxy-status output (${why}); expected a table whose header starts with ` +
            `NAME (or PROXY) and has ISTIOD (or PILOT) and VERSION columns, or the JSON of ` +
            `\`istioctl proxy-status -o json\`; first line was: ${JSON.stringify(firstLine(output))}`,
    );
}
