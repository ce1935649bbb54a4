// The per-namespace part of least privilege (`npm run rbac`): RoleBindings that let the deployer
// restart Deployments (and, with the proxy checks, port-forward to proxies) only in the
// namespaces a stack restarts. The rules are the ClusterRoles of deploy/rbac.yaml and
// deploy/rbac-proxy-checks.yaml; a RoleBinding to a ClusterRole grants its rules in the binding's
// namespace only.
import { stringify } from "yaml";

/** deploy/rbac.yaml: `patch` on Deployments, granted by namespace. */
export const RESTART_CLUSTER_ROLE = "istio-ca-restart";
/** deploy/rbac-proxy-checks.yaml: `create` on pods/portforward, granted by namespace. */
export const PORTFORWARD_CLUSTER_ROLE = "istio-ca-proxy-portforward";
/** Label of every rendered binding: `kubectl get rolebindings -A -l istio-ca/rbac` lists them. */
export const RBAC_LABEL = "istio-ca/rbac";

export interface RbacSubject {
    kind: "ServiceAccount" | "User" | "Group";
    name: string;
    /** ServiceAccount only. */
    namespace?: string;
}

export const DEFAULT_SUBJECT: RbacSubject = { kind: "ServiceAccount", name: "istio-ca-deployer", namespace: "istio-system" };

function binding(namespace: string, clusterRole: string, purpose: string, subject: RbacSubject): object {
    const subjectRef = subject.kind === "ServiceAccount"
        ? { kind: subject.kind, name: subject.name, namespace: subject.namespace }
        : { apiGroup: "rbac.authorization.k8s.io", kind: subject.kind, name: subject.name };
    return {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: { name: clusterRole, namespace, labels: { "app.kubernetes.io/managed-by": "istio-ca", [RBAC_LABEL]: purpose } },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: clusterRole },
        subjects: [subjectRef],
    };
}

/** The RoleBindings for the namespaces a stack restarts (sorted, each once). */
export function workloadBindings(opts: { namespaces: readonly string[]; subject: RbacSubject; proxyChecks: boolean }): object[] {
    return [...new Set(opts.namespaces)].sort().flatMap((ns) => [
        binding(ns, RESTART_CLUSTER_ROLE, "restart", opts.subject),
        ...(opts.proxyChecks ? [binding(ns, PORTFORWARD_CLUSTER_ROLE, "proxy-checks", opts.subject)] : []),
    ]);
}

/**
 * Objects as one multi-document YAML stream, for `kubectl apply -f -`. Written as YAML 1.1, which
 * kubectl reads: strings such as on, yes or 0755 are quoted (1.2 would leave them plain).
 */
export function toYaml(objects: readonly object[], header: readonly string[] = []): string {
    return [...header.map((l) => `# ${l}\n`), ...objects.map((o) => `---\n${stringify(o, { version: "1.1" })}`)].join("");
}
