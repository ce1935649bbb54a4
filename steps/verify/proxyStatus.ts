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

import { field, isObject, Json, JsonObject, str } from "./protoJson";

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

const KNOWN_STATUSES: ReadonlySet<string> = new Set(["SYNCED", "NOT SENT", "STALE", "ERROR", "IGNORED"]);

/** Short names, as istio/istio `pilot/pkg/xds/v3` `GetShortType` prints them. */
const SHORT_TYPES: Record<string, string> = {
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

const CLIENT_CONFIG_TYPE = "type.googleapis.com/envoy.service.status.v3.ClientConfig";

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

function firstLine(output: string): string {
    const line = output.split(/\r?\n/).find((l) => l.trim() !== "") ?? "";
    return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

function formatError(output: string, why: string): Error {
    return new Error(
        `unrecognised istioctl proxy-status output (${why}); expected a table whose header starts with ` +
            `NAME (or PROXY) and has ISTIOD (or PILOT) and VERSION columns, or the JSON of ` +
            `\`istioctl proxy-status -o json\`; first line was: ${JSON.stringify(firstLine(output))}`,
    );
}

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

// ---------------------------------------------------------------------------------------------
// Tables

interface Column {
    title: string;
    start: number;
}

function headerColumns(header: string): Column[] {
    const cols: Column[] = [];
    // A column title is words joined by single spaces ("SUBSCRIBED TYPES"); columns are separated
    // by two or more blanks or a tab.
    const re = /\S+(?: \S+)*/g;
    let m: RegExpExecArray | null;
    while ((m = re.exec(header)) !== null) {
        cols.push({ title: m[0], start: m.index });
    }
    return cols;
}

function splitByOffsets(line: string, cols: Column[]): string[] | undefined {
    const cells: string[] = [];
    for (let i = 0; i < cols.length; i++) {
        const from = cols[i].start;
        const to = i + 1 < cols.length ? cols[i + 1].start : line.length;
        if (i > 0 && from < line.length && from > 0 && !/\s/.test(line[from - 1])) {
            return undefined; // a column boundary falls inside a word: not aligned
        }
        const cell = line.slice(from, Math.max(from, to)).trim();
        if (/\s{2,}|\t/.test(cell)) {
            return undefined; // two cells in one slot: not aligned
        }
        cells.push(cell);
    }
    if (line.slice(0, cols[0].start).trim() !== "") {
        return undefined;
    }
    return cells;
}

/** Splits a row; `required` are the columns that are never empty (NAME, ISTIOD), which catches truncated rows. */
function splitRow(line: string, cols: Column[], required: number[], lineNo: number): string[] {
    const aligned = splitByOffsets(line, cols);
    if (aligned && required.every((i) => aligned[i] !== "")) {
        return aligned;
    }
    const loose = line.trim().split(/\t+|\s{2,}/);
    if (loose.length === cols.length) {
        return loose;
    }
    throw new Error(
        `istioctl proxy-status table, line ${lineNo}: ${loose.length} cells but the header has ` +
            `${cols.length} columns (${cols.map((c) => c.title).join(", ")}): ${JSON.stringify(line)}`,
    );
}

function parseTable(output: string): ProxyStatusReport {
    const lines = output.split(/\r?\n/);
    const headerIdx = lines.findIndex((l) => l.trim() !== "");
    const header = lines[headerIdx];
    const cols = headerColumns(header);
    const titles = cols.map((c) => c.title.toUpperCase());
    if (titles[0] !== "NAME" && titles[0] !== "PROXY") {
        throw formatError(output, "no NAME/PROXY header");
    }
    const istiodCol = titles.findIndex((t) => t === "ISTIOD" || t === "PILOT");
    const versionCol = titles.indexOf("VERSION");
    const clusterCol = titles.indexOf("CLUSTER");
    const subscribedCol = titles.indexOf("SUBSCRIBED TYPES");
    if (istiodCol < 0) {
        throw formatError(output, "no ISTIOD/PILOT column in the header");
    }
    const typeCols: number[] = [];
    titles.forEach((t, i) => {
        if (i === 0 || i === istiodCol || i === versionCol || i === clusterCol || i === subscribedCol) {
            return;
        }
        if (!/^[A-Z][A-Z0-9]*$/.test(t)) {
            throw formatError(output, `unexpected column ${JSON.stringify(cols[i].title)}`);
        }
        typeCols.push(i);
    });
    const format: ProxyStatusFormat = subscribedCol >= 0 ? "subscribed-table" : "xds-table";
    if (format === "xds-table" && typeCols.length === 0) {
        throw formatError(output, "neither xDS type columns (CDS, LDS, ...) nor SUBSCRIBED TYPES");
    }
    if (format === "subscribed-table" && typeCols.length > 0) {
        throw formatError(output, "both SUBSCRIBED TYPES and per-type columns");
    }

    const proxies: ProxyStatusEntry[] = [];
    for (let i = headerIdx + 1; i < lines.length; i++) {
        const line = lines[i];
        if (line.trim() === "") {
            continue;
        }
        const cells = splitRow(line, cols, [0, istiodCol], i + 1);
        const entry: ProxyStatusEntry = {
            name: cells[0],
            istiod: cells[istiodCol],
            version: versionCol >= 0 ? cells[versionCol] : "",
            xds: {},
        };
        if (clusterCol >= 0) {
            entry.cluster = cells[clusterCol];
        }
        for (const c of typeCols) {
            entry.xds[titles[c]] = parseStatusCell(cells[c]);
        }
        if (subscribedCol >= 0) {
            entry.subscribedTypes = parseSubscribed(cells[subscribedCol], i + 1);
        }
        proxies.push(entry);
    }
    return { format, syncReported: format === "xds-table", types: typeCols.map((c) => titles[c]), proxies };
}

function parseSubscribed(cell: string, lineNo: number): string[] {
    // `4 (CDS,LDS,EDS,RDS)`; `0` (or `0 ()`) when nothing is subscribed.
    const m = /^(\d+)\s*(?:\(([^)]*)\))?$/.exec(cell.trim());
    if (!m) {
        throw new Error(
            `istioctl proxy-status table, line ${lineNo}: SUBSCRIBED TYPES cell ${JSON.stringify(cell)} ` +
                `is not of the form "N (T1,T2,...)"`,
        );
    }
    const types = (m[2] ?? "").split(",").map((t) => t.trim()).filter((t) => t !== "");
    if (types.length !== Number(m[1])) {
        throw new Error(
            `istioctl proxy-status table, line ${lineNo}: SUBSCRIBED TYPES ${JSON.stringify(cell)} ` +
                `announces ${m[1]} types but lists ${types.length}`,
        );
    }
    return types;
}

// ---------------------------------------------------------------------------------------------
// JSON

/** Splits concatenated top-level JSON values (`{..}{..}` or `{..}\n{..}`) and parses each. */
function parseJsonStream(text: string): Json[] {
    const values: Json[] = [];
    let depth = 0;
    let inString = false;
    let escaped = false;
    let begin = -1;
    for (let i = 0; i < text.length; i++) {
        const ch = text[i];
        if (inString) {
            if (escaped) {
                escaped = false;
            } else if (ch === "\\") {
                escaped = true;
            } else if (ch === '"') {
                inString = false;
            }
            continue;
        }
        if (ch === '"') {
            inString = true;
        } else if (ch === "{" || ch === "[") {
            if (depth === 0) {
                begin = i;
            }
            depth++;
        } else if (ch === "}" || ch === "]") {
            depth--;
            if (depth < 0) {
                throw new Error(`unbalanced ${ch} at offset ${i}`);
            }
            if (depth === 0) {
                values.push(JSON.parse(text.slice(begin, i + 1)) as Json);
                begin = -1;
            }
        } else if (depth === 0 && !/\s/.test(ch)) {
            throw new Error(`unexpected ${JSON.stringify(ch)} between JSON documents at offset ${i}`);
        }
    }
    if (depth !== 0 || inString) {
        throw new Error("truncated JSON (unbalanced brackets)");
    }
    return values;
}

function looksLikeDiscoveryResponse(o: JsonObject): boolean {
    return "resources" in o || "controlPlane" in o || "control_plane" in o || str(field(o, "typeUrl")) === CLIENT_CONFIG_TYPE;
}

function istiodFromControlPlane(dr: JsonObject): string | undefined {
    const cp = field(dr, "controlPlane");
    if (!isObject(cp)) {
        return undefined;
    }
    const identifier = str(cp.identifier);
    if (!identifier) {
        return undefined;
    }
    try {
        const parsed = JSON.parse(identifier) as Json;
        if (isObject(parsed) && typeof parsed.ID === "string") {
            return parsed.ID;
        }
    } catch {
        // identifier is not JSON: use it as is
    }
    return identifier;
}

const LEGACY_PER_XDS_KEYS: Record<string, string> = {
    listenerConfig: "LDS",
    clusterConfig: "CDS",
    routeConfig: "RDS",
    endpointConfig: "EDS",
};

function clientConfigEntry(cc: JsonObject, istiod: string, where: string): ProxyStatusEntry {
    const type = str(cc["@type"]);
    if (type !== undefined && type !== CLIENT_CONFIG_TYPE) {
        throw new Error(`${where}: resource of type ${type}, expected ${CLIENT_CONFIG_TYPE}`);
    }
    const node = field(cc, "node");
    const id = isObject(node) ? str(node.id) : undefined;
    if (!id) {
        throw new Error(`${where}: ClientConfig without node.id`);
    }
    const meta = isObject(node) && isObject(node.metadata) ? node.metadata : {};
    const entry: ProxyStatusEntry = { name: id, istiod, version: str(meta.ISTIO_VERSION) ?? "", xds: {} };
    if (str(meta.CLUSTER_ID) !== undefined) {
        entry.cluster = str(meta.CLUSTER_ID);
    }
    const generic = field(cc, "genericXdsConfigs");
    if (Array.isArray(generic)) {
        for (const g of generic) {
            if (!isObject(g)) {
                continue;
            }
            const url = str(field(g, "typeUrl")) ?? "";
            // protojson leaves out zero enum values: no configStatus means UNKNOWN, which istioctl prints IGNORED.
            const rawStatus = str(field(g, "configStatus")) ?? "UNKNOWN";
            const st = parseStatusCell(rawStatus);
            const lastUpdated = str(field(g, "lastUpdated"));
            entry.xds[shortXdsType(url)] = lastUpdated ? { ...st, detail: lastUpdated } : st;
        }
    } else {
        // Pre-1.12 istiod: deprecated `xdsConfig` (PerXdsConfig with `status` and a oneof per type).
        const legacy = field(cc, "xdsConfig");
        if (Array.isArray(legacy)) {
            for (const p of legacy) {
                if (!isObject(p)) {
                    continue;
                }
                const key = Object.keys(LEGACY_PER_XDS_KEYS).find((k) => field(p, k) !== undefined);
                if (key) {
                    entry.xds[LEGACY_PER_XDS_KEYS[key]] = parseStatusCell(str(p.status) ?? "UNKNOWN");
                }
            }
        }
    }
    return entry;
}

function parseJson(output: string): ProxyStatusReport {
    let docs: Json[];
    try {
        docs = parseJsonStream(output);
    } catch (err) {
        throw formatError(output, `JSON does not parse: ${(err as Error).message}`);
    }
    // Flatten arrays of documents; unwrap {istiodName: DiscoveryResponse} maps.
    const responses: { dr: JsonObject; key?: string }[] = [];
    const visit = (v: Json, key?: string): void => {
        if (Array.isArray(v)) {
            v.forEach((x) => visit(x));
        } else if (isObject(v) && looksLikeDiscoveryResponse(v)) {
            responses.push({ dr: v, key });
        } else if (isObject(v) && key === undefined && Object.values(v).length > 0 &&
            Object.values(v).every((x) => isObject(x) && looksLikeDiscoveryResponse(x))) {
            Object.entries(v).forEach(([k, x]) => visit(x, k));
        } else {
            throw formatError(output, "JSON is not a DiscoveryResponse (no resources/controlPlane)");
        }
    };
    docs.forEach((d) => visit(d));

    const proxies: ProxyStatusEntry[] = [];
    const types = new Set<string>();
    responses.forEach(({ dr, key }, i) => {
        const istiod = istiodFromControlPlane(dr) ?? key ?? "";
        const resources = field(dr, "resources");
        if (resources !== undefined && !Array.isArray(resources)) {
            throw formatError(output, `document ${i + 1}: resources is not a list`);
        }
        (resources ?? []).forEach((r, j) => {
            if (!isObject(r)) {
                throw formatError(output, `document ${i + 1}, resource ${j + 1} is not an object`);
            }
            const entry = clientConfigEntry(r, istiod, `istioctl proxy-status JSON document ${i + 1}, resource ${j + 1}`);
            Object.keys(entry.xds).forEach((t) => types.add(t));
            proxies.push(entry);
        });
    });
    proxies.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { format: "json", syncReported: true, types: [...types], proxies };
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/**
 * Types on which `NOT SENT` is a problem. Everywhere else `NOT SENT` is accepted, as Istio does:
 * istiod (`pilot/pkg/xds/statusgen.go`, `debugSyncStatus`) reports NOT_SENT when it never sent a
 * nonce for a type, and before ~1.23 also for types the proxy never subscribed to; the Istio docs
 * say "This usually is because Istiod has nothing to send", and real outputs show it for RDS on
 * gateways without HTTP routes and for ECDS without Wasm/extension config. istioctl itself never
 * treats it as an error (status.go only formats it). But every Envoy (sidecar or gateway) is pushed
 * clusters and listeners as soon as it connects, so a connected proxy whose CDS or LDS is NOT SENT
 * has not received its base configuration: that is reported.
 *
 * `IGNORED` is accepted on every type: istioctl prints it for ConfigStatus UNKNOWN, which istiod
 * reports for types a proxy does not use at all (every Envoy type of a ztunnel, unsubscribed types
 * since PR istio/istio#51638), and for types missing from a proxy's row (`-v 1`).
 */
export const NOT_SENT_IS_PROBLEM_FOR: readonly string[] = ["CDS", "LDS"];

export interface ProxyProblem {
    proxy: string;
    detail: string;
}

export interface ProxyStatusEvaluation {
    ok: boolean;
    problems: ProxyProblem[];
    summary: string;
}

export interface EvaluateProxyStatusOptions {
    /** Proxies (`pod.namespace`) that must be present; a missing one is a problem. */
    expectedProxies?: string[];
    /**
     * With the 1.27+ default table (no per-type status), report every proxy as a problem instead of
     * accepting "connected" as enough. Default false: connected is accepted, and the summary says
     * the sync state was not reported.
     */
    requireSyncStatus?: boolean;
}

function describe(type: string, s: XdsTypeStatus): string {
    return s.detail ? `${type} ${s.status} (${s.detail})` : `${type} ${s.status}`;
}

/** Judges a parsed report: every proxy synced on every type it has, every expected proxy present. */
export function evaluateProxyStatus(
    report: ProxyStatusReport,
    opts: EvaluateProxyStatusOptions = {},
): ProxyStatusEvaluation {
    const problems: ProxyProblem[] = [];
    const expected = [...new Set(opts.expectedProxies ?? [])];
    const lines: string[] = [];
    let synced = 0;

    if (report.proxies.length === 0 && expected.length > 0) {
        problems.push({
            proxy: "(mesh)",
            detail: `istioctl reported no proxies at all, ${expected.length} expected`,
        });
    }

    for (const p of report.proxies) {
        const bad: string[] = [];
        if (!report.syncReported) {
            if (opts.requireSyncStatus) {
                bad.push("sync status not reported by this istioctl (1.27+ table); use `-o json` or `-v 1`");
            }
        } else {
            const entries = Object.entries(p.xds);
            if (entries.length === 0) {
                bad.push("no xDS status reported");
            }
            for (const [type, s] of entries) {
                if (s.status === "SYNCED" || s.status === "IGNORED") {
                    continue;
                }
                if (s.status === "NOT SENT" && !NOT_SENT_IS_PROBLEM_FOR.includes(type)) {
                    continue;
                }
                const why = KNOWN_STATUSES.has(s.status) ? describe(type, s) : `${describe(type, s)} (unrecognised status)`;
                bad.push(why);
            }
        }
        if (bad.length > 0) {
            problems.push(...bad.map((detail) => ({ proxy: p.name, detail })));
            lines.push(`  ${p.name} (istiod ${p.istiod || "?"}): ${bad.join(", ")}`);
        } else {
            synced++;
        }
    }

    const present = new Set(report.proxies.map((p) => p.name));
    const missing = expected.filter((name) => !present.has(name));
    for (const name of missing) {
        problems.push({ proxy: name, detail: "expected but absent from proxy-status (not connected to any istiod)" });
    }

    const n = report.proxies.length;
    const head = report.syncReported
        ? `proxy-status (${report.format}): ${n} prox${n === 1 ? "y" : "ies"}, ${synced} synced, ${n - synced} not synced`
        : `proxy-status (${report.format}): ${n} prox${n === 1 ? "y" : "ies"} connected; ` +
          `per-type sync state not reported by this istioctl (use -o json or -v 1 to see it)`;
    const parts = [head];
    if (lines.length > 0) {
        parts.push("not synced:", ...lines);
    }
    if (expected.length > 0) {
        parts.push(
            missing.length > 0
                ? `missing (${missing.length} of ${expected.length} expected): ${missing.join(", ")}`
                : `all ${expected.length} expected proxies present`,
        );
    }
    if (n === 0 && expected.length > 0) {
        parts.push("no proxy is connected to istiod");
    }
    return { ok: problems.length === 0, problems, summary: parts.join("\n") };
}
