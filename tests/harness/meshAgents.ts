// The workloads' side of real Istio in the local cluster. For each running pod with an
// `istio-proxy` container (seedMesh writes them as if injected), this runs a real pilot-agent as
// its sidecar in Istio's `grpc-agent` mode (no Envoy: none can run here): it authenticates to
// istiod's CA with a real ServiceAccount token (audience istio-ca), gets the workload certificate
// istiod signs, and keeps it in OUTPUT_CERTS. Beside it runs the pod's "application", a proxyless
// gRPC client (grpc-xds-client) that opens the xDS stream through the agent, so the pod shows in
// `istioctl proxy-status`. A replaced pod gets a new agent (a new certificate), as in a cluster.
// The pod's istio-ca-root-cert mount is kept in sync like the kubelet does (optionally delayed).
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Cluster } from "./cluster";
import { findIstioBinDir, freePort, orphans, processCpuSeconds, rigEnv, stopProcess } from "./istiod";
import { KubeWatch, writeVolumeAtomically } from "./kubelet";

interface PodView {
    metadata: { name: string; namespace: string; uid: string; deletionTimestamp?: string; labels?: Record<string, string> };
    spec: { serviceAccountName?: string; containers: { name: string; env?: { name: string; value?: string }[] }[] };
    status?: { phase?: string; podIP?: string };
}

export interface WorkloadCertificate {
    /** `pod.namespace`, as istioctl names the proxy. */
    proxy: string;
    namespace: string;
    pod: string;
    /** The agent's OUTPUT_CERTS: leaf first, then the CA chain. */
    certChainPem: string;
    keyPem: string;
    /** The trust bundle the agent got with its certificate. */
    rootCertPem: string;
}

export interface MeshAgentsOptions {
    binDir?: string;
    /** istiod's xDS/CA address (RealIstiod.xdsAddress). */
    discoveryAddress: () => string;
    istioNamespace?: string;
    clusterId?: string;
    /** Proxy metadata the mesh config gives every sidecar (the injector puts it in the container env). */
    proxyMetadata?: Record<string, string>;
    /** The kubelet's delay between a change of istio-ca-root-cert and the pod's mounted file (default 0). */
    configMapSyncDelayMs?: number;
    /** At most this many agents per namespace (a sample at bench scale; default: every pod). */
    maxPerNamespace?: number;
    log?: (line: string) => void;
}

interface Agent {
    pod: PodView;
    dir: string;
    procs: ChildProcess[];
}

let agentCounter = 0;

export class MeshAgents {
    readonly dir: string;
    private readonly agents = new Map<string, Agent>();
    private readonly starting = new Set<string>();
    private readonly pods = new Map<string, PodView>();
    private readonly rootCerts = new Map<string, string>();
    private watches: { stop(): Promise<void> }[] = [];
    private stopped = false;
    private paused = false;
    /** CPU time of the agents and apps that ended. */
    private endedCpuSeconds = 0;

