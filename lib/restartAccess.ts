// Before anything is applied: may this identity restart (patch) the Deployments of every namespace
// the stack restarts? deploy/rbac.yaml grants restarts by namespace only (npm run rbac renders the
// bindings), so a namespace labelled for injection after the bindings were rendered is found here,
// at preview, instead of failing the restart step midway through a rotation.
import type { Kubectl, KubeList, Namespace } from "./kubectl";
import { meshNamespaces } from "./steps";

interface AccessReview {
    spec?: { resourceAttributes?: { namespace?: string } };
    status?: { allowed?: boolean };
}

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

/** The namespaces whose review was not allowed (kubectl prints a List, or the object for one). */
export function deniedNamespaces(printed: string): string[] {
    const parsed = JSON.parse(printed) as KubeList<AccessReview> | AccessReview;
    const reviews = "items" in parsed ? parsed.items : [parsed as AccessReview];
    return reviews.filter((r) => r.status?.allowed !== true).map((r) => r.spec?.resourceAttributes?.namespace ?? "?").sort();
}

/** The Istio namespace and the workload namespaces (as the restart step finds them) where restarts are denied. */
export async function restartDenied(kubectl: Kubectl, istioNamespace: string, workloadNamespaces?: string[]): Promise<string[]> {
    const list = await kubectl.getJson<KubeList<Namespace>>(["get", "namespaces"]);
    const namespaces = [istioNamespace, ...meshNamespaces(list.items, istioNamespace, workloadNamespaces)];
    return deniedNamespaces(await kubectl.run(["create", "-f", "-", "-o", "json"], JSON.stringify(restartReviews(namespaces))));
}

export function restartDeniedWarning(denied: readonly string[], stack: string): string {
    return `this identity may not restart Deployments (patch) in namespace(s) ${denied.join(", ")}, which this stack restarts: ` +
        `the restart steps will fail there. Grant it: npm run rbac -- --stack ${stack} | kubectl apply -f - ` +
        "(RoleBindings to deploy/rbac.yaml's ClusterRole istio-ca-restart)";
}
