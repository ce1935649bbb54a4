// What end-to-end tests observe outside the engine: every process's command line and environment
// (sampled), and the restart marks of the Deployments.
import * as fs from "node:fs";
import type { Cluster } from "../harness/cluster";

/** Command lines and environments of every process, sampled every 100 ms while running. */
export class ProcessSampler {
    readonly seen = new Set<string>();
    samples = 0;
    private running = false;
    private loop: Promise<void> | undefined;

    start(): void {
        this.running = true;
        this.loop = (async () => {
            while (this.running) {
                for (const pid of fs.readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
                    for (const file of ["cmdline", "environ"]) {
                        try {
                            this.seen.add(fs.readFileSync(`/proc/${pid}/${file}`, "latin1"));
                        } catch {
                            // exited meanwhile, or not ours to read
                        }
                    }
                }
                this.samples++;
                await new Promise((r) => setTimeout(r, 100));
            }
        })();
    }

    async stop(): Promise<void> {
        this.running = false;
        await this.loop;
    }
}

/** `kubectl.kubernetes.io/restartedAt` of every Deployment, by namespace/name. */
export async function restartMarks(cluster: Cluster): Promise<Record<string, string | undefined>> {
    const list = JSON.parse((await cluster.kubectl(["get", "deployments", "-A", "-o", "json"])).stdout);
    return Object.fromEntries(list.items.map((d: { metadata: { namespace: string; name: string }; spec: { template: { metadata?: { annotations?: Record<string, string> } } } }) => [
        `${d.metadata.namespace}/${d.metadata.name}`,
        d.spec.template.metadata?.annotations?.["kubectl.kubernetes.io/restartedAt"],
    ]));
}
