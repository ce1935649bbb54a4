// Real istiod (pilot-discovery, built from istio.io/istio by toolchain/istio.sh) in the local
// cluster. kwok runs the istiod Deployment's pods as fakes; this supervisor plays the kubelet for the
// newest of them: it runs pilot-discovery on loopback against the local API server while that pod
// exists, with the pod's container environment (ISTIO_MULTIROOT_MESH, ...), mounts the `cacerts`
// Secret into its cert directory (ROOT_CA_DIR) the way the kubelet does, atomically and after a
// configurable delay (a real kubelet takes up to a minute or more to sync a changed Secret into a
// running pod; a new pod mounts it as it is), and starts a new process when a new pod replaces the
// old one (a rollout restart). What istiod then does with the files is istiod's own business:
// accept, hot-reload, refuse, write istio-ca-root-cert into every namespace, sign CSRs.
// It also plays the kubelet's readiness probe (istiod's manifest probes GET /ready): an istiod pod
// turns Ready when pilot-discovery answers /ready, not when kwok schedules it, so a rollout of
// istiod completes only once the new istiod serves, as in a cluster.
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import type { Cluster } from "./cluster";
import { cachedBinDir, freePort, sleep } from "./cluster";

export { freePort };
import { KubeWatch, secretFiles, writeVolumeAtomically } from "./kubelet";

/** Where toolchain/istio.sh puts pilot-discovery, pilot-agent, istioctl, grpc-xds-client. */
export function findIstioBinDir(): string {
    return cachedBinDir("ISTIO_CA_ISTIO_BIN_DIR", "ISTIO_MODULE_VERSION", "istio");
}

/** The environment a process started by the rig gets: nothing of the test's (no PULUMI_*, no KUBERNETES_SERVICE_HOST). */
export function rigEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
    return { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", ...extra };
}

/** Stops a process group: SIGTERM, then SIGKILL after graceMs. */
export async function stopProcess(child: ChildProcess | undefined, graceMs = 5000): Promise<void> {
    if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    try {
        process.kill(-child.pid, "SIGTERM");
    } catch {
        return;
    }
    const timer = setTimeout(() => {
        try {
            process.kill(-child.pid!, "SIGKILL");
        } catch {
            /* gone */
        }
    }, graceMs);
    await exited;
    clearTimeout(timer);
}

/** utime + stime of a live process, in seconds (0 when it is gone). Linux /proc. */
export function processCpuSeconds(pid: number | undefined): number {
    if (pid === undefined) return 0;
    try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        return (Number(fields[11]) + Number(fields[12])) / 100; // clock ticks: USER_HZ is 100 on Linux
    } catch {
        return 0;
    }
}

/** Kills process groups when the test process exits without stopping the rig. */
export const orphans = new Set<number>();
process.on("exit", () => {
    for (const pgid of orphans) {
        try {
            process.kill(-pgid, "SIGKILL");
        } catch {
            /* gone */
        }
    }
});

interface PodView {
    metadata: { name: string; uid: string; creationTimestamp: string; deletionTimestamp?: string; annotations?: Record<string, string> };
    spec: { containers: { name: string; image: string; env?: { name: string; value?: string }[] }[] };
}

/**
 * On the istiod pod template once the supervisor runs: kwok then leaves the pod's readiness to the
 * supervisor (tests/harness/kwok-stages.yaml), and the supervisor runs istiod only for such pods.
 */
export const READINESS_ANNOTATION = "istio-ca.test/readiness";

/** Opens the log section of each pilot-discovery process. */
const START_MARK = "=== istiod start";

function refusalLines(log: string): string[] {
    return log.split("\n").filter((l) => /Failed to update new Plug-in CA certs|Multi root is disabled|Updating new ROOT-CA not supported|failed to create (an )?istiod? CA|unable to determine signing file format|Failed generating plugged-in istiod key cert/.test(l));
}

export interface RealIstiodOptions {
    binDir?: string;
    istioNamespace?: string;
    /** The kubelet's delay between a change of cacerts and the files in a running istiod (default 0). */
    secretSyncDelayMs?: number;
    /** istiod's CLUSTER_ID (multicluster: one per cluster). */
    clusterId?: string;
    /** istiod's credentials (default: the cluster's admin kubeconfig). */
    kubeconfig?: string;
    log?: (line: string) => void;
}

