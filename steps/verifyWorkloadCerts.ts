// Step verify-workload-certs: the gate between rotation phases.
import { mapLimit, pollUntil } from "../kube/concurrency";
import { evaluateProxySecrets, formatProxySecretsReport, summarizeProxySecrets } from "./verify/proxySecretsEvaluation";
import { istioctlFor, RETRY_HINT, seconds, StepContext, StepFailure } from "./stepContext";
import { meshProxies } from "./meshNamespaces";

/**
 * e. The gate between rotation phases: every Istio-enabled workload's certificate was issued by the
 * current intermediate and its proxy trusts exactly root-cert.pem (`istioctl proxy-config secret`,
 * one call per pod: that is the only place a proxy's certificates can be read).
 */
export async function verifyWorkloadCerts(ctx: StepContext): Promise<{ workloads: number }> {
    const { settings } = ctx;
    if (!settings.signingCertPem || !settings.trustBundlePem) {
        throw new StepFailure("ISTIO_CA_SIGNING_CERT_PEM and ISTIO_CA_TRUST_BUNDLE_PEM must be set for verify-workload-certs");
    }
    const pods = await meshProxies(ctx);
    ctx.log(`checking the certificates of ${pods.length} proxies`);
    const expected = { signingCertPem: settings.signingCertPem, trustBundlePem: settings.trustBundlePem };
    const istioctl = istioctlFor(settings);
    const result = await pollUntil(async () => {
        const statuses = await mapLimit(pods, settings.concurrency, async (pod) => {
            const output = await istioctl.proxySecrets(pod).catch((err: Error) => err.message);
            return evaluateProxySecrets(pod, output, expected);
        });
        const summary = summarizeProxySecrets(statuses);
        return { statuses, summary, done: summary.ok };
    }, {
        timeoutMs: settings.workloadCertTimeoutMs,
        intervalMs: Math.max(settings.pollIntervalMs, 5000),
        onProgress: ({ summary }, elapsed) => ctx.log(`workload certificates: ${summary.ready}/${summary.total} current after ${seconds(elapsed)}`),
    });
    if (result.timedOut) {
        throw new StepFailure(
            `after ${seconds(result.elapsedMs)} (istio-ca:workloadCertTimeoutSeconds) ${result.state.summary.pending.length} of ${pods.length} workloads ` +
            `do not yet hold a certificate from the current intermediate and the current trust bundle:\n` +
            `${formatProxySecretsReport(result.state.statuses, { onlyProblems: true })}\n` +
            `Restart those workloads (kubectl rollout restart) or wait for them to re-sign; do not start the next rotation phase before this passes. ${RETRY_HINT}`);
    }
    ctx.log(`all ${pods.length} workloads hold certificates from the current intermediate`);
    return { workloads: pods.length };
}
