// Which namespaces and proxies are in the mesh: what the restarts, the proxy checks and the
// preview's access check (plan/restartAccess.ts) agree on.
import { KubeList, Namespace } from "../kube/kubectl";
import { firstNames } from "./stepOutput";
import { StepContext, StepFailure } from "./stepContext";

/** Namespaces with Istio injection: the explicit list, or the labels istiod's injector uses. */
export function meshNamespaces(namespaces: Namespace[], istioNamespace: string, explicit?: string[]): string[] {
    const live = namespaces.filter((n) => n.status?.phase !== "Terminating");
    if (explicit) {
        const existing = new Set(live.map((n) => n.metadata.name));
        const missing = explicit.filter((n) => !existing.has(n));
        if (missing.length > 0) {
            throw new StepFailure(`istio-ca:workloadNamespaces names namespaces that do not exist: ${firstNames(missing)}`);
        }
        return [...explicit].sort();
    }
    return live
        .filter((n) => n.metadata.name !== istioNamespace)
        .filter((n) => {
            const labels = n.metadata.labels ?? {};
            if (labels["istio-injection"] === "disabled") {
                return false;
            }
            return labels["istio-injection"] === "enabled" || labels["istio.io/rev"] !== undefined;
        })
        .map((n) => n.metadata.name)
        .sort();
}

interface PodView {
    metadata: { name: string; namespace: string; deletionTimestamp?: string };
    spec?: { containers?: { name: string }[] };
    status?: { phase?: string };
}

/** `pod.namespace` (istioctl's proxy names) of every running pod with a sidecar in the mesh namespaces. */
export async function meshProxies(ctx: StepContext): Promise<string[]> {
    const [namespaceList, podList] = await Promise.all([
        ctx.kubectl.getJson<KubeList<Namespace>>(["get", "namespaces"]),
        ctx.kubectl.getJson<KubeList<PodView>>(["get", "pods", "-A", "--field-selector", "status.phase=Running"]),
    ]);
    const inMesh = new Set(meshNamespaces(namespaceList.items, ctx.settings.istioNamespace, ctx.settings.workloadNamespaces));
    return podList.items
        .filter((p) => inMesh.has(p.metadata.namespace) && !p.metadata.deletionTimestamp && (p.spec?.containers ?? []).some((c) => c.name === "istio-proxy"))
        .map((p) => `${p.metadata.name}.${p.metadata.namespace}`);
}
