// Before anything is applied: may this identity restart (patch) the Deployments of every namespace
// the stack restarts? deploy/rbac.yaml grants restarts by namespace only (npm run rbac renders the
// bindings), so a namespace labelled for injection after the bindings were rendered is found here,
// at preview, instead of failing the restart step midway through a rotation.
import type { Kubectl, KubeList, Namespace } from "../kube/kubectl";
import { meshNamespaces } from "../steps/meshNamespaces";

/** One SelfSubjectAccessReview per namespace (any authenticated identity may create them). */
export function restartReviews(namespaces: readonly string[]): object {
    return {
        apiVersion: "v1",
        kind: "List",
        items: namespaces.map((namespace) => ({
            apiVersion: "authorization.k8s.io/v1",
            kind: "SelfSubjectAccessReview",
            spec: { resourceAttributes: { group: "apps", resource: "deployments", verb: "patch", namespace } },
        })),
    };
}

/** What kubectl prints for each review created: `<namespace>=<allowed>` (true, false, or empty). */
export const REVIEW_TEMPLATE = 'jsonpath={.spec.resourceAttributes.namespace}={.status.allowed}{"\\n"}';

/** The namespaces whose review was not allowed, from the lines REVIEW_TEMPLATE prints. */
export function deniedNamespaces(printed: string): string[] {
    return printed.split("\n").map((l) => l.trim()).filter((l) => l !== "")
        .map((l) => l.split("=")).filter(([, allowed]) => allowed !== "true").map(([ns]) => ns).sort();
}

/** The Istio namespace and the workload namespaces (as the restart step finds them) where restarts are denied. */
export async function restartDenied(kubectl: Kubectl, istioNamespace: string, workloadNamespaces?: string[]): Promise<string[]> {
    const list = await kubectl.getJson<KubeList<Namespace>>(["get", "namespaces"]);
    const namespaces = [istioNamespace, ...meshNamespaces(list.items, istioNamespace, workloadNamespaces)];
    // kubectl prints one result per object created (not a List): one line each.
    return deniedNamespaces(await kubectl.run(["create", "-f", "-", "-o", REVIEW_TEMPLATE], JSON.stringify(restartReviews(namespaces))));
}

export function restartDeniedWarning(denied: readonly string[], stack: string): string {
    return `this identity may not restart Deployments (patch) in namespace(s) ${denied.join(", ")}, which this stack restarts: ` +
        `the restart steps will fail there. Grant it: npm run rbac -- --stack ${stack} | kubectl apply -f - ` +
        "(RoleBindings to deploy/rbac.yaml's ClusterRole istio-ca-restart)";
}