    constructor(private readonly cluster: Cluster, private readonly opts: MeshAgentsOptions) {
        // Short: unix socket paths (the agent's XDS and SDS sockets live below it) must stay under 108 bytes.
        this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "mesh-"));
    }

    private get binDir(): string {
        return this.opts.binDir ?? findIstioBinDir();
    }

    start(): void {
        this.watches.push(new KubeWatch<{ metadata: { namespace: string }; data?: Record<string, string> }>(this.cluster,
            ["configmaps", "-A", "--field-selector", "metadata.name=istio-ca-root-cert"], (ev) => {
                const ns = ev.object.metadata.namespace;
                const pem = ev.type === "DELETED" ? undefined : ev.object.data?.["root-cert.pem"];
                setTimeout(() => this.onRootCert(ns, pem), this.opts.configMapSyncDelayMs ?? 0).unref();
            }));
        this.watches.push(new KubeWatch<PodView>(this.cluster, ["pods", "-A"], (ev) => {
            if (ev.type === "DELETED") this.pods.delete(ev.object.metadata.uid);
            else this.pods.set(ev.object.metadata.uid, ev.object);
            this.reconcile();
        }));
    }

    private onRootCert(ns: string, pem: string | undefined): void {
        if (pem === undefined) this.rootCerts.delete(ns);
        else this.rootCerts.set(ns, pem);
        for (const agent of this.agents.values()) {
            if (agent.pod.metadata.namespace === ns && pem !== undefined) writeVolumeAtomically(this.rootMount(agent.dir), { "root-cert.pem": pem });
        }
        this.reconcile();
    }

    private rootMount(dir: string): string {
        return path.join(dir, "var", "run", "secrets", "istio");
    }

    private wanted(): PodView[] {
        const perNs = new Map<string, number>();
        return [...this.pods.values()]
            .filter((p) => p.spec.containers.some((c) => c.name === "istio-proxy") && p.status?.phase === "Running" && !p.metadata.deletionTimestamp)
            .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))
            .filter((p) => {
                const n = (perNs.get(p.metadata.namespace) ?? 0) + 1;
                perNs.set(p.metadata.namespace, n);
                return n <= (this.opts.maxPerNamespace ?? Infinity);
            });
    }

    private reconcile(): void {
        if (this.stopped) return;
        const wanted = new Map(this.wanted().map((p) => [p.metadata.uid, p]));
        for (const [uid, agent] of this.agents) {
            if (!wanted.has(uid)) {
                this.agents.delete(uid);
                void this.retire(agent);
            }
        }
        for (const [uid, pod] of wanted) {
            if (!this.paused && !this.agents.has(uid) && !this.starting.has(uid) && this.rootCerts.has(pod.metadata.namespace)) {
                this.starting.add(uid);
                this.launch(pod)
                    .then((agent) => {
                        if (this.stopped || !this.pods.has(uid)) void this.retire(agent);
                        else this.agents.set(uid, agent);
                    })
                    .catch((e) => this.opts.log?.(`agent for ${pod.metadata.name}.${pod.metadata.namespace}: ${String(e)}`))
                    .finally(() => {
                        this.starting.delete(uid);
                        this.reconcile();
                    });
            }
        }
    }

    private async launch(pod: PodView): Promise<Agent> {
        const { name, namespace } = pod.metadata;
        const sa = pod.spec.serviceAccountName ?? "default";
        const dir = path.join(this.dir, `a${++agentCounter}`);
        fs.mkdirSync(path.join(dir, "var", "run", "secrets", "tokens"), { recursive: true });
        fs.mkdirSync(path.join(dir, "certs"));
        const token = (await this.cluster.kubectl(["create", "token", sa, "-n", namespace, "--audience", "istio-ca", "--duration", "24h"])).stdout.trim();
        fs.writeFileSync(path.join(dir, "var", "run", "secrets", "tokens", "istio-token"), token, { mode: 0o600 });
        writeVolumeAtomically(this.rootMount(dir), { "root-cert.pem": this.rootCerts.get(namespace)! });
        const statusPort = await freePort();
        const sidecar = pod.spec.containers.find((c) => c.name === "istio-proxy");
        const containerEnv = Object.fromEntries((sidecar?.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
        const agent = this.spawnLogged(dir, "agent", path.join(this.binDir, "pilot-agent"), ["proxy", "sidecar", "--domain", `${namespace}.svc.cluster.local`], {
            POD_NAME: name,
            POD_NAMESPACE: namespace,
            SERVICE_ACCOUNT: sa,
            INSTANCE_IP: pod.status?.podIP ?? "127.0.0.1",
            ISTIO_META_CLUSTER_ID: this.opts.clusterId ?? "Kubernetes",
            ISTIOD_SAN: `istiod.${this.opts.istioNamespace ?? "istio-system"}.svc`,
            DISABLE_ENVOY: "true",
            ISTIO_META_GENERATOR: "grpc",
            GRPC_XDS_BOOTSTRAP: "./etc/istio/proxy/grpc-bootstrap.json",
            OUTPUT_CERTS: path.join(dir, "certs"),
            JWT_POLICY: "third-party-jwt",
            PILOT_CERT_PROVIDER: "istiod",
            PROXY_CONFIG: JSON.stringify({ discoveryAddress: this.opts.discoveryAddress(), statusPort }),
            ...this.opts.proxyMetadata,
            ...containerEnv,
        });
        const app = pod.metadata.labels?.app ?? name;
        const client = this.spawnLogged(dir, "app", path.join(this.binDir, "grpc-xds-client"), ["-agent-dir", dir, "-target", `${app}.${namespace}.svc.cluster.local:8080`], {});
        return { pod, dir, procs: [agent, client] };
    }

    private spawnLogged(dir: string, what: string, binary: string, args: string[], env: Record<string, string>): ChildProcess {
        const out = fs.openSync(path.join(dir, `${what}.log`), "a");
        const child = spawn(binary, args, { cwd: dir, detached: true, stdio: ["ignore", out, out], env: rigEnv(env) });
        fs.closeSync(out);
        orphans.add(child.pid!);
        child.on("exit", () => orphans.delete(child.pid!));
        return child;
    }

    private async retire(agent: Agent): Promise<void> {
        this.endedCpuSeconds += agent.procs.reduce((sum, p) => sum + processCpuSeconds(p.pid), 0);
        await Promise.all(agent.procs.map((p) => stopProcess(p, 2000)));
    }

    /** CPU seconds (user + system) of every agent and app so far. */
    cpuSeconds(): number {
        let live = 0;
        for (const a of this.agents.values()) live += a.procs.reduce((sum, p) => sum + processCpuSeconds(p.pid), 0);
        return this.endedCpuSeconds + live;
    }

    /**
     * New pods get no sidecar until resume() (as when the sidecar cannot start: its image cannot be
     * pulled, its token not mounted): they never connect to istiod. Running agents keep running.
     */
    pause(): void {
        this.paused = true;
    }

    resume(): void {
        this.paused = false;
        this.reconcile();
    }

    /** The certificate each live agent holds now (agents that have none yet are left out). */
    certificates(): WorkloadCertificate[] {
        const out: WorkloadCertificate[] = [];
        for (const a of this.agents.values()) {
            const read = (f: string): string | undefined => {
                try {
                    return fs.readFileSync(path.join(a.dir, "certs", f), "utf8");
                } catch {
                    return undefined;
                }
            };
            const certChainPem = read("cert-chain.pem");
            const keyPem = read("key.pem");
            const rootCertPem = read("root-cert.pem");
            if (certChainPem && keyPem && rootCertPem) {
                const { name, namespace } = a.pod.metadata;
                out.push({ proxy: `${name}.${namespace}`, namespace, pod: name, certChainPem, keyPem, rootCertPem });
            }
        }
        return out.sort((x, y) => x.proxy.localeCompare(y.proxy));
    }

    /** The end of one agent's log (for failure messages). */
    agentLog(proxy: string, lines = 20): string {
        const a = [...this.agents.values()].find((x) => `${x.pod.metadata.name}.${x.pod.metadata.namespace}` === proxy);
        if (!a) return "(no such agent)";
        try {
            return fs.readFileSync(path.join(a.dir, "agent.log"), "utf8").split("\n").slice(-lines).join("\n");
        } catch {
            return "(no log)";
        }
    }

    async stop(): Promise<void> {
        this.stopped = true;
        await Promise.all(this.watches.map((w) => w.stop()));
        await Promise.all([...this.agents.values()].map((a) => this.retire(a)));
        this.agents.clear();
        fs.rmSync(this.dir, { recursive: true, force: true });
    }
}
