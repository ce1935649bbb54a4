// Stands in for istiod's namespace controller in the local cluster, where no istiod runs: when
// the cacerts Secret's root-cert.pem changes, it writes istio-ca-root-cert (key root-cert.pem) into
// every namespace, as istiod does (istio/istio pilot/pkg/serviceregistry/kube/controller/
// namespacecontroller.go). It can be paused to make the wait step time out.
import type { Cluster } from "../harness/cluster";

const SKIPPED = new Set(["kube-public", "kube-node-lease", "local-path-storage"]);

export class FakeIstiod {
    paused = false;
    /** How many times the ConfigMaps were (re)written. */
    writes = 0;
    private lastBundle: string | undefined;
    private running = false;
    private loop: Promise<void> | undefined;

    constructor(private readonly cluster: Cluster, private readonly istioNamespace = "istio-system") {}

    start(): void {
        this.running = true;
        this.loop = (async () => {
            while (this.running) {
                if (!this.paused) {
                    await this.sync().catch(() => undefined);
                }
                await new Promise((r) => setTimeout(r, 300));
            }
        })();
    }

    async stop(): Promise<void> {
        this.running = false;
        await this.loop;
    }

    private async sync(): Promise<void> {
        const secret = await this.cluster.kubectl(["get", "secret", "cacerts", "-n", this.istioNamespace, "-o", "jsonpath={.data.root-cert\\.pem}"], { allowFailure: true });
        if (secret.code !== 0 || secret.stdout === "") {
            return;
        }
        const bundle = Buffer.from(secret.stdout, "base64").toString("utf8");
        if (bundle === this.lastBundle) {
            return;
        }
        const namespaces = (await this.cluster.kubectl(["get", "namespaces", "-o", "jsonpath={.items[*].metadata.name}"])).stdout.split(" ").filter((n) => n && !SKIPPED.has(n));
        await this.cluster.apply(namespaces.map((namespace) => ({
            apiVersion: "v1",
            kind: "ConfigMap",
            metadata: { name: "istio-ca-root-cert", namespace },
            data: { "root-cert.pem": bundle },
        })));
        this.lastBundle = bundle;
        this.writes++;
    }
}
