// `npm run bench [-- --sizes 10,50,200 --deployments 5 --delay-ms 2000 --jitter-ms 1000 --concurrency 10 --skip-manual --out FILE]`
//   simulation settings: `--control-plane-qps 5000 --controller-syncs 20 --gogc 400 --kwok-parallelism 16` (0: the component's default)
//
// Rotation at mesh scale: on the local control plane (tests/harness/cluster.ts), with kwok making
// pods Ready after --delay-ms + uniform [0, --jitter-ms] so that a rollout takes real time, for
// each mesh size N (Istio-enabled namespaces × --deployments Deployments of 1 replica, plus
// istio-system/istiod), on ONE cluster per size, with real istiod (tests/harness/istiod.ts:
// pilot-discovery run for the istiod pod, restarted when the pod is replaced, `cacerts` mounted
// into it) from the seeding on: it writes istio-ca-root-cert into every namespace (first from its
// own self-signed CA, then from the program's `cacerts`). Each part starts with istiod ready and
// its bundle in every mesh namespace. Side by side:
//
//   limit   the physical limit: one istiod rollout + the slowest single workload rollout, everything
//           else in parallel (computed from the configured delay and the per-rollout control-plane
//           overhead measured by restarting single Deployments alone);
//   (a)     the seed's procedure (../shared/seed/replacing-istio-ca-certificate.txt), scripted with
//           kubectl processes: restart istio-system (and wait for istiod), check istio-ca-root-cert
//           in each mesh namespace, `kubectl rollout restart deployment -n <ns>` for each namespace
//           in turn, then `kubectl rollout status` for each Deployment in turn (its final `istioctl
//           proxy-status` is left out, as (b)'s proxy check is: no Envoy runs here);
//   (c)     a direct-API floor: what this cluster (2 cores) can do at best: istiod restarted and
//           waited for, then every Deployment patched at once from one process (50 requests in
//           flight), one watch until all are rolled out. No program does this; it shows how much of
//           (b) is the cluster's own throughput;
//   (b)     this program: `pulumi up` (real engine, real providers) after a keyVersion bump; its
//           restart+verify part is the step commands' chain (engine events), and their own elapsedMs.
//           Its wait-root-cert is satisfied by real istiod's ConfigMaps; afterwards the bench checks
//           that the istiod now running started on `cacerts` ("Use local CA certificate") and that
//           every mesh namespace holds the root of `cacerts`.
//
// API requests are counted twice: the API server's apiserver_request_total (every client,
// controllers included) and an audit log (Metadata level) split by user and user agent, so the
// client's own requests are separated from the controllers' and from istiod's. For that the
// bench starts the harness's binaries through small wrappers (a private bin dir): kube-apiserver
// gets an audit policy and two extra static tokens (users `istio-ca` for the stack, `istiod` for
// pilot-discovery and its supervisor's watches). The control plane runs with the simulation
// settings of `simulationSettings` (client rate limits, controller workers, Go GC, kwok workers): how
// fast this machine plays it, not what it does. CPU seconds of every component, of istiod and of the
// tools (this process and everything else it ran) are read from /proc for each part: on 2 shared
// cores the floor is the control plane's CPU.
import * as automation from "@pulumi/pulumi/automation";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as https from "node:https";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { mapLimit, sleep } from "../kube/concurrency";
import { spawnCounter } from "../kube/kubectl";
import { DeploymentLike, deploymentRolloutStatus, summarizeRollouts } from "../steps/rolloutStatus";
import { Cluster, ClusterOptions, findBinDir, startCluster } from "../tests/harness/cluster";
import { orphans, RealIstiod } from "../tests/harness/istiod";
import { createTestStack, PROJECT_ROOT, TestStack } from "../tests/support/engine";
import { inlineProgram } from "../cli/ca";

// ---------------------------------------------------------------------------------------------
// Options

interface Options {
    sizes: number[];
    deployments: number;
    delayMs: number;
    jitterMs: number;
    concurrency: number;
    /** kube-controller-manager / kube-scheduler client QPS (0: the components' defaults). */
    controlPlaneQps: number;
    /** --concurrent-deployment-syncs / --concurrent-replicaset-syncs (0: defaults, 5). */
    controllerSyncs: number;
    /** GOGC of the control-plane components (0: Go's default, 100). */
    gogc: number;
    /** kwok's podPlayStageParallelism (0: kwok's default, 4). */
    kwokParallelism: number;
    /** Skip (a) (it is the slow part). */
    skipManual: boolean;
    out?: string;
}

