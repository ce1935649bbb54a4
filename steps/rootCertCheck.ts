// Checks that every namespace's `istio-ca-root-cert` ConfigMap holds the expected trust bundle.
//
// What istiod does (istio/istio `pilot/pkg/serviceregistry/kube/controller/namespacecontroller.go`):
// the leader writes ConfigMap `istio-ca-root-cert` (key `root-cert.pem`, the whole CA bundle) into
// every namespace it sees, except `inject.IgnoredNamespaces` minus kube-system (so: kube-public,
// kube-node-lease, local-path-storage; kube-system IS written, for ztunnel), and skips namespaces
// whose status.phase is Terminating. With meshConfig.discoverySelectors it only sees (and writes
// to) the selected namespaces: leave the others out with `namespaces` or `excludeNamespaces` (a
// selector is the API server's to evaluate: `kubectl get namespaces -l`, never parsed here).
//
// Comparison is by SET of SHA-256 fingerprints: order and repetitions in the bundle do not matter.
// The trust a proxy derives from root-cert.pem is the set of roots in it; Istio's own zero-downtime
// rotation (tests/integration/security/cacert_rotation) goes through a bundle A+B+B (B appended
// again so that workloads re-sign), which trusts exactly {A, B}, and istiod may reorder or
// de-duplicate the bundle it distributes. A string comparison would report false "stale" there.
import { bundleFingerprints, formatFingerprint } from "../common/pem";

export const ROOT_CERT_CONFIGMAP = "istio-ca-root-cert";
export const ROOT_CERT_KEY = "root-cert.pem";

/** Namespaces istiod never writes `istio-ca-root-cert` into. */
export const ISTIOD_SKIPPED_NAMESPACES: readonly string[] = ["kube-public", "kube-node-lease", "local-path-storage"];

/** The parts of `kubectl get configmaps -A --field-selector metadata.name=istio-ca-root-cert -o json` used here. */
export interface ConfigMapList {
    items: {
        metadata: { name?: string; namespace?: string };
        data?: Record<string, string> | null;
    }[];
}

/** The parts of `kubectl get namespaces -o json` used here. */
export interface NamespaceList {
    items: {
        metadata: { name: string; labels?: Record<string, string> | null; deletionTimestamp?: string | null };
        status?: { phase?: string } | null;
    }[];
}

export type RootCertStatus = "ok" | "missing" | "stale" | "unparseable";

export interface NamespaceRootCertResult {
    namespace: string;
    status: RootCertStatus;
    /** Distinct fingerprints found (first-seen order); empty when missing/unparseable. */
    found: string[];
    /** Expected fingerprints not in the ConfigMap (stale only). */
    absent: string[];
    /** Fingerprints in the ConfigMap that are not expected, e.g. an old root (stale only). */
    extra: string[];
    /** Human detail for missing/unparseable (and stale: a one-line description). */
    detail?: string;
}

export interface RootCertCheckResult {
    ok: boolean;
    /** Normalised expected fingerprints (lower-case hex, no colons, distinct). */
    expected: string[];
    /** Checked namespaces, sorted by name. */
    namespaces: NamespaceRootCertResult[];
    /** Namespaces left out, with the reason. */
    excluded: { namespace: string; reason: string }[];
}

export interface RootCertCheckOptions {
    /** Check only these namespaces (still minus the ones istiod never writes to). */
    namespaces?: string[];
    /** More namespaces to leave out (e.g. ones outside the mesh's discoverySelectors). */
    excludeNamespaces?: string[];
}

/** Lower-case hex without separators; accepts `AB:CD:...` as openssl prints it. Throws on anything else. */
export function normalizeFingerprint(fp: string): string {
    const hex = fp.trim().replace(/:/g, "").toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(hex)) {
        throw new Error(`not a SHA-256 fingerprint (64 hex digits, colons allowed): ${JSON.stringify(fp)}`);
    }
    return hex;
}

/** Short form for reports: the first 8 bytes, openssl style, e.g. `AB:CD:EF:01:23:45:67:89…`. */
export function shortFingerprint(fp: string): string {
    return `${formatFingerprint(fp.slice(0, 16))}…`;
}

// --- the check ----------------------------------------------------------------------------------

function compare(found: string[], expected: string[]): { absent: string[]; extra: string[] } {
    const f = new Set(found);
    const e = new Set(expected);
    return { absent: expected.filter((x) => !f.has(x)), extra: found.filter((x) => !e.has(x)) };
}

/**
 * Compares every relevant namespace's `istio-ca-root-cert` with the expected bundle fingerprints
 * (as `bundleFingerprints` returns them, or openssl's colon form).
 */
