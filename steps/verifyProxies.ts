// Step verify-proxies: `istioctl proxy-status` shows every sidecar connected and in sync.
import { pollUntil } from "../kube/concurrency";
import { evaluateProxyStatus, parseProxyStatus } from "./verify/proxyStatus";
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
    const result = await pollUntil(async () => {
        let report = parseProxyStatus(await istioctl.proxyStatus());
        if (!report.syncReported) {
            // istioctl >= 1.27 lists subscriptions by default; `-v 1` brings back per-type sync status.
            report = parseProxyStatus(await istioctl.proxyStatus(["-v", "1"]));
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