export class RealIstiod {
    readonly dir: string;
    readonly certDir: string;
    readonly logFile: string;
    /** 127.0.0.1:<port> of istiod's mTLS xDS/CA port (15012 in a cluster). */
    xdsAddress = "";
    /** How many times pilot-discovery was started (one per istiod pod). */
    starts = 0;
    /** Exits nobody asked for, with the end of istiod's log. */
    readonly crashes: string[] = [];
    private ports: Record<"http" | "grpc" | "secureGrpc" | "monitoring" | "https", number> | undefined;
    private proc: ChildProcess | undefined;
    private runningPod: string | undefined;
    private readonly pods = new Map<string, PodView>();
    private deployments: string[] = [];
    private cacerts: Record<string, string> | undefined;
    private watches: { stop(): Promise<void> }[] = [];
    private queue: Promise<void> = Promise.resolve();
    /** The readiness probe of the newest istiod process. */
    private probing: Promise<void> = Promise.resolve();
    private stopped = false;
    private paused = false;
    /** CPU time of the istiod processes that ended. */
    private endedCpuSeconds = 0;
    private readonly ns: string;

    constructor(private readonly cluster: Cluster, private readonly opts: RealIstiodOptions = {}) {
        this.ns = opts.istioNamespace ?? "istio-system";
        this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "istiod-"));
        this.certDir = path.join(this.dir, "cacerts");
        this.logFile = path.join(this.dir, "istiod.log");
        fs.mkdirSync(this.certDir);
    }

    get binDir(): string {
        return this.opts.binDir ?? findIstioBinDir();
    }

    /**
     * Takes over the istiod Deployment's pods (one rollout onto pods whose readiness it probes),
     * follows them and cacerts; resolves once istiod serves and the rollout is complete.
     */
    async start(): Promise<void> {
        const [http, grpc, secureGrpc, monitoring, https] = await Promise.all(Array.from({ length: 5 }, freePort));
        this.ports = { http, grpc, secureGrpc, monitoring, https };
        this.xdsAddress = `127.0.0.1:${secureGrpc}`;
        await this.superviseIstiodPods();
        this.watches.push(new KubeWatch<{ data?: Record<string, string> }>(this.cluster,
            ["secrets", "-n", this.ns, "--field-selector", "metadata.name=cacerts"], (ev) => this.onCacerts(ev.type === "DELETED" ? undefined : secretFiles(ev.object.data))));
        this.watches.push(new KubeWatch<PodView>(this.cluster, ["pods", "-n", this.ns, "-l", "app=istiod"], (ev) => {
            if (ev.object.metadata.annotations?.[READINESS_ANNOTATION] === undefined) return; // kwok's, from before start()
            if (ev.type === "DELETED") this.pods.delete(ev.object.metadata.uid);
            else this.pods.set(ev.object.metadata.uid, ev.object);
            this.enqueue(() => this.reconcile());
        }));
        await this.waitReady();
        for (const deployment of this.deployments) {
            await this.cluster.kubectl(["rollout", "status", deployment, "-n", this.ns, "--timeout=120s"]);
        }
    }

    /** Puts READINESS_ANNOTATION on the pod template of every istiod Deployment. */
    private async superviseIstiodPods(): Promise<void> {
        const names = (await this.cluster.kubectl(["get", "deployments", "-n", this.ns, "-l", "app=istiod", "-o", "name"])).stdout;
        this.deployments = names.split("\n").filter((n) => n !== "");
        const patch = { spec: { template: { metadata: { annotations: { [READINESS_ANNOTATION]: "GET /ready, probed by tests/harness/istiod.ts" } } } } };
        for (const deployment of this.deployments) {
            await this.cluster.kubectl(["patch", deployment, "-n", this.ns, "--type=merge", "-p", JSON.stringify(patch)]);
        }
    }

    private enqueue(work: () => Promise<void>): void {
        this.queue = this.queue.then(work).catch((e) => this.opts.log?.(`istiod supervisor: ${String(e)}`));
    }

    private onCacerts(files: Record<string, string> | undefined): void {
        this.cacerts = files;
        const delay = this.opts.secretSyncDelayMs ?? 0;
        // Like the kubelet, the sync writes what the Secret holds when it runs, not what it held then.
        setTimeout(() => this.enqueue(async () => this.mount()), delay).unref();
    }

    private mount(): void {
        if (!this.stopped) writeVolumeAtomically(this.certDir, this.cacerts ?? {});
    }

    /** The pod istiod runs as: the newest one not being deleted. */
    private currentPod(): PodView | undefined {
        return [...this.pods.values()]
            .filter((p) => !p.metadata.deletionTimestamp)
            .sort((a, b) => b.metadata.creationTimestamp.localeCompare(a.metadata.creationTimestamp))[0];
    }

    private async reconcile(): Promise<void> {
        const pod = this.paused ? undefined : this.currentPod();
        if (this.stopped || pod?.metadata.uid === this.runningPod) return;
        const old = this.proc;
        this.proc = undefined; // its exit is asked for, not a crash
        this.endedCpuSeconds += processCpuSeconds(old?.pid);
        await stopProcess(old);
        this.runningPod = pod?.metadata.uid;
        if (pod) {
            // Like the kubelet, a new pod's volume holds the Secret as the API server has it when the
            // pod starts, not what this supervisor's own watch of it has delivered so far (the pod
            // watch and the Secret watch are separate streams: a restart right after a change of
            // cacerts could otherwise start istiod on the old content).
            this.cacerts = await this.readCacerts();
            const child = this.launch(pod);
            this.probing = this.probeReadiness(pod, child);
        }
    }

    /** The kubelet's readiness probe: the pod turns Ready once this istiod process answers /ready. */
    private async probeReadiness(pod: PodView, child: ChildProcess): Promise<void> {
        // pause() and stop() change these first, then wait for this probe: their word comes last.
        const current = (): boolean => this.proc === child && !this.stopped && !this.paused;
        while (current()) {
            if (await this.serves()) {
                if (current()) await this.setPodReady(pod, true);
                return;
            }
            await sleep(200);
        }
    }

    /** Writes the pod's status as the kubelet would after a probe (kwok leaves these pods alone). */
    private async setPodReady(pod: PodView, ready: boolean): Promise<void> {
        const now = new Date().toISOString();
        const status = ready ? "True" : "False";
        const patch = {
            status: {
                phase: "Running",
                conditions: [
                    { type: "PodScheduled", status: "True", lastTransitionTime: now },
                    { type: "Initialized", status: "True", lastTransitionTime: now },
                    { type: "ContainersReady", status, lastTransitionTime: now },
                    { type: "Ready", status, lastTransitionTime: now },
                ],
                containerStatuses: pod.spec.containers.map((c) => ({
                    name: c.name, image: c.image, ready, started: true, restartCount: 0, state: { running: { startedAt: now } },
                })),
            },
        };
        const args = ["patch", "pod", pod.metadata.name, "-n", this.ns, "--subresource=status", "--type=merge", "-p", JSON.stringify(patch)];
        for (let attempt = 1; ; attempt++) {
            const r = await this.cluster.kubectl(args, { allowFailure: true });
            if (r.code === 0 || /NotFound|not found/.test(r.stderr)) return; // a pod deleted meanwhile has no status to write
            if (attempt === 3) {
                this.opts.log?.(`istiod supervisor: could not write pod ${pod.metadata.name} Ready=${status}: ${r.stderr.trim()}`);
                return;
            }
            await sleep(500);
        }
    }

    private async readCacerts(): Promise<Record<string, string> | undefined> {
        const out = (await this.cluster.kubectl(["get", "secret", "cacerts", "-n", this.ns, "--ignore-not-found", "-o", "json"])).stdout;
        return out.trim() === "" ? undefined : secretFiles((JSON.parse(out) as { data?: Record<string, string> }).data);
    }

    private launch(pod: PodView): ChildProcess {
        this.mount(); // a new pod mounts the Secret as it is now
        const container = pod.spec.containers.find((c) => c.name === "discovery") ?? pod.spec.containers[0];
        const podEnv = Object.fromEntries((container?.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
        const p = this.ports!;
        const out = fs.openSync(this.logFile, "a");
        fs.writeSync(out, `\n${START_MARK} ${++this.starts} as pod ${pod.metadata.name} ${new Date().toISOString()} ===\n`);
        const child = spawn(path.join(this.binDir, "pilot-discovery"), [
            "discovery", `--kubeconfig=${this.opts.kubeconfig ?? this.cluster.kubeconfig}`,
            `--httpAddr=127.0.0.1:${p.http}`, `--grpcAddr=127.0.0.1:${p.grpc}`, `--secureGRPCAddr=127.0.0.1:${p.secureGrpc}`,
            `--monitoringAddr=127.0.0.1:${p.monitoring}`, `--httpsAddr=127.0.0.1:${p.https}`, "--ctrlz_port=0",
        ], {
            cwd: this.dir,
            detached: true,
            stdio: ["ignore", out, out],
            env: rigEnv({
                POD_NAME: pod.metadata.name,
                POD_NAMESPACE: this.ns,
                ROOT_CA_DIR: this.certDir,
                CLUSTER_ID: this.opts.clusterId ?? "Kubernetes",
                ...podEnv,
            }),
        });
        fs.closeSync(out);
        this.proc = child;
        orphans.add(child.pid!);
        child.on("exit", (code, signal) => {
            orphans.delete(child.pid!);
            if (this.proc === child && !this.stopped) {
                this.crashes.push(`istiod exited (${signal ?? code}):\n${this.logTail(25)}`);
                this.proc = undefined;
            }
        });
        this.opts.log?.(`istiod: started as pod ${pod.metadata.name} (xDS ${this.xdsAddress})`);
        return child;
    }

    /**
     * istiod goes down and stays down (as when it crash-loops or its node is lost) until resume():
     * nothing publishes istio-ca-root-cert or signs certificates meanwhile, its pod is not Ready and
     * a new istiod pod does not turn Ready (a rollout of istiod does not complete).
     */
    async pause(): Promise<void> {
        const pod = this.currentPod();
        this.paused = true;
        this.enqueue(() => this.reconcile());
        await this.queue;
        await this.probing;
        if (pod) await this.setPodReady(pod, false);
    }

    async resume(): Promise<void> {
        this.paused = false;
        this.enqueue(() => this.reconcile());
        await this.waitReady();
    }

    /** Resolves when istiod answers /ready (rejects with istiod's own words when it exits or times out). */
    async waitReady(timeoutMs = 60_000): Promise<void> {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
            await this.queue;
            this.assertHealthy();
            if (this.proc && (await this.serves())) return;
            if (Date.now() > deadline) throw new Error(`istiod not ready after ${timeoutMs / 1000}s:\n${this.logTail(25)}`);
            await sleep(200);
        }
    }

    /** Whether istiod answers GET /ready with 200 now (its readiness probe). */
    serves(): Promise<boolean> {
        return new Promise((resolve) => {
            const req = http.get({ host: "127.0.0.1", port: this.ports!.http, path: "/ready", timeout: 1000 }, (res) => {
                res.resume();
                resolve(res.statusCode === 200);
            });
            req.on("error", () => resolve(false));
            req.on("timeout", () => req.destroy());
        });
    }

    /** Lines of istiod's log where it refused plug-in CA material (at start or on a reload: pilot/pkg/bootstrap/istio_ca.go). */
    refusals(): string[] {
        return refusalLines(this.log());
    }

    /**
     * The refusals of the istiod process running now. A process the program replaced may have
     * refused a new root between the Secret update and restart-istiod (the kubelet synced first):
     * istiod's hot reload cannot take a root change, which is why the program restarts it.
     */
    currentRefusals(): string[] {
        const log = this.log();
        return refusalLines(log.slice(Math.max(0, log.lastIndexOf(START_MARK))));
    }

    /** CPU seconds (user + system) istiod used so far, over every process it ran as. */
    cpuSeconds(): number {
        return this.endedCpuSeconds + processCpuSeconds(this.proc?.pid);
    }

    /** CPU seconds of the istiod processes that were stopped (a parent that reaped them counts them as its children's). */
    exitedCpuSeconds(): number {
        return this.endedCpuSeconds;
    }

    /** Throws with istiod's own last words when it exited by itself. */
    assertHealthy(): void {
        if (this.crashes.length > 0) throw new Error(this.crashes.join("\n"));
    }

    log(): string {
        try {
            return fs.readFileSync(this.logFile, "utf8");
        } catch {
            return "";
        }
    }

    logTail(lines: number): string {
        return this.log().split("\n").slice(-lines).join("\n");
    }

    /** Waits until istiod's log, from character `from` on, matches `re`. */
    async waitForLog(re: RegExp, from = 0, timeoutMs = 60_000): Promise<string> {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
            const m = re.exec(this.log().slice(from));
            if (m) return m[0];
            this.assertHealthy();
            if (Date.now() > deadline) throw new Error(`istiod's log shows no ${re} after ${timeoutMs / 1000}s:\n${this.logTail(25)}`);
            await sleep(200);
        }
    }

    async stop(): Promise<void> {
        this.stopped = true;
        await Promise.all(this.watches.map((w) => w.stop()));
        await this.queue;
        const old = this.proc;
        this.proc = undefined;
        this.endedCpuSeconds += processCpuSeconds(old?.pid);
        await stopProcess(old);
        await this.probing;
        fs.rmSync(this.dir, { recursive: true, force: true });
    }
}
