import * as https from "node:https";
import { sleep } from "../../kube/concurrency";
import { DeploymentLike, summarizeRollouts } from "../../steps/rolloutStatus";
import { Cluster } from "../../tests/harness/cluster";
import { progress, secs } from "./progress";

// Direct API access (measurement only: the limit, the floor, settling, metrics)

export class Api {
    private readonly agent = new https.Agent({ keepAlive: true, maxSockets: 64 });
    constructor(private readonly cluster: Cluster) {}

    request(method: string, p: string, body?: object, contentType = "application/json"): Promise<{ status: number; body: string }> {
        const url = new URL(this.cluster.server + p);
        const data = body ? JSON.stringify(body) : undefined;
        return new Promise((resolve, reject) => {
            const req = https.request(url, {
                method, agent: this.agent, ca: this.cluster.caPem, timeout: 60_000,
                headers: {
                    Authorization: `Bearer ${this.cluster.token}`, Accept: "application/json", "User-Agent": "istio-ca-bench",
                    ...(data ? { "Content-Type": contentType, "Content-Length": Buffer.byteLength(data) } : {}),
                },
            }, (res) => {
                const chunks: Buffer[] = [];
                res.on("data", (c: Buffer) => chunks.push(c));
                res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
            });
            req.on("timeout", () => req.destroy(new Error(`${method} ${p}: timeout`)));
            req.on("error", reject);
            req.end(data);
        });
    }

    async json<T>(p: string): Promise<T> {
        const r = await this.request("GET", p);
        if (r.status !== 200) throw new Error(`GET ${p}: ${r.status} ${r.body.slice(0, 200)}`);
        return JSON.parse(r.body) as T;
    }

    /** What `kubectl rollout restart` does: set the restartedAt annotation of the pod template. */
    async restart(ns: string, name: string): Promise<void> {
        const r = await this.request("PATCH", `/apis/apps/v1/namespaces/${ns}/deployments/${name}`,
            { spec: { template: { metadata: { annotations: { "kubectl.kubernetes.io/restartedAt": new Date().toISOString() } } } } },
            "application/strategic-merge-patch+json");
        if (r.status !== 200) throw new Error(`restart ${ns}/${name}: ${r.status} ${r.body.slice(0, 200)}`);
    }

    deployments(): Promise<{ items: DeploymentLike[]; metadata: { resourceVersion: string } }> {
        return this.json("/apis/apps/v1/deployments");
    }

    /** Watches `p` from `resourceVersion` (newline-delimited JSON events) until the server ends it or close(). */
    watch<T>(p: string, resourceVersion: string, onEvent: (type: string, object: T) => void): { ended: Promise<void>; close(): void } {
        const url = new URL(`${this.cluster.server}${p}?watch=1&resourceVersion=${resourceVersion}&timeoutSeconds=1800`);
        let req: ReturnType<typeof https.request> | undefined;
        const ended = new Promise<void>((resolve) => {
            req = https.request(url, {
                agent: false, ca: this.cluster.caPem,
                headers: { Authorization: `Bearer ${this.cluster.token}`, Accept: "application/json", "User-Agent": "istio-ca-bench" },
            }, (res) => {
                let buffer = "";
                res.setEncoding("utf8");
                res.on("data", (chunk: string) => {
                    buffer += chunk;
                    let nl: number;
                    while ((nl = buffer.indexOf("\n")) >= 0) {
                        const line = buffer.slice(0, nl);
                        buffer = buffer.slice(nl + 1);
                        if (!line.trim()) continue;
                        const ev = JSON.parse(line) as { type: string; object: T };
                        onEvent(ev.type, ev.object);
                    }
                });
                res.on("end", () => resolve());
                res.on("error", () => resolve());
            });
            req.on("error", () => resolve());
            req.end();
        });
        return { ended, close: () => req?.destroy() };
    }