function parseOptions(argv: string[]): Options {
    const text = { type: "string" } as const;
    const { values } = parseArgs({
        args: argv,
        options: {
            "sizes": text, "deployments": text, "delay-ms": text, "jitter-ms": text, "concurrency": text, "control-plane-qps": text,
            "controller-syncs": text, "gogc": text, "kwok-parallelism": text, "out": text, "skip-manual": { type: "boolean" },
        },
    });
    const num = (name: string, v: string): number => {
        const n = Number(v);
        if (v.trim() === "" || !Number.isFinite(n) || n < 0) throw new Error(`--${name} needs a non-negative number, got ${JSON.stringify(v)}`);
        return n;
    };
    type NumberOption = "deployments" | "delay-ms" | "jitter-ms" | "concurrency" | "control-plane-qps" | "controller-syncs" | "gogc" | "kwok-parallelism";
    const given = (name: NumberOption, def: number): number => {
        const v = values[name];
        return v === undefined ? def : num(name, v);
    };
    const sizes = values.sizes !== undefined ? values.sizes.split(",").map((s) => num("sizes", s.trim())).filter((n) => n > 0) : [10, 50, 200];
    const o: Options = {
        sizes, deployments: given("deployments", 5), delayMs: given("delay-ms", 2000), jitterMs: given("jitter-ms", 1000),
        concurrency: given("concurrency", 10), controlPlaneQps: given("control-plane-qps", 5000), controllerSyncs: given("controller-syncs", 20),
        gogc: given("gogc", 400), kwokParallelism: given("kwok-parallelism", 16), skipManual: values["skip-manual"] === true,
        ...(values.out !== undefined ? { out: values.out } : {}),
    };
    if (o.sizes.length === 0 || o.deployments < 1 || o.concurrency < 1) throw new Error("--sizes, --deployments, --concurrency must be positive");
    return o;
}

// ---------------------------------------------------------------------------------------------
// Progress and results

const T0 = Date.now();
const logLines: string[] = [];
function progress(line: string): void {
    const l = `[bench +${((Date.now() - T0) / 1000).toFixed(1)}s] ${line}`;
    logLines.push(l);
    process.stderr.write(l + "\n");
}
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

// ---------------------------------------------------------------------------------------------
// Instrumented binaries: a private bin dir of symlinks and wrappers (see the module comment).

const USERS = { istioCa: "istio-ca", istiod: "istiod" } as const;

interface Instrumentation {
    binDir: string;
    tokens: Record<keyof typeof USERS, string>;
}

function instrumentedBinDir(opts: Options, work: string): Instrumentation {
    const real = findBinDir();
    const binDir = path.join(work, "bin");
    fs.mkdirSync(binDir, { recursive: true });
    const tokens = { istioCa: crypto.randomBytes(24).toString("hex"), istiod: crypto.randomBytes(24).toString("hex") };
    const policy = path.join(work, "audit-policy.yaml");
    fs.writeFileSync(policy, [
        "apiVersion: audit.k8s.io/v1",
        "kind: Policy",
        "omitStages: [RequestReceived, ResponseStarted]",
        "rules:",
        "- level: Metadata",
        "",
    ].join("\n"));
    const tokenLines = Object.entries(USERS).map(([k, user]) => `${tokens[k as keyof typeof USERS]},${user},uid-${user},"system:masters"`).join("\\n");
    const wrappers: Record<string, string> = {
        // Static tokens are read once at start: append ours to the harness's file, then exec.
        "kube-apiserver": [
            "#!/bin/sh",
            'for a in "$@"; do case "$a" in --token-auth-file=*) f="${a#--token-auth-file=}";; esac; done',
            `[ -n "$f" ] && printf '${tokenLines}\\n' >> "$f"`,
            `exec ${real}/kube-apiserver "$@" --audit-policy-file=${policy} --audit-log-path=audit.log --audit-log-maxsize=0 --audit-log-mode=batch --audit-log-batch-max-wait=1s`,
        ].join("\n"),
    };
    for (const b of ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "kubectl"]) {
        const p = path.join(binDir, b);
        fs.rmSync(p, { force: true });
        if (wrappers[b]) fs.writeFileSync(p, wrappers[b] + "\n", { mode: 0o755 });
        else fs.symlinkSync(path.join(real, b), p);
    }
    return { binDir, tokens };
}

/**
 * The simulation settings of the bench's control plane (startCluster options). One 2-core machine
 * plays a whole control plane (and 1,000 kubelets); these settings change how fast it plays it, not
 * what it does: the same objects, the same requests, the same rollouts. Each one's effect on the
 * direct-API floor at N = 200 is in bench/results-2026-11-25b.md ("Simulation settings").
 */
function simulationSettings(opts: Options): Pick<ClusterOptions, "componentArgs" | "componentEnv" | "kwokOptions"> {
    const componentArgs: NonNullable<ClusterOptions["componentArgs"]> = {};
    if (opts.controlPlaneQps > 0) {
        // Client-side rate limits of the controllers and the scheduler (defaults 20 and 50 requests/s
        // would make a 1,000-Deployment rollout take minutes whoever triggers it): kwokctl's
        // --disable-qps-limits values. A real control plane at this scale raises them too.
        const limits = [`--kube-api-qps=${opts.controlPlaneQps}`, `--kube-api-burst=${opts.controlPlaneQps * 2}`];
        componentArgs["kube-controller-manager"] = [...limits];
        componentArgs["kube-scheduler"] = [...limits];
    }
    if (opts.controllerSyncs > 0) {
        // Deployments and ReplicaSets synced at once (default 5 each).
        (componentArgs["kube-controller-manager"] ??= []).push(
            `--concurrent-deployment-syncs=${opts.controllerSyncs}`, `--concurrent-replicaset-syncs=${opts.controllerSyncs}`);
    }
    const componentEnv: NonNullable<ClusterOptions["componentEnv"]> = {};
    if (opts.gogc > 0) {
        // Go's garbage collector was ~15 % of kube-apiserver's CPU (pprof): collect less often, with
        // more memory (this machine has plenty; a control-plane node would too).
        for (const c of ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"] as const) {
            componentEnv[c] = { GOGC: String(opts.gogc) };
        }
    }
    // kwok plays every kubelet: its workers making pods Ready or deleting them (default 4 for all
    // 1,000 pods) are a queue real kubelets, one per node, do not have.
    const kwokOptions = opts.kwokParallelism > 0 ? { podPlayStageParallelism: opts.kwokParallelism } : undefined;
    return { componentArgs, componentEnv, kwokOptions };
}

