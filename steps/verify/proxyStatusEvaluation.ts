// Judging a parsed proxy-status: which proxies are missing, not connected or not in sync.
import { KNOWN_STATUSES, ProxyStatusReport, XdsTypeStatus } from "./proxyStatusModel";


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