export function checkRootCertConfigMaps(
    configMaps: ConfigMapList,
    namespaceList: NamespaceList,
    expectedFingerprints: string[],
    opts: RootCertCheckOptions = {},
): RootCertCheckResult {
    if (expectedFingerprints.length === 0) {
        throw new Error("checkRootCertConfigMaps: no expected fingerprints given");
    }
    const expected = [...new Set(expectedFingerprints.map(normalizeFingerprint))];
    const only = opts.namespaces !== undefined ? new Set(opts.namespaces) : undefined;
    const extraExcluded = new Set(opts.excludeNamespaces ?? []);

    const byNamespace = new Map<string, ConfigMapList["items"][number]>();
    for (const cm of configMaps.items ?? []) {
        const ns = cm.metadata?.namespace;
        if (ns && (cm.metadata.name === undefined || cm.metadata.name === ROOT_CERT_CONFIGMAP)) {
            byNamespace.set(ns, cm);
        }
    }

    const excluded: RootCertCheckResult["excluded"] = [];
    const results: NamespaceRootCertResult[] = [];
    const seen = new Set<string>();

    for (const ns of namespaceList.items ?? []) {
        const name = ns.metadata.name;
        seen.add(name);
        if (only && !only.has(name)) {
            continue; // not asked for: not listed as excluded either
        }
        if (ISTIOD_SKIPPED_NAMESPACES.includes(name)) {
            excluded.push({ namespace: name, reason: "istiod never writes istio-ca-root-cert there" });
            continue;
        }
        if (ns.status?.phase === "Terminating" || ns.metadata.deletionTimestamp) {
            excluded.push({ namespace: name, reason: "namespace is being deleted (Terminating)" });
            continue;
        }
        if (extraExcluded.has(name)) {
            excluded.push({ namespace: name, reason: "excluded by option" });
            continue;
        }
        results.push(checkOne(name, byNamespace.get(name), expected));
    }

    // Explicitly requested namespaces that do not exist are failures, not silently skipped.
    for (const name of only ?? []) {
        if (!seen.has(name)) {
            results.push({ namespace: name, status: "missing", found: [], absent: [...expected], extra: [], detail: "namespace does not exist" });
        }
    }

    results.sort((a, b) => (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0));
    return { ok: results.every((r) => r.status === "ok"), expected, namespaces: results, excluded };
}

function checkOne(
    namespace: string,
    cm: ConfigMapList["items"][number] | undefined,
    expected: string[],
): NamespaceRootCertResult {
    if (!cm) {
        return { namespace, status: "missing", found: [], absent: [...expected], extra: [], detail: `no ${ROOT_CERT_CONFIGMAP} ConfigMap` };
    }
    const pem = cm.data?.[ROOT_CERT_KEY];
    if (pem === undefined || pem.trim() === "") {
        return { namespace, status: "unparseable", found: [], absent: [], extra: [], detail: `ConfigMap has no ${ROOT_CERT_KEY} key` };
    }
    let found: string[];
    try {
        found = bundleFingerprints(pem, `${namespace}/${ROOT_CERT_CONFIGMAP} ${ROOT_CERT_KEY}`);
    } catch (err) {
        return { namespace, status: "unparseable", found: [], absent: [], extra: [], detail: (err as Error).message };
    }
    const { absent, extra } = compare(found, expected);
    if (absent.length === 0 && extra.length === 0) {
        return { namespace, status: "ok", found, absent, extra };
    }
    const bits: string[] = [];
    if (absent.length > 0) bits.push(`lacks ${absent.length} expected root(s)`);
    if (extra.length > 0) bits.push(`has ${extra.length} unexpected root(s)`);
    return { namespace, status: "stale", found, absent, extra, detail: bits.join(", ") };
}

/** A readable report: the expected roots (short form), then what each failing namespace holds. */
export function formatRootCertReport(result: RootCertCheckResult): string {
    const failing = result.namespaces.filter((r) => r.status !== "ok");
    const lines: string[] = [];
    lines.push(
        `${ROOT_CERT_CONFIGMAP}: ${result.namespaces.length} namespace(s) checked, ` +
            `${result.namespaces.length - failing.length} ok, ${failing.length} failing` +
            (result.excluded.length > 0 ? `, ${result.excluded.length} excluded` : ""),
    );
    lines.push(`expected roots (SHA-256, compared as a set): ${result.expected.map(shortFingerprint).join(", ")}`);
    for (const r of failing) {
        switch (r.status) {
            case "missing":
                lines.push(`  ${r.namespace}: MISSING (${r.detail ?? `no ${ROOT_CERT_CONFIGMAP}`})`);
                break;
            case "unparseable":
                lines.push(`  ${r.namespace}: UNPARSEABLE (${r.detail ?? "?"})`);
                break;
            case "stale": {
                const bits: string[] = [];
                if (r.absent.length > 0) bits.push(`expected but absent: ${r.absent.map(shortFingerprint).join(", ")}`);
                if (r.extra.length > 0) bits.push(`present but not expected: ${r.extra.map(shortFingerprint).join(", ")}`);
                lines.push(`  ${r.namespace}: STALE (holds ${r.found.map(shortFingerprint).join(", ")}; ${bits.join("; ")})`);
                break;
            }
            default:
                break;
        }
    }
    if (result.excluded.length > 0) {
        lines.push(`excluded: ${result.excluded.map((e) => `${e.namespace} (${e.reason})`).join(", ")}`);
    }
    return lines.join("\n");
}