/** A copy of the cluster's admin kubeconfig with another user's token. */
function kubeconfigFor(cluster: Cluster, token: string, file: string): string {
    const text = fs.readFileSync(cluster.kubeconfig, "utf8").replace(`token: ${cluster.token}`, `token: ${token}`);
    fs.writeFileSync(file, text, { mode: 0o600 });
    return file;
}

// ---------------------------------------------------------------------------------------------
// Direct API access (measurement only: the limit, the floor, settling, metrics)

class Api {
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
async function waitRolledOut(api: Api, targets: string[], what: string, timeoutMs = 30 * 60_000): Promise<number> {
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
async function settle(api: Api, targets: string[], expectedPods: number): Promise<void> {
    await waitRolledOut(api, targets, "settling");
    const deadline = Date.now() + 5 * 60_000;
    for (;;) {
        const pods = await api.json<{ items: unknown[] }>("/api/v1/pods");
        if (pods.items.length <= expectedPods) return;
        if (Date.now() > deadline) throw new Error(`settling: ${pods.items.length} pods, expected ${expectedPods}`);
        await sleep(500);
    }
}

// ---------------------------------------------------------------------------------------------
// Audit log: requests per user and user agent, between two byte offsets

type Counts = Record<string, number>;

function auditSize(cluster: Cluster): number {
    try {
        return fs.statSync(path.join(cluster.dir, "audit.log")).size;
    } catch {
        return 0;
    }
}

/** The log's size once what completed so far is written (batch mode flushes at least every second). */
async function auditFlushed(cluster: Cluster): Promise<number> {
    await sleep(1500);
    return auditSize(cluster);
}

function auditCounts(cluster: Cluster, from: number, to: number): Counts {
    const counts: Counts = {};
    if (to <= from) return counts;
    const fd = fs.openSync(path.join(cluster.dir, "audit.log"), "r");
    const buf = Buffer.alloc(to - from);
    fs.readSync(fd, buf, 0, buf.length, from);
    fs.closeSync(fd);
    for (const line of buf.toString("utf8").split("\n")) {
        if (!line.trim()) continue;
        let ev: { user?: { username?: string }; userAgent?: string };
        try {
            ev = JSON.parse(line);
        } catch {
            continue;
        }
        const ua = (ev.userAgent ?? "").split(/[/ ]/)[0] || "-";
        const key = `${ev.user?.username ?? "?"} ${ua}`;
        counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
}

const sumWhere = (c: Counts, pred: (key: string) => boolean): number =>
    Object.entries(c).filter(([k]) => pred(k)).reduce((s, [, n]) => s + n, 0);

// ---------------------------------------------------------------------------------------------
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

interface Mesh {
    namespaces: string[];
    /** ns/name of every workload Deployment (not istiod). */
    workloads: string[];
    istiod: string;
    all: string[];
}

async function seed(cluster: Cluster, api: Api, n: number, perNs: number): Promise<Mesh> {
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

// ---------------------------------------------------------------------------------------------
// The physical limit: single rollouts, alone

/** Restart one Deployment and poll it (50 ms) until rolled out; the rollout's duration. */
async function singleRollout(api: Api, target: string): Promise<number> {
    const [ns, name] = target.split("/");
    const t0 = Date.now();
    await api.restart(ns, name);
    for (;;) {
        const d = await api.json<DeploymentLike>(`/apis/apps/v1/namespaces/${ns}/deployments/${name}`);
        if (deploymentRolloutStatus(d).done) return Date.now() - t0;
        await sleep(50);
    }
}

interface Limit {
    samplesMs: number[];
    overheadMs: number;
    limitMs: number;
}

/**
 * Istiod, then the slowest single workload, everything else in parallel. One rollout (replicas 1,
 * maxSurge 1) = control-plane overhead + the new pod's readiness delay (delay + uniform jitter).
 * istiod draws an average jitter, the slowest of many workloads the maximum:
 *   limit = 2 × (overhead + delay) + jitter/2 + jitter,
 * overhead = mean(measured single rollouts) − (delay + jitter/2).
 */
async function measureLimit(api: Api, mesh: Mesh, opts: Options): Promise<Limit> {
    const picks = [mesh.istiod, mesh.workloads[0], mesh.workloads[Math.floor(mesh.workloads.length / 2)], mesh.istiod, mesh.workloads[mesh.workloads.length - 1]];
    const samplesMs: number[] = [];
    for (const t of picks) {
        samplesMs.push(await singleRollout(api, t));
        await settle(api, mesh.all, mesh.all.length);
    }
    const mean = samplesMs.reduce((a, b) => a + b, 0) / samplesMs.length;
    const overheadMs = Math.max(0, mean - (opts.delayMs + opts.jitterMs / 2));
    const limitMs = 2 * (overheadMs + opts.delayMs) + opts.jitterMs / 2 + opts.jitterMs;
    return { samplesMs, overheadMs, limitMs };
}

// ---------------------------------------------------------------------------------------------
// (a) the manual procedure, kubectl processes in turn

interface PartResult {
    wallMs: number;
    processes: number;
    requestsTotal: number;
    audit: Counts;
    /** CPU seconds used during the part, by component (see cpuSeconds). */
    cpu: Record<string, number>;
    /** 1-minute load average before and after (other work on the machine shows here). */
    load: [number, number];
    extra?: Record<string, unknown>;
}

/** utime + stime (+ cutime + cstime: exited, waited-for descendants) of a process, in seconds. */
function processCpu(pid: number | "self", withChildren = false): number {
    try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
        // fields 14-17 of proc(5) (utime, stime, cutime, cstime) are 11-14 after the command name
        return (f[11] + f[12] + (withChildren ? f[13] + f[14] : 0)) / 100; // USER_HZ = 100 on Linux
    } catch {
        return 0;
    }
}

/** What a part runs against: the local control plane and the real istiod playing in it. */
interface Rig {
    cluster: Cluster;
    api: Api;
    istiod: RealIstiod;
}

/**
 * CPU seconds so far of each control-plane component, of istiod (every pilot-discovery it ran as),
 * and of "tools": this process and its exited children (the Pulumi CLI, providers, step commands,
 * every kubectl, istiod's supervisor watches). Exited istiods are reaped by this process, so their
 * CPU is taken out of "tools" (what they spent after their last /proc read stays there).
 */
function cpuSeconds({ cluster, istiod }: Rig): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [c, pid] of Object.entries(cluster.pids)) out[c] = processCpu(pid);
    out.istiod = istiod.cpuSeconds();
    out.tools = processCpu("self", true) - istiod.exitedCpuSeconds();
    return out;
}

async function measured(rig: Rig, fn: () => Promise<{ processes: number; extra?: Record<string, unknown> }>): Promise<PartResult> {
    const { cluster, api } = rig;
    const a0 = await auditFlushed(cluster);
    const m0 = await api.requestTotal();
    const c0 = cpuSeconds(rig);
    const l0 = os.loadavg()[0];
    const t0 = Date.now();
    const r = await fn();
    const wallMs = Date.now() - t0;
    const c1 = cpuSeconds(rig);
    rig.istiod.assertHealthy();
    const m1 = await api.requestTotal();
    const a1 = await auditFlushed(cluster);
    const cpu = Object.fromEntries(Object.keys(c1).map((k) => [k, Math.round((c1[k] - (c0[k] ?? 0)) * 10) / 10]));
    return { wallMs, processes: r.processes, requestsTotal: m1 - m0 - 1, audit: auditCounts(cluster, a0, a1), cpu, load: [l0, os.loadavg()[0]], extra: r.extra };
}

async function manualProcedure(cluster: Cluster, mesh: Mesh): Promise<{ processes: number }> {
    let processes = 0;
    const kubectl = async (args: string[]): Promise<string> => {
        processes++;
        return (await cluster.kubectl(args, { timeoutMs: 30 * 60_000 })).stdout;
    };
    await kubectl(["rollout", "restart", "deployment", "-n", "istio-system"]);
    await kubectl(["rollout", "status", "deployment/istiod", "-n", "istio-system", "--timeout=10m"]);
    progress("(a) istio-system restarted and rolled out");
    const namespaces = (await kubectl(["get", "namespaces", "-l", "istio-injection=enabled", "-o", "jsonpath={.items[*].metadata.name}"])).split(" ").filter(Boolean);
    // The seed's "check istio-ca-root-cert in all namespace" (it pipes each to `openssl x509 -text`
    // for a person to read): one kubectl per namespace; a missing bundle stops the procedure.
    for (const ns of namespaces) {
        const pem = await kubectl(["get", "cm", "istio-ca-root-cert", "-n", ns, "-o", "jsonpath={.data.root-cert\\.pem}"]);
        if (!pem.includes("BEGIN CERTIFICATE")) throw new Error(`(a) no root certificate in ${ns}/istio-ca-root-cert`);
    }
    progress(`(a) istio-ca-root-cert checked in ${namespaces.length} namespaces`);
    for (const [i, ns] of namespaces.entries()) {
        await kubectl(["rollout", "restart", "deployment", "-n", ns]);
        if ((i + 1) % Math.max(1, Math.ceil(namespaces.length / 5)) === 0) progress(`(a) restarted ${i + 1}/${namespaces.length} namespaces`);
    }
    const inMesh = new Set(namespaces);
    const deployments = (await kubectl(["get", "deployments", "-A", "-o", "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}{\"\\n\"}{end}"]))
        .split("\n").filter((l) => l && inMesh.has(l.split("/")[0]));
    for (const [i, d] of deployments.entries()) {
        const [ns, name] = d.split("/");
        await kubectl(["rollout", "status", `deployment/${name}`, "-n", ns, "--timeout=10m"]);
        if ((i + 1) % Math.max(1, Math.ceil(deployments.length / 5)) === 0) progress(`(a) rollout status ${i + 1}/${deployments.length}`);
    }
    if (deployments.length !== mesh.workloads.length) throw new Error(`(a) saw ${deployments.length} Deployments, expected ${mesh.workloads.length}`);
    return { processes };
}

// ---------------------------------------------------------------------------------------------
// (c) the direct-API floor

async function directFloor(api: Api, mesh: Mesh): Promise<{ processes: number; extra: Record<string, unknown> }> {
    const t0 = Date.now();
    const [ns, name] = mesh.istiod.split("/");
    await api.restart(ns, name);
    await waitRolledOut(api, [mesh.istiod], "(c) istiod");
    const istiodMs = Date.now() - t0;
    await mapLimit(mesh.workloads, 50, async (t) => {
        const [wns, wname] = t.split("/");
        await api.restart(wns, wname);
    });
    const patchedMs = Date.now() - t0 - istiodMs;
    await waitRolledOut(api, mesh.workloads, "(c) workloads");
    return { processes: 0, extra: { istiodMs, patchedMs } };
}

// ---------------------------------------------------------------------------------------------
// (b) the program

interface StepSummary {
    step: string;
    elapsedMs: number;
    processes?: { kubectl: number; istioctl: number };
    deployments?: number;
}

const STEPS = ["restart-istiod", "wait-root-cert", "restart-workloads", "verify-proxies", "verify-workload-certs"];

async function programUp(ts: TestStack, label: string): Promise<{ processes: number; extra: Record<string, unknown> }> {
    const stepStart = new Map<string, number>();
    const stepEnd = new Map<string, number>();
    const stepOf = (urn: string): string | undefined => STEPS.find((s) => urn.endsWith(`-${s}`));
    const onEvent = (ev: automation.EngineEvent): void => {
        const pre = ev.resourcePreEvent?.metadata;
        if (pre && pre.type === "command:local:Command") {
            const s = stepOf(pre.urn);
            if (s && !stepStart.has(s)) stepStart.set(s, Date.now());
        }
        // A replaced command also reports its old copy's deletion at the end of the update: only
        // the run of the new one counts.
        const out = ev.resOutputsEvent?.metadata;
        if (out && out.type === "command:local:Command" && ["create", "create-replacement", "update"].includes(out.op)) {
            const s = stepOf(out.urn);
            if (s) stepEnd.set(s, Date.now());
        }
    };
    const onOutput = (text: string): void => {
        for (const line of text.split("\n")) {
            if (line.trim()) progress(`(b) ${label} | ${line.trimEnd()}`);
        }
    };
    const inProcess0 = spawnCounter.kubectl + spawnCounter.istioctl;
    const t0 = Date.now();
    const up = await ts.stack.up({ onEvent, onOutput });
    const wallMs = Date.now() - t0;
    const inProcess = spawnCounter.kubectl + spawnCounter.istioctl - inProcess0;
    // The steps' own summaries (last stdout line of each command, kept in the state).
    const state = (await ts.stack.exportStack()).deployment as { resources?: { type: string; urn: string; outputs?: { stdout?: string } }[] };
    const summaries: StepSummary[] = [];
    for (const r of state.resources ?? []) {
        if (r.type !== "command:local:Command" || !r.outputs?.stdout) continue;
        try {
            summaries.push(JSON.parse(r.outputs.stdout.trim().split("\n").pop() ?? "") as StepSummary);
        } catch {
            /* not a summary */
        }
    }
    const ran = [...stepStart.keys()];
    const first = Math.min(...ran.map((s) => stepStart.get(s)!));
    const last = Math.max(...ran.map((s) => stepEnd.get(s) ?? 0));
    const stepProcesses = summaries.filter((s) => ran.includes(s.step)).reduce((n, s) => n + (s.processes?.kubectl ?? 0) + (s.processes?.istioctl ?? 0), 0);
    return {
        processes: stepProcesses + inProcess,
        extra: {
            result: up.summary.result,
            changes: up.summary.resourceChanges,
            wallMs,
            stepsChainMs: ran.length ? last - first : 0,
            steps: Object.fromEntries(ran.map((s) => {
                const { restartedNamespaces, restarted, ...summary } = (summaries.find((x) => x.step === s) ?? {}) as StepSummary & { restartedNamespaces?: { count: number }; restarted?: string[] };
                return [s, { engineMs: (stepEnd.get(s) ?? 0) - stepStart.get(s)!, ...summary, ...(restartedNamespaces ? { namespaces: restartedNamespaces.count } : {}) }];
            })),
            stepsElapsedMs: summaries.filter((s) => ran.includes(s.step)).reduce((n, s) => n + s.elapsedMs, 0),
            stepProcesses,
            programProcesses: inProcess,
        },
    };
}

// ---------------------------------------------------------------------------------------------
// One mesh size

interface SizeResult {
    n: number;
    deployments: number;
    nodes: number;
    limit: Limit;
    manual?: PartResult;
    floor: PartResult;
    firstUp: PartResult;
    up: PartResult;
    previewMs: number;
    setupMs: number;
}

/**
 * Real istiod for the seeded istiod Deployment, with its own token user (its requests are counted
 * apart from the stack's and the controllers'), its supervisor's watches included. No pilot-agents:
 * the bench measures the rotation's control-plane cost, the proxy checks are off (only Envoy-less
 * agents could run here, and a sample would fail verify-proxies' every-sidecar rule), and on 2
 * shared cores N agents would be N more processes competing with the control plane being measured.
 */
async function startIstiod(cluster: Cluster, kubeconfig: string): Promise<RealIstiod> {
    // On Ctrl-C the cluster harness re-raises the signal with its default action, so istiod.ts's
    // exit hook never runs (a pilot-discovery outlived an interrupted run): kill its groups here.
    for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
        process.once(sig, () => {
            for (const pgid of orphans) {
                try {
                    process.kill(-pgid, "SIGKILL");
                } catch {
                    /* gone */
                }
            }
        });
    }
    const istiod = new RealIstiod({ ...cluster, kubeconfig }, { kubeconfig, log: (m) => progress(m) });
    await istiod.start();
    return istiod;
}

