// Step wait-root-cert: istiod has published the new trust bundle in every namespace.
import { watchUntil } from "../kube/kubeWatch";
import { checkRootCertConfigMaps, ConfigMapList, formatRootCertReport, NamespaceList, ROOT_CERT_CONFIGMAP, RootCertCheckResult } from "./rootCertCheck";
import { RETRY_HINT, seconds, StepContext, StepFailure, watchTarget } from "./stepContext";

/** b. Wait until istio-ca-root-cert in every namespace istiod serves holds the new trust bundle. */
export async function waitRootCert(ctx: StepContext): Promise<{ namespaces: number }> {
    const expected = ctx.settings.trustFingerprints;
    if (expected.length === 0) {
        throw new StepFailure("ISTIO_CA_TRUST_FINGERPRINTS must be set for wait-root-cert");
    }
    ctx.log(`waiting for ${ROOT_CERT_CONFIGMAP} to carry ${expected.length} root(s) in every namespace`);
    const readNamespaces = (): Promise<NamespaceList> => ctx.kubectl.getJson<NamespaceList>(["get", "namespaces"]);
    let namespaces = await readNamespaces();
    // One watch of the ConfigMaps of all namespaces; the namespace list is read again before the
    // verdict and every 10 s (a namespace created or deleted meanwhile).
    type ConfigMap = ConfigMapList["items"][number];
    const result = await watchUntil<ConfigMap, RootCertCheckResult & { done: boolean }>(watchTarget(ctx.settings),
        ["get", "configmaps", "-A", "--field-selector", `metadata.name=${ROOT_CERT_CONFIGMAP}`], {
            key: (cm) => cm.metadata.namespace ?? "",
            evaluate: (objects) => {
                const check = checkRootCertConfigMaps({ items: [...objects.values()] }, namespaces, expected);
                return { ...check, done: check.ok };
            },
            refresh: async () => {
                namespaces = await readNamespaces();
            },
            refreshEveryMs: 10_000,
            timeoutMs: ctx.settings.rootCertTimeoutMs,
            onProgress: (s, elapsed) => {
                const ok = s.namespaces.filter((n) => n.status === "ok").length;
                ctx.log(`${ROOT_CERT_CONFIGMAP}: ${ok}/${s.namespaces.length} namespaces current after ${seconds(elapsed)}`);
            },
        });
    if (result.timedOut) {
        throw new StepFailure(
            `timed out after ${seconds(result.elapsedMs)} (istio-ca:rootCertTimeoutSeconds) waiting for ${ROOT_CERT_CONFIGMAP} to carry the new trust bundle.\n` +
            `${formatRootCertReport(result.state)}\n` +
            `istiod writes this ConfigMap; check that it runs and reads the new cacerts (kubectl logs -n ${ctx.settings.istioNamespace} -l ${ctx.settings.istiodSelector}). ${RETRY_HINT}`);
    }
    ctx.log(`${ROOT_CERT_CONFIGMAP}: all ${result.state.namespaces.length} namespaces carry the new bundle (${seconds(result.elapsedMs)})`);
    return { namespaces: result.state.namespaces.length };
}
