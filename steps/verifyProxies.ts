// Step verify-proxies: `istioctl proxy-status` shows every sidecar connected and in sync.
import { pollUntil } from "../kube/concurrency";
import type { Istioctl } from "../kube/istioctl";
import { ToolError } from "../kube/kubectl";
import { evaluateProxyStatus, parseProxyStatus, ProxyStatusReport } from "./verify/proxyStatus";
import { istioctlFor, RETRY_HINT, seconds, StepContext, StepFailure } from "./stepContext";
import { meshProxies } from "./meshNamespaces";

/**
 * d. `istioctl proxy-status`: every sidecar of the mesh namespaces connected to istiod and every
 * proxy SYNCED, retried until the timeout. (An empty list is no proof: a missing proxy is a problem.)
 */
export async function verifyProxies(ctx: StepContext): Promise<{ proxies: number }> {
    const { settings } = ctx;
    const expectedProxies = await meshProxies(ctx);
    const istioctl = istioctlFor(settings);
    const unreachable = new UnreachableIstiod(ctx.log);
    const result = await pollUntil(async () => {
        const report = await proxyStatusReport(istioctl).catch((e: Error) => unreachable.summary(e));
        if (typeof report === "string") return { done: false, summary: report, proxies: 0 };
        unreachable.reset();
        const evaluation = evaluateProxyStatus(report, { requireSyncStatus: true, expectedProxies });
        return { ...evaluation, done: evaluation.ok, proxies: report.proxies.length };
    }, { timeoutMs: settings.proxyStatusTimeoutMs, intervalMs: Math.max(settings.pollIntervalMs, 2000) });
    if (result.timedOut) {
        throw new StepFailure(`proxies not in sync after ${seconds(result.elapsedMs)} (istio-ca:proxyStatusTimeoutSeconds):\n${result.state.summary}\n${RETRY_HINT}`);
    }
    ctx.log(result.state.summary);
    return { proxies: result.state.proxies };
}

async function proxyStatusReport(istioctl: Istioctl): Promise<ProxyStatusReport> {
    const report = parseProxyStatus(await istioctl.proxyStatus());
    // istioctl >= 1.27 lists subscriptions by default; `-v 1` brings back per-type sync status.
    return report.syncReported ? report : parseProxyStatus(await istioctl.proxyStatus(["-v", "1"]));
}

/**
 * istioctl did not reach istiod: right after restart-istiod it may port-forward to the terminating
 * istiod pod (still Running) or to one not listening yet. Read from istioctl's own messages
 * (pkg/kube/portforwarder.go, the gRPC dial, `no running Istio pods`).
 */
const ISTIOD_UNREACHABLE = /connection refused|code = Unavailable|no running Istio pods|port[- ]forward|pod is not running|not found in the "[^"]*" namespace|connection reset by peer|connection closed/i;
/** A TLS failure is a wrong port or trust, which waiting does not fix. */
const NOT_TRANSIENT = /handshake|x509|certificate/i;
/** A restarted istiod answers within seconds; unreachable for longer is a wrong address, namespace or a down istiod. */
export const UNREACHABLE_BUDGET_MS = 60_000;

/** Retries an istiod that istioctl cannot reach, for UNREACHABLE_BUDGET_MS in a row; any other istioctl error fails at once. */
export class UnreachableIstiod {
    private since: number | undefined;
    private loggedKind = "";

    constructor(private readonly log: (line: string) => void, private readonly budgetMs = UNREACHABLE_BUDGET_MS, private readonly now = Date.now) {}

    /** The poll's summary for this error, or throws it (not transient, or unreachable too long). */
    summary(e: Error): string {
        const detail = e instanceof ToolError && e.detail !== undefined ? e.detail : e.message; // not the argv (paths)
        const kind = ISTIOD_UNREACHABLE.exec(detail)?.[0].toLowerCase();
        if (!kind || NOT_TRANSIENT.test(detail)) throw e;
        this.since ??= this.now();
        const forMs = this.now() - this.since;
        if (forMs > this.budgetMs) {
            throw new StepFailure(`istiod not reachable for ${seconds(forMs)}: ${e.message}\nCheck that istiod runs, istio-ca:istioNamespace and (if set) istio-ca:istioctlXdsAddress.\n${RETRY_HINT}`);
        }
        if (kind !== this.loggedKind) this.log(`istiod not reachable yet (${kind}), retrying: ${e.message}`);
        this.loggedKind = kind;
        return `istiod not reachable: ${e.message}`;
    }

    reset(): void {
        this.since = undefined;
        this.loggedKind = "";
    }
}
