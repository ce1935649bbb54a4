// Stands in for istiod's namespace controller in the local cluster, where no istiod runs: when
// the cacerts Secret's root-cert.pem changes, it writes istio-ca-root-cert (key root-cert.pem) into
// every namespace, as istiod does (istio/istio pilot/pkg/serviceregistry/kube/controller/
// namespacecontroller.go). It can be paused to make the wait step time out. Like istiod it watches
// the Secret (one kubectl process, not one per poll: at mesh scale those processes competed with the
// control plane for CPU) and writes the ConfigMaps concurrently (a serial apply of 200 took ~12 s).
import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import type { Cluster } from "../harness/cluster";
import { JsonObjectSplitter } from "../../lib/kubeWatch";

const SKIPPED = new Set(["kube-public", "kube-node-lease", "local-path-storage"]);
/** kubectl processes writing ConfigMaps at once (each a share of the namespaces). */
const WRITERS = 8;

export class FakeIstiod {
    paused = false;
    /** How many times the ConfigMaps were (re)written. */
    writes = 0;
    private lastBundle: string | undefined;
    /** root-cert.pem of cacerts as last seen by the watch (undefined: no cacerts). */
    private seenBundle: string | undefined;
    private running = false;
    private loop: Promise<void> | undefined;
    private watcher: ChildProcess | undefined;
    private watchLoop: Promise<void> | undefined;

    constructor(private readonly cluster: Cluster, private readonly istioNamespace = "istio-system") {}

    start(): void {
        this.running = true;
        this.watchLoop = (async () => {
            while (this.running) {
                await this.watchSecret().catch(() => undefined);
                await new Promise((r) => setTimeout(r, 300));
            }
        })();
        this.loop = (async () => {
            while (this.running) {
                if (!this.paused) {
                    await this.sync().catch(() => undefined);
                }
                await new Promise((r) => setTimeout(r, 100));
            }
        })();
    }

    async stop(): Promise<void> {
        this.running = false;
        this.watcher?.kill();
        await Promise.all([this.loop, this.watchLoop]);
    }

    /** Follows cacerts with `kubectl get --watch` until kubectl ends (the loop starts it again). */
    private watchSecret(): Promise<void> {
        return new Promise((resolve) => {
            const child = spawn(path.join(this.cluster.binDir, "kubectl"), [
                "--kubeconfig", this.cluster.kubeconfig, "get", "secrets", "-n", this.istioNamespace,
                "--field-selector", "metadata.name=cacerts", "--watch", "--output-watch-events", "-o", "json",
            ], { stdio: ["ignore", "pipe", "ignore"] });
            this.watcher = child;
            const splitter = new JsonObjectSplitter();
            child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
                for (const text of splitter.push(chunk)) {
                    const ev = JSON.parse(text) as { type: string; object?: { data?: Record<string, string> } };
                    const pem = ev.object?.data?.["root-cert.pem"];
                    this.seenBundle = ev.type === "DELETED" || !pem ? undefined : Buffer.from(pem, "base64").toString("utf8");
                }
            });
            child.on("error", () => resolve());
            child.on("close", () => resolve());
        });
    }

    private async sync(): Promise<void> {
        const bundle = this.seenBundle;
        if (bundle === undefined || bundle === this.lastBundle) {
            return;
        }
        const namespaces = (await this.cluster.kubectl(["get", "namespaces", "-o", "jsonpath={.items[*].metadata.name}"])).stdout.split(" ").filter((n) => n && !SKIPPED.has(n));
        const shares: string[][] = Array.from({ length: Math.min(WRITERS, namespaces.length) }, () => []);
        namespaces.forEach((ns, i) => shares[i % shares.length].push(ns));
        await Promise.all(shares.map((share) => this.cluster.kubectl(
            ["apply", "--server-side", "--force-conflicts", "--field-manager=fake-istiod", "-f", "-"],
            {
                input: JSON.stringify({
                    apiVersion: "v1",
                    kind: "List",
                    items: share.map((namespace) => ({
                        apiVersion: "v1",
                        kind: "ConfigMap",
                        metadata: { name: "istio-ca-root-cert", namespace },
                        data: { "root-cert.pem": bundle },
                    })),
                }),
            },
        )));
        this.lastBundle = bundle;
        this.writes++;
    }
}
