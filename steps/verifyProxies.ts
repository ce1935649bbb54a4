// Step verify-proxies: `istioctl proxy-status` shows every sidecar connected and in sync.
import { pollUntil } from "../kube/concurrency";
import type { Istioctl } from "../kube/istioctl";
import { evaluateProxyStatus, parseProxyStatus, ProxyStatusReport } from "./verify/proxyStatus";
import { istioctlFor, RETRY_HINT, seconds, StepContext, StepFailure } from "./stepContext";
import { meshProxies } from "./meshNamespaces";

/**
 * istioctl did not reach istiod: right after restart-istiod it may reach a terminating istiod pod or
 * one not listening yet. Retried until the timeout; any other istioctl error fails at once.
 */
const ISTIOD_UNREACHABLE = /connection refused|code = Unavailable|no running Istio pods|port-forward|connection reset by peer/i;

/**
 * d. `istioctl proxy-status`: every sidecar of the mesh namespaces connected to istiod and every
 * proxy SYNCED, retried until the timeout. (An empty list is no proof: a missing proxy is a problem.)
 */
export async function verifyProxies(ctx: StepContext): Promise<{ proxies: number }> {
    const { settings } = ctx;
    const expectedProxies = await meshProxies(ctx);
    const istioctl = istioctlFor(settings);
    let lastUnreachable = "";
    const result = await pollUntil(async () => {
        const report = await proxyStatusReport(istioctl).catch((e: Error) => {
            if (!ISTIOD_UNREACHABLE.test(e.message)) throw e;
            return e.message;
        });
        if (typeof report === "string") {
            if (report !== lastUnreachable) ctx.log(`istiod not reachable yet, retrying: ${report}`);
            lastUnreachable = report;
            return { done: false, summary: `istiod not reachable: ${report}`, proxies: 0 };
        }
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
