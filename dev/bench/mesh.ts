import { mapLimit, sleep } from "../../kube/concurrency";
import { Cluster } from "../../tests/harness/cluster";
import { progress, secs } from "./progress";
import { Rig } from "./rig";
import { Api, waitRolledOut } from "./api";

// Seeding: N namespaces (istio-injection=enabled) × D Deployments, plus istio-system/istiod

const nsName = (i: number): string => `mesh-${String(i).padStart(3, "0")}`;

function deploymentManifest(ns: string, name: string, istiod: boolean): object {
    const labels: Record<string, string> = istiod ? { app: "istiod", istio: "pilot" } : { app: name, version: "v1", "security.istio.io/tlsMode": "istio" };
    const containers = istiod
        ? [{ name: "discovery", image: "docker.io/istio/pilot:1.27.0", args: ["discovery"] }]
        : [
            { name: "app", image: `registry.invalid/istio-ca-fake/${name}:1.0` },
            { name: "istio-proxy", image: "docker.io/istio/proxyv2:1.27.0", args: ["proxy", "sidecar"] },
        ];
    const annotations: Record<string, string> = istiod ? {} : { "sidecar.istio.io/status": JSON.stringify({ containers: ["istio-proxy"], revision: "default" }) };
    return {
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name, namespace: ns, labels: { app: labels.app } },
        spec: {
            replicas: 1,
            selector: { matchLabels: { app: labels.app } },
            template: { metadata: { labels, annotations }, spec: { containers, terminationGracePeriodSeconds: 1 } },
        },
    };
}

export interface Mesh {
    namespaces: string[];
    /** ns/name of every workload Deployment (not istiod). */
    workloads: string[];
    istiod: string;
    all: string[];
}

export async function seed(cluster: Cluster, api: Api, n: number, perNs: number): Promise<Mesh> {
    const namespaces = Array.from({ length: n }, (_, i) => nsName(i));
    await cluster.apply([
        { apiVersion: "v1", kind: "Namespace", metadata: { name: "istio-system" } },
        ...namespaces.map((name) => ({ apiVersion: "v1", kind: "Namespace", metadata: { name, labels: { "istio-injection": "enabled" } } })),
    ]);
    // Pods are refused until the namespace's "default" ServiceAccount exists.
    for (;;) {
        const sas = await api.json<{ items: { metadata: { namespace: string } }[] }>("/api/v1/serviceaccounts?fieldSelector=metadata.name%3Ddefault");
        const have = new Set(sas.items.map((s) => s.metadata.namespace));
        if (["istio-system", ...namespaces].every((ns) => have.has(ns))) break;
        await sleep(250);
    }
    const manifests: object[] = [deploymentManifest("istio-system", "istiod", true)];
    const workloads: string[] = [];
    for (const ns of namespaces) {
        for (let d = 0; d < perNs; d++) {
            const name = `app-${d}`;
            manifests.push(deploymentManifest(ns, name, false));
            workloads.push(`${ns}/${name}`);
        }
    }
    const batches: object[][] = [];
    for (let i = 0; i < manifests.length; i += 100) batches.push(manifests.slice(i, i + 100));
    let applied = 0;
    await mapLimit(batches, 4, async (b) => {
        await cluster.apply(b);
        applied += b.length;
        progress(`seeding: ${applied}/${manifests.length} Deployments applied`);
    });
    const istiod = "istio-system/istiod";
    const all = [istiod, ...workloads];
    const ms = await waitRolledOut(api, all, "seeding");
    progress(`seeding: all ${all.length} Deployments rolled out (${secs(ms)} after the last apply)`);
    return { namespaces, workloads, istiod, all };
}

/**
 * Until istiod serves and istio-ca-root-cert is in every mesh namespace, holding `rootPem` when
 * given (istiod writes it; after a restart it republishes). Returns the elapsed time.
 */
export async function rootCertPublished(rig: Rig, mesh: Mesh, what: string, rootPem?: string, timeoutMs = 5 * 60_000): Promise<number> {
    const t0 = Date.now();
    await rig.istiod.waitReady(timeoutMs);
    for (;;) {
        const cms = await rig.api.json<{ items: { metadata: { namespace: string }; data?: Record<string, string> }[] }>(
            "/api/v1/configmaps?fieldSelector=metadata.name%3Distio-ca-root-cert");
        const ok = new Set(cms.items.filter((c) => c.data?.["root-cert.pem"] && (!rootPem || c.data["root-cert.pem"].trim() === rootPem.trim())).map((c) => c.metadata.namespace));
        const missing = mesh.namespaces.filter((ns) => !ok.has(ns));
        if (missing.length === 0) {
            progress(`${what}: istiod ready, istio-ca-root-cert in all ${mesh.namespaces.length} namespaces (${secs(Date.now() - t0)})`);
            return Date.now() - t0;
        }
        rig.istiod.assertHealthy();
        if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: no istio-ca-root-cert from istiod in ${missing.length} namespaces (${missing.slice(0, 3).join(", ")}...):\n${rig.istiod.logTail(25)}`);
        await sleep(500);
    }
}