/**
 * Until istiod serves and istio-ca-root-cert is in every mesh namespace, holding `rootPem` when
 * given (istiod writes it; after a restart it republishes). Returns the elapsed time.
 */
async function rootCertPublished(rig: Rig, mesh: Mesh, what: string, rootPem?: string, timeoutMs = 5 * 60_000): Promise<number> {
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

/** The root-cert.pem of `cacerts` (what real istiod must serve after (b)). */
async function cacertsRoot(api: Api): Promise<string> {
    const s = await api.json<{ data: Record<string, string> }>("/api/v1/namespaces/istio-system/secrets/cacerts");
    return Buffer.from(s.data["root-cert.pem"], "base64").toString("utf8");
}

async function createBenchStack(n: number, cluster: Cluster, kubeconfig: string, opts: Options): Promise<TestStack> {
    const ts = await createTestStack(`bench${n}`, inlineProgram, {
        clusterName: "bench",
        kubeconfig,
        kubectlPath: path.join(cluster.binDir, "kubectl"),
        verifyProxyStatus: "false",
        verifyWorkloadCertificates: "false",
        restartConcurrency: String(opts.concurrency),
        rootCertTimeoutSeconds: "300",
        rolloutTimeoutSeconds: "1800",
        // (b) is the seed's immediate root swap, asked for; so is the first up, off istiod's own CA.
        allowImmediateRootSwap: "true",
    });
    // Interrupted (Ctrl-C): the harness stops the cluster; remove the stack's files too.
    const cleanup = (): void => {
        fs.rmSync(path.join(PROJECT_ROOT, `Pulumi.${ts.name}.yaml`), { force: true });
        fs.rmSync(ts.backendDir, { recursive: true, force: true });
    };
    for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.once(sig, cleanup);
    return ts;
}

/** How many Deployments carry a restartedAt mark from this part or later (a rollout wait alone would not tell). */
async function restartedSince(api: Api, startMs: number): Promise<number> {
    const since = Math.floor(startMs / 1000) * 1000 - 2000;
    const marks = (await api.deployments()).items.map((d) =>
        Date.parse((d as { spec?: { template?: { metadata?: { annotations?: Record<string, string> } } } }).spec?.template?.metadata?.annotations?.["kubectl.kubernetes.io/restartedAt"] ?? "") || 0);
    return marks.filter((t) => t >= since).length;
}

/**
 * The istiod process running now started on the plug-in CA and refused nothing. Refusals by earlier
 * processes are returned: on a root swap (keyVersion) istiod's hot reload refuses the new root
 * ("Multi root is disabled...") between the Secret update and the program's restart-istiod.
 */
function istiodOnCacerts(istiod: RealIstiod): { starts: number; earlierRefusals: string[] } {
    const log = istiod.log();
    const current = log.slice(log.lastIndexOf("=== istiod start"));
    const refusals = istiod.refusals();
    const refusedNow = istiod.currentRefusals();
    if (refusedNow.length > 0 || !/Use local CA certificate/.test(current)) {
        throw new Error(`istiod is not on the program's cacerts:\n${refusedNow.join("\n") || istiod.logTail(25)}`);
    }
    return { starts: istiod.starts, earlierRefusals: refusals.map((l) => l.replace(/^\S+\s+\w+\s+/, "")) };
}

/** (b): the first up (creates cacerts, istiod restarted onto it), then the measured rotation, then a no-op preview. */
async function programParts(rig: Rig, mesh: Mesh, ts: TestStack, n: number): Promise<Pick<SizeResult, "firstUp" | "up" | "previewMs">> {
    progress(`N=${n}: (b) first pulumi up (creates cacerts, runs every step)`);
    const firstUp = await measured(rig, () => programUp(ts, "first up"));
    progress(`N=${n}: (b) first up ${secs(firstUp.wallMs)}`);
    await settle(rig.api, mesh.all, mesh.all.length);
    await rootCertPublished(rig, mesh, `N=${n}: after the first up`, await cacertsRoot(rig.api));

    await ts.stack.setConfig("istio-ca:keyVersion", { value: "2" });
    progress(`N=${n}: (b) pulumi up after keyVersion 1 -> 2`);
    const up = await measured(rig, () => programUp(ts, "rotation"));
    const restarted = await restartedSince(rig.api, Date.now() - up.wallMs);
    up.extra!.restartedByUp = `${restarted}/${mesh.all.length}`;
    if (restarted !== mesh.all.length) throw new Error(`(b) restarted ${restarted} of ${mesh.all.length} Deployments`);
    progress(`N=${n}: (b) ${secs(up.wallMs)}; restart+verify ${secs(up.extra!.stepsChainMs as number)}; ${restarted}/${mesh.all.length} Deployments restarted`);
    await settle(rig.api, mesh.all, mesh.all.length);
    // The program's wait-root-cert passed on istiod's ConfigMaps; the istiod now running took cacerts.
    await rootCertPublished(rig, mesh, `N=${n}: after the rotation`, await cacertsRoot(rig.api));
    up.extra!.istiod = istiodOnCacerts(rig.istiod);

    progress(`N=${n}: no-op pulumi preview`);
    const p0 = Date.now();
    await ts.stack.preview({ expectNoChanges: true });
    const previewMs = Date.now() - p0;
    progress(`N=${n}: no-op preview ${secs(previewMs)}`);
    return { firstUp, up, previewMs };
}

/** The limit, (a) and (c), each from rest, with istiod up and its ConfigMaps published before each. */
async function baselineParts(rig: Rig, mesh: Mesh, opts: Options, n: number): Promise<Pick<SizeResult, "limit" | "manual" | "floor">> {
    progress(`N=${n}: physical limit: single rollouts, alone`);
    const limit = await measureLimit(rig.api, mesh, opts);
    progress(`N=${n}: single rollouts ${limit.samplesMs.map(secs).join(", ")}; overhead ${secs(limit.overheadMs)}; limit ${secs(limit.limitMs)}`);

    let manual: PartResult | undefined;
    if (!opts.skipManual) {
        await rootCertPublished(rig, mesh, `N=${n}: before (a)`);
        progress(`N=${n}: (a) the manual procedure`);
        manual = await measured(rig, () => manualProcedure(rig.cluster, mesh));
        progress(`N=${n}: (a) ${secs(manual.wallMs)}, ${manual.processes} kubectl processes`);
        await settle(rig.api, mesh.all, mesh.all.length);
    }

    await rootCertPublished(rig, mesh, `N=${n}: before (c)`);
    progress(`N=${n}: (c) direct-API floor`);
    const floor = await measured(rig, () => directFloor(rig.api, mesh));
    progress(`N=${n}: (c) ${secs(floor.wallMs)}`);
    await settle(rig.api, mesh.all, mesh.all.length);
    return { limit, manual, floor };
}

async function runSize(n: number, opts: Options, work: string): Promise<SizeResult> {
    const t0 = Date.now();
    const inst = instrumentedBinDir(opts, work);
    progress(`N=${n}: starting a cluster (kwok pod readiness ${opts.delayMs} ms + [0, ${opts.jitterMs}] ms)`);
    const cluster = await startCluster({
        binDir: inst.binDir,
        nodes: 1, // kwok's node stage gives each fake node `pods: 1M` capacity
        podReadyDelayMs: opts.delayMs,
        podReadyJitterMs: opts.jitterMs,
        ...simulationSettings(opts),
        log: (m) => progress(m),
    });
    const api = new Api(cluster);
    const stackKc = kubeconfigFor(cluster, inst.tokens.istioCa, path.join(work, "istio-ca.kubeconfig"));
    let istiod: RealIstiod | undefined;
    let ts: TestStack | undefined;
    try {
        const mesh = await seed(cluster, api, n, opts.deployments);
        progress(`N=${n}: starting real istiod (pilot-discovery) for istio-system/istiod`);
        istiod = await startIstiod(cluster, kubeconfigFor(cluster, inst.tokens.istiod, path.join(work, "istiod.kubeconfig")));
        const rig: Rig = { cluster, api, istiod };
        await rootCertPublished(rig, mesh, `N=${n}: istiod's self-signed CA`);
        const setupMs = Date.now() - t0;

        const baseline = await baselineParts(rig, mesh, opts, n);
        // (b) starts with istiod up and its bundle published (the (c) part just restarted it).
        await rootCertPublished(rig, mesh, `N=${n}: before (b)`);
        ts = await createBenchStack(n, cluster, stackKc, opts);
        const program = await programParts(rig, mesh, ts, n);
        return { n, deployments: mesh.all.length, nodes: 1, ...baseline, ...program, setupMs };
    } finally {
        await istiod?.stop();
        await ts?.dispose();
        api.close();
        await cluster.stop();
        progress(`N=${n}: cluster stopped`);
    }
}

// ---------------------------------------------------------------------------------------------
// Report

const isControlPlane = (k: string): boolean => /^system:|^kwok /.test(k);
const clientOf = (part: PartResult, user: string): number => sumWhere(part.audit, (k) => k.startsWith(`${user} `));

/** "control plane + istiod + tools" CPU seconds of a part. */
function cpuSplit(p: PartResult): string {
    const plane = Object.entries(p.cpu).filter(([k]) => k !== "tools" && k !== "istiod").reduce((n, [, v]) => n + v, 0);
    return `${plane.toFixed(0)} + ${(p.cpu.istiod ?? 0).toFixed(1)} + ${(p.cpu.tools ?? 0).toFixed(0)}`;
}

function table(results: SizeResult[], opts: Options): string {
    const rows = [
        "| N namespaces (Deployments) | (a) manual | (b) `pulumi up` | (b) restart+verify | physical limit | (b) r+v / limit | (c) direct-API floor | (b) r+v / floor | (a) / (b) | API requests (a) client / all | API requests (b) client / all | processes (a) / (b) | CPU s (a) / (c) / (b): control plane + istiod + tools | no-op `pulumi preview` |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ];
    for (const r of results) {
        const rv = r.up.extra!.stepsChainMs as number;
        const a = r.manual;
        rows.push(`| ${r.n} (${r.deployments}) | ${a ? secs(a.wallMs) : "-"} | ${secs(r.up.wallMs)} | ${secs(rv)} | ${secs(r.limit.limitMs)} | ${(rv / r.limit.limitMs).toFixed(2)} | ${secs(r.floor.wallMs)} | ${(rv / r.floor.wallMs).toFixed(2)} | ${a ? (a.wallMs / r.up.wallMs).toFixed(1) + "×" : "-"} | ` +
            `${a ? `${clientOf(a, "admin")} / ${a.requestsTotal}` : "-"} | ${clientOf(r.up, USERS.istioCa)} / ${r.up.requestsTotal} | ${a ? a.processes : "-"} / ${r.up.processes} | ${a ? cpuSplit(a) : "-"} / ${cpuSplit(r.floor)} / ${cpuSplit(r.up)} | ${secs(r.previewMs)} |`);
    }
    return rows.join("\n") + `\n\nkwok readiness ${opts.delayMs} ms + [0, ${opts.jitterMs}] ms per pod, ${opts.deployments} Deployments per namespace (replicas 1), restartConcurrency ${opts.concurrency}. ` +
        `Simulation settings (dev/bench.ts simulationSettings): controller/scheduler client QPS ${opts.controlPlaneQps || "default"}, deployment/replicaset syncs ${opts.controllerSyncs || "default"}, ` +
        `GOGC ${opts.gogc || "default"}, kwok podPlayStageParallelism ${opts.kwokParallelism || "default"}.`;
}

function details(r: SizeResult): string {
    const parts: [string, PartResult | undefined][] = [["(a) manual", r.manual], ["(c) direct-API floor", r.floor], ["(b) first up", r.firstUp], ["(b) rotation up", r.up]];
    const lines = [`### N = ${r.n} (${r.deployments} Deployments)`, "",
        `- cluster start + seeding: ${secs(r.setupMs)}`,
        `- single rollouts alone (istiod, 3 workloads, istiod): ${r.limit.samplesMs.map(secs).join(", ")}; control-plane overhead per rollout ${secs(r.limit.overheadMs)}; limit ${secs(r.limit.limitMs)}`,
    ];
    for (const [name, p] of parts) {
        if (!p) continue;
        const clients = Object.entries(p.audit).sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k}: ${v}`).join(", ");
        lines.push(`- ${name}: wall ${secs(p.wallMs)}; processes ${p.processes}; apiserver_request_total +${p.requestsTotal}; audit by user/agent: ${clients}; control plane: ${sumWhere(p.audit, isControlPlane)}`);
        lines.push(`  - CPU seconds: ${Object.entries(p.cpu).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ")}; load average ${p.load[0].toFixed(1)} before, ${p.load[1].toFixed(1)} after`);
        if (p.extra) lines.push(`  - ${JSON.stringify(p.extra)}`);
    }
    lines.push(`- no-op preview: ${secs(r.previewMs)}`);
    return lines.join("\n");
}

/** The run's start: its time and the machine's load then (other work on the 2 shared cores shows here). */
const START = { iso: new Date().toISOString(), load: os.loadavg() };

/** The results file, rewritten after each size so that a run cut short keeps what it measured. */
function writeResults(opts: Options, results: SizeResult[], complete: boolean): void {
    if (!opts.out) return;
    const out = path.resolve(PROJECT_ROOT, opts.out);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    const done = complete ? "" : ` (partial: sizes ${results.map((r) => r.n).join(", ")} of ${opts.sizes.join(", ")} done)`;
    fs.writeFileSync(out, [
        `# Rotation benchmark, ${START.iso} to ${new Date().toISOString()}${done}`,
        "",
        `Command: \`npm run bench -- ${process.argv.slice(2).join(" ")}\`; machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? "?"}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}; ` +
            `load average at the start ${START.load.map((l) => l.toFixed(2)).join(", ")} (1, 5, 15 min).`,
        "",
        table(results, opts),
        "",
        results.map(details).join("\n\n"),
        "",
        "## Log",
        "",
        "```",
        ...logLines,
        "```",
        "",
    ].join("\n"));
    progress(`wrote ${out}`);
}

async function main(): Promise<void> {
    const opts = parseOptions(process.argv.slice(2));
    progress(`options: ${JSON.stringify(opts)}; ${os.cpus().length} cores, node ${process.version}; load average ${START.load.map((l) => l.toFixed(2)).join(", ")}`);
    const results: SizeResult[] = [];
    for (const n of opts.sizes) {
        const work = fs.mkdtempSync(path.join(os.tmpdir(), `istio-ca-bench-${n}-`));
        try {
            results.push(await runSize(n, opts, work));
        } finally {
            fs.rmSync(work, { recursive: true, force: true });
        }
        process.stdout.write(`\n${details(results[results.length - 1])}\n`);
        writeResults(opts, results, results.length === opts.sizes.length);
    }
    process.stdout.write(`\n${table(results, opts)}\n`);
}

if (require.main === module) {
    main().then(() => process.exit(0), (err: Error) => {
        process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
        process.exit(1);
    });
}
