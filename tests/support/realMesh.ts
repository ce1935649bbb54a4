// What real Istio did after an `up`, read back for end-to-end assertions: the bundle istiod
// published, the certificates the agents got, and mTLS between the workloads.
import assert from "node:assert/strict";
import type { Cluster } from "../harness/cluster";
import type { RealIstio } from "../harness/realIstio";
import type { WorkloadCertificate } from "../harness/meshAgents";
import { readSecret } from "./localCluster";
import { failedHandshakes, workloadsNotIssuedBy, workloadsNotVerifiedBy } from "./meshChecks";
import { bundleFingerprints } from "../../common/pem";
import { istiodView } from "../../common/cacertsFormat";

/** `pod.namespace` of every running, not terminating, pod with a sidecar. */
async function meshPods(cluster: Cluster): Promise<string[]> {
    const pods = JSON.parse((await cluster.kubectl(["get", "pods", "-A", "-o", "json"])).stdout).items as {
        metadata: { name: string; namespace: string; deletionTimestamp?: string };
        spec: { containers: { name: string }[] };
        status?: { phase?: string };
    }[];
    return pods
        .filter((p) => p.spec.containers.some((c) => c.name === "istio-proxy") && p.status?.phase === "Running" && !p.metadata.deletionTimestamp)
        .map((p) => `${p.metadata.name}.${p.metadata.namespace}`)
        .sort();
}

/** Waits until every mesh pod's agent holds a certificate (whoever issued it), and returns them. */
export async function liveCertificates(cluster: Cluster, istio: RealIstio, timeoutMs = 90_000): Promise<WorkloadCertificate[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const pods = await meshPods(cluster);
        const certs = istio.agents!.certificates();
        if (pods.length > 0 && JSON.stringify(certs.map((c) => c.proxy)) === JSON.stringify(pods)) return certs;
        istio.istiod.assertHealthy();
        if (Date.now() > deadline) {
            const missing = pods.filter((p) => !certs.some((c) => c.proxy === p));
            throw new Error(`no workload certificate for ${missing.join(", ")} after ${timeoutMs / 1000}s:\n${missing.slice(0, 1).map((p) => istio.agents!.agentLog(p)).join("\n")}`);
        }
        await new Promise((r) => setTimeout(r, 500));
    }
}

/** The up's checks of the mesh, judged by what real Istio did. Returns the live certificates. */
export async function assertMeshTook(cluster: Cluster, istio: RealIstio, what: string, before: WorkloadCertificate[]): Promise<WorkloadCertificate[]> {
    istio.istiod.assertHealthy();
    assert.deepEqual(istio.istiod.currentRefusals(), [], `${what}: the istiod serving now refused no cacerts`);
    // What istiod reads from cacerts, in either layout (tls.crt / ca.crt when tls.crt is there).
    const cacerts = { data: istiodView((await readSecret(cluster, "cacerts"))!.data).files };
    const bundle = bundleFingerprints(cacerts.data["root-cert.pem"], "cacerts root-cert.pem");
    for (const ns of ["istio-system", "bookinfo", "payments", "canary", "plain", "default"]) {
        const published = (await cluster.kubectl(["get", "configmap", "istio-ca-root-cert", "-n", ns, "-o", "jsonpath={.data.root-cert\\.pem}"])).stdout;
        assert.deepEqual(new Set(bundleFingerprints(published, `istio-ca-root-cert in ${ns}`)), new Set(bundle), `${what}: istiod published the bundle in ${ns}`);
    }
    const after = await liveCertificates(cluster, istio);
    assert.deepEqual(workloadsNotIssuedBy(after, cacerts.data["ca-cert.pem"]), [], `${what}: every workload certificate comes from the signer in cacerts`);
    assert.deepEqual(workloadsNotVerifiedBy(after, cacerts.data["root-cert.pem"]), [], `${what}: every workload chain verifies against the served bundle`);
    // During the step, workloads not yet restarted (before) and restarted ones (after) talk to each other.
    assert.deepEqual(await failedHandshakes([...before, ...after]), [], `${what}: every pair of live workloads completes mTLS`);
    return after;
}

