// What end-to-end tests configure for, and read back from, a local test cluster (tests/harness).
import * as path from "node:path";
import type { Cluster } from "../harness/cluster";

/**
 * Config of a cluster stack against a local cluster. The proxy checks are off unless the test runs
 * real Istio and turns verify-proxies on (RealIstio.stackConfig); verify-workload-certs needs Envoy,
 * which cannot run here. Short waits keep timeout cases short; ECDSA keys are fast.
 */
export function localClusterConfig(cluster: Cluster, clusterName: string, overrides: Record<string, string> = {}): Record<string, string> {
    return {
        clusterName,
        keyAlgorithm: "ECDSA",
        kubeconfig: cluster.kubeconfig,
        kubectlPath: path.join(cluster.binDir, "kubectl"),
        verifyProxyStatus: "false",
        verifyWorkloadCertificates: "false",
        rootCertTimeoutSeconds: "20",
        rolloutTimeoutSeconds: "120",
        ...overrides,
    };
}

export interface SecretView {
    uid: string;
    resourceVersion: string;
    /** Decoded values by file name. */
    data: Record<string, string>;
    labels: Record<string, string>;
    annotations: Record<string, string>;
}

/** A Secret as the API server holds it now (undefined: there is none). */
export async function readSecret(cluster: Cluster, name: string, namespace = "istio-system"): Promise<SecretView | undefined> {
    const r = await cluster.kubectl(["get", "secret", name, "-n", namespace, "-o", "json"], { allowFailure: true });
    if (r.code !== 0) {
        return undefined;
    }
    const s = JSON.parse(r.stdout);
    return {
        uid: s.metadata.uid,
        resourceVersion: s.metadata.resourceVersion,
        data: Object.fromEntries(Object.entries((s.data ?? {}) as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")])),
        labels: s.metadata.labels ?? {},
        annotations: s.metadata.annotations ?? {},
    };
}

/**
 * Readies a local cluster's mesh for multi-root bundles, as an operator does before a phased root
 * rotation: ISTIO_MULTIROOT_MESH=true on istiod (a rollout), and the mesh config (ConfigMap
 * `istio`, which istiod reads) giving every proxy PROXY_CONFIG_XDS_AGENT=true.
 */
export async function enableMultiRoot(cluster: Cluster): Promise<void> {
    await cluster.kubectl(["set", "env", "deployment/istiod", "-n", "istio-system", "ISTIO_MULTIROOT_MESH=true"]);
    await cluster.kubectl(["rollout", "status", "deployment/istiod", "-n", "istio-system", "--timeout=120s"]);
    await cluster.apply([{
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "istio", namespace: "istio-system" },
        data: { mesh: `defaultConfig:\n  proxyMetadata:\n    ${Object.entries(MULTI_ROOT_PROXY_METADATA).map(([k, v]) => `${k}: "${v}"`).join("\n    ")}\n` },
    }]);
}

/** What enableMultiRoot's mesh config gives every sidecar (RealIstio's agents take it as injected env). */
export const MULTI_ROOT_PROXY_METADATA = { PROXY_CONFIG_XDS_AGENT: "true" };
