// `istioctl proxy-status -o json`: the xDS DiscoveryResponse(s) of istiod's syncz debug request.
import { field, isObject, Json, JsonObject, str } from "./protoJson";
import { CLIENT_CONFIG_TYPE, formatError, parseStatusCell, ProxyStatusEntry, ProxyStatusReport, shortXdsType } from "./proxyStatusModel";


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

export function parseJson(output: string): ProxyStatusReport {
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