    /** Sum of apiserver_request_total over all series (every client). */
    async requestTotal(): Promise<number> {
        const r = await this.request("GET", "/metrics");
        let sum = 0;
        for (const line of r.body.split("\n")) {
            if (line.startsWith("apiserver_request_total{")) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
        }
        return sum;
    }

    close(): void {
        this.agent.destroy();
    }
}

/**
 * One list, then one watch stream, until every target is rolled out; returns the elapsed time. (It
 * polled a list of every Deployment twice a second: ~4 MB of JSON each at N = 200, a real share of
 * the control plane's CPU in the middle of the rollouts being measured.)
 */
export async function waitRolledOut(api: Api, targets: string[], what: string, timeoutMs = 30 * 60_000): Promise<number> {
    const t0 = Date.now();
    const deployments = new Map<string, DeploymentLike>();
    const keyOf = (d: DeploymentLike): string => `${d.metadata.namespace}/${d.metadata.name}`;
    let lastLog = Date.now();
    const check = (): boolean => {
        const s = summarizeRollouts(deployments.values(), targets, { notFound: "pending" });
        if (s.failed.length > 0) throw new Error(`${what}: rollout failed: ${s.failed.slice(0, 3).map((f) => `${f.name}: ${f.message}`).join("; ")}`);
        if (s.pending.length === 0) return true;
        if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: ${s.pending.length} rollouts pending after ${secs(timeoutMs)}`);
        if (Date.now() - lastLog > 10_000) {
            lastLog = Date.now();
            progress(`${what}: ${s.done.length}/${targets.length} rolled out`);
        }
        return false;
    };
    for (;;) {
        const list = await api.deployments();
        for (const d of list.items) deployments.set(keyOf(d), d);
        if (check()) return Date.now() - t0;
        const w = api.watch<DeploymentLike>("/apis/apps/v1/deployments", list.metadata.resourceVersion, (type, d) => {
            if (type === "ADDED" || type === "MODIFIED") deployments.set(keyOf(d), d);
            else if (type === "DELETED") deployments.delete(keyOf(d));
        });
        try {
            // Checked every 50 ms (a check reads 1,000 targets; events come in bursts).
            for (;;) {
                const ended = await Promise.race([w.ended.then(() => true), sleep(50).then(() => false)]);
                if (check()) return Date.now() - t0;
                if (ended) break; // the server ended the watch: list and watch again
            }
        } finally {
            w.close();
        }
    }
}

/** Until every Deployment is rolled out and no old pod is left (the next part starts from rest). */
export async function settle(api: Api, targets: string[], expectedPods: number): Promise<void> {
    await waitRolledOut(api, targets, "settling");
    const deadline = Date.now() + 5 * 60_000;
    for (;;) {
        const pods = await api.json<{ items: unknown[] }>("/api/v1/pods");
        if (pods.items.length <= expectedPods) return;
        if (Date.now() > deadline) throw new Error(`settling: ${pods.items.length} pods, expected ${expectedPods}`);
        await sleep(500);
    }
}

/** The root-cert.pem of `cacerts` (what real istiod must serve after (b)). */
export async function cacertsRoot(api: Api): Promise<string> {
    const s = await api.json<{ data: Record<string, string> }>("/api/v1/namespaces/istio-system/secrets/cacerts");
    return Buffer.from(s.data["root-cert.pem"], "base64").toString("utf8");
}

/** How many Deployments carry a restartedAt mark from this part or later (a rollout wait alone would not tell). */
export async function restartedSince(api: Api, startMs: number): Promise<number> {
    const since = Math.floor(startMs / 1000) * 1000 - 2000;
    const marks = (await api.deployments()).items.map((d) =>
        Date.parse((d as { spec?: { template?: { metadata?: { annotations?: Record<string, string> } } } }).spec?.template?.metadata?.annotations?.["kubectl.kubernetes.io/restartedAt"] ?? "") || 0);
    return marks.filter((t) => t >= since).length;
}
