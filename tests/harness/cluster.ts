/**
 * A real, local Kubernetes control plane for tests and for people (`npm run cluster:up`).
 *
 * etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok (fake kubelet), all on
 * 127.0.0.1 with random free ports and a private directory; binaries come from
 * toolchain/cluster.sh (see findBinDir). Pods are scheduled onto fake kwok Nodes and made
 * Ready by kwok Stages written here at start, so Deployment rollouts complete, but nothing ever
 * runs and nothing ever dials a pod IP: no webhooks, no aggregated APIs are installed.
 *
 * Usage in a test:
 *
 *   const cluster = await startCluster();          // ~5-15 s
 *   try {
 *     await seedMesh(cluster);                       // optional: istio-system/istiod + workloads
 *     await cluster.kubectl(["get", "pods", "-A"]);  // KUBECONFIG is cluster.kubeconfig
 *   } finally {
 *     await cluster.stop();                          // kills every process group, removes the dir
 *   }
 *
 * If the test process dies without calling stop(), an exit handler (normal exit, uncaught
 * exception, SIGINT/SIGTERM/SIGHUP) and, for SIGKILL, a small watchdog shell process kill the
 * components and remove the directory.
 */
import { spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as https from "node:https";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

export type Component = "etcd" | "kube-apiserver" | "kube-controller-manager" | "kube-scheduler" | "kwok";
const COMPONENTS: Component[] = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"];
const BINARIES = [...COMPONENTS, "kubectl"];

export interface ClusterOptions {
    /** Directory holding the binaries; default: env ISTIO_CA_CLUSTER_BIN_DIR, else the build cache (findBinDir). */
    binDir?: string;
    /** State directory (created; must not exist or be empty); default: a new temporary directory. Removed by stop(). */
    dir?: string;
    /**
     * Keep the cluster running after this Node.js process exits (used by `npm run cluster:up`):
     * no exit handlers, no watchdog; stop it with stopClusterDir(dir).
     */
    persistent?: boolean;
    /** Number of fake kwok nodes (default 1). */
    nodes?: number;
    /** Delay before kwok marks a scheduled pod Running/Ready (default 0). */
    podReadyDelayMs?: number;
    /** Extra random delay, uniform in [0, podReadyJitterMs], added to podReadyDelayMs (default 0). */
    podReadyJitterMs?: number;
    /**
     * Simulation settings for large meshes (dev/bench/rig.ts documents the ones it uses and why):
     * flags appended to a component's own, environment variables for it (e.g. GOGC), and kwok's
     * KwokConfiguration `options` (e.g. podPlayStageParallelism). They change how fast this machine
     * plays the control plane, not what it does. Default: none.
     */
    componentArgs?: Partial<Record<Component, string[]>>;
    componentEnv?: Partial<Record<Component, Record<string, string>>>;
    kwokOptions?: Record<string, string | number | boolean>;
    /** Give up when the control plane is not ready within this time (default 120 s). */
    startTimeoutMs?: number;
    /** Progress messages (default: silent). */
    log?: (message: string) => void;
}

export interface KubectlOptions {
    /** Data written to kubectl's stdin (e.g. manifests for `apply -f -`). */
    input?: string;
    /** Kill kubectl after this time (default 120 s). */
    timeoutMs?: number;
    /** Resolve instead of rejecting when kubectl exits non-zero. */
    allowFailure?: boolean;
}

export interface KubectlResult {
    code: number;
    stdout: string;
    stderr: string;
}

export interface Cluster {
    /** Directory with all state: kubeconfig, pki, etcd data, logs/<component>.log. */
    readonly dir: string;
    /** Path of an admin kubeconfig (token user in system:masters, CA embedded). */
    readonly kubeconfig: string;
    /** https://127.0.0.1:<port> */
    readonly server: string;
    /** Bearer token of the admin user (system:masters). */
    readonly token: string;
    /** PEM of the CA that signed the API server's serving certificate. */
    readonly caPem: string;
    /** Directory with the binaries (kubectl included). */
    readonly binDir: string;
    /** gitVersion the API server reports, e.g. v1.36.3. */
    readonly version: string;
    /** Names of the fake nodes. */
    readonly nodes: string[];
    /** Environment for child processes: KUBECONFIG set, binDir first on PATH. */
    readonly env: NodeJS.ProcessEnv;
    /** Process (group) id of each component. */
    readonly pids: Readonly<Record<Component, number>>;
    /** Runs the cluster's kubectl against it; rejects with stderr when it fails (unless allowFailure). */
    kubectl(args: string[], opts?: KubectlOptions): Promise<KubectlResult>;
    /** `kubectl apply -f -` of the given objects (or YAML/JSON text). */
    apply(manifests: object[] | string): Promise<void>;
    /** Path of a component's log file. */
    logFile(component: Component): string;
    /** Stops every process (SIGTERM, then SIGKILL after 10 s; clients, then kube-apiserver, then etcd) and removes the directory. Idempotent. */
    stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Locating binaries

/** Repository root: the nearest ancestor holding toolchain/versions.env. */
export function repoRoot(start: string = __dirname): string {
    let dir = start;
    for (;;) {
        if (fs.existsSync(path.join(dir, "toolchain", "versions.env"))) return dir;
        const parent = path.dirname(dir);
        if (parent === dir) throw new Error(`cannot find toolchain/versions.env above ${start}`);
        dir = parent;
    }
}

/** KEY=VALUE lines of toolchain/versions.env. */
export function readVersions(root: string = repoRoot()): Record<string, string> {
    const out: Record<string, string> = {};
    const text = fs.readFileSync(path.join(root, "toolchain", "versions.env"), "utf8");
    for (const line of text.split("\n")) {
        const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=("?)([^"#]*)\2\s*(#.*)?$/.exec(line);
        if (m) out[m[1]] = m[3].trim();
    }
    return out;
}

/**
 * Directory holding the control-plane binaries: $ISTIO_CA_CLUSTER_BIN_DIR, else
 * ${ISTIO_CA_CACHE:-~/.cache/istio-ca}/cluster-<KUBE_VERSION>/bin as built by
 * toolchain/cluster.sh.
 */
export function findBinDir(): string {
    return cachedBinDir("ISTIO_CA_CLUSTER_BIN_DIR", "KUBE_VERSION", "cluster");
}

/** $<override>, else ${ISTIO_CA_CACHE:-~/.cache/istio-ca}/<prefix>-<version of versionKey>/bin (the toolchain scripts' layout). */
export function cachedBinDir(override: string, versionKey: string, prefix: string): string {
    if (process.env[override]) return process.env[override]!;
    const v = readVersions()[versionKey];
    if (!v) throw new Error(`toolchain/versions.env does not set ${versionKey}`);
    const cache = process.env.ISTIO_CA_CACHE || path.join(os.homedir(), ".cache", "istio-ca");
    return path.join(cache, `${prefix}-${v}`, "bin");
}

/** Names of the binaries missing from binDir (empty: all present). */
export function missingBinaries(binDir: string = findBinDir()): string[] {
    return BINARIES.filter((b) => {
        try {
            fs.accessSync(path.join(binDir, b), fs.constants.X_OK);
            return false;
        } catch {
            return true;
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Small utilities

export function sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
}

export function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.unref();
        srv.on("error", reject);
        srv.listen(0, "127.0.0.1", () => {
            const addr = srv.address();
            const port = typeof addr === "object" && addr ? addr.port : 0;
            srv.close(() => resolve(port));
        });
    });
}

async function freePorts(n: number): Promise<number[]> {
    const ports = new Set<number>();
    while (ports.size < n) ports.add(await freePort());
    return [...ports];
}

function tail(file: string, lines = 30): string {
    try {
        return fs.readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
    } catch {
        return "(no log)";
    }
}

/** Whether `pid` exists and is not a zombie (an exited child not yet reaped by its parent/init). */
function isAlive(pid: number): boolean {
    try {
        process.kill(pid, 0);
    } catch (e) {
        return (e as NodeJS.ErrnoException).code === "EPERM";
    }
    try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
    } catch {
        return false;
    }
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
    try {
        process.kill(-pgid, signal);
    } catch {
        /* already gone */
    }
}

/** Whether process `pid` exists and its command line mentions `needle`. */
function mentions(pid: number, needle: string): boolean {
    try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(needle);
    } catch {
        return false;
    }
}

/**
 * Components of the cluster in `dir` that are running (name -> pid), from its state.json;
 * empty when none (or no state).
 */
export function runningComponents(dir: string): Record<string, number> {
    const state = readState(path.resolve(dir));
    if (!state) return {};
    return Object.fromEntries(Object.entries(state.pgids).filter(([, pid]) => mentions(pid, state.dir)));
}

/** PIDs of processes whose command line mentions `needle` (e.g. a cluster's dir). Linux /proc. */
export function processesMentioning(needle: string): number[] {
    const out: number[] = [];
    for (const entry of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
        try {
            const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8");
            if (cmd.includes(needle)) out.push(Number(entry));
        } catch {
            /* exited meanwhile */
        }
    }
    return out;
}

function kubeconfigText(server: string, caPem: string, user: string, token: string): string {
    return [
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        "- name: istio-ca-local",
        "  cluster:",
        `    server: ${server}`,
        `    certificate-authority-data: ${Buffer.from(caPem).toString("base64")}`,
        "users:",
        `- name: ${user}`,
        "  user:",
        `    token: ${token}`,
        "contexts:",
        "- name: istio-ca-local",
        "  context:",
        "    cluster: istio-ca-local",
        `    user: ${user}`,
        "    namespace: default",
        "current-context: istio-ca-local",
        "",
    ].join("\n");
}

// ---------------------------------------------------------------------------------------------
// kwok stages: tests/harness/kwok-stages.yaml, with the pod-ready delay of the options.

function stagesYaml(podReadyDelayMs: number, podReadyJitterMs: number): string {
    const delay =
        podReadyDelayMs > 0 || podReadyJitterMs > 0
            ? // kwok: the delay is uniform in [durationMilliseconds, jitterDurationMilliseconds]
              `  delay:\n    durationMilliseconds: ${podReadyDelayMs}\n    jitterDurationMilliseconds: ${podReadyDelayMs + podReadyJitterMs}\n`
            : "";
    return fs.readFileSync(path.join(repoRoot(), "tests/harness/kwok-stages.yaml"), "utf8").replace("{{delay}}", delay);
}

// ---------------------------------------------------------------------------------------------
// Stopping

interface StateFile {
    dir: string;
    server: string;
    kubeconfig: string;
    /** pgid of each component (each is the leader of its own process group) */
    pgids: Record<string, number>;
    watchdog?: number;
    startedAt: string;
    binDir: string;
}

function readState(dir: string): StateFile | undefined {
    try {
        return JSON.parse(fs.readFileSync(path.join(dir, "state.json"), "utf8")) as StateFile;
    } catch {
        return undefined;
    }
}

function writeState(dir: string, state: StateFile): void {
    const tmp = path.join(dir, "state.json.tmp");
    fs.writeFileSync(tmp, JSON.stringify(state, null, 2));
    fs.renameSync(tmp, path.join(dir, "state.json"));
    // plain list for the watchdog shell script
    fs.writeFileSync(path.join(dir, "pgids"), Object.values(state.pgids).join("\n") + "\n");
}

/** Synchronous last-resort cleanup (exit handlers): SIGKILL every group, remove the directory. */
function killNowSync(dir: string, pgids: number[]): void {
    for (const g of pgids) killGroup(g, "SIGKILL");
    try {
        fs.rmSync(dir, { recursive: true, force: true });
    } catch {
        /* ignore */
    }
}

/**
 * Stops the cluster whose state directory is `dir` (written by startCluster) from any process:
 * SIGTERM to every process group, SIGKILL after `graceMs`, then removes the directory.
 */
export async function stopClusterDir(dir: string, graceMs = 10_000): Promise<void> {
    const state = readState(dir);
    if (state) {
        await stopOrdered(dir, state.pgids, state.watchdog, graceMs);
    }
    // A component started but not yet recorded (start-up interrupted): one of our binaries, or the
    // watchdog, mentioning this directory. Other processes (an editor, a `kubectl -w`) are left alone.
    for (const pid of processesMentioning(dir)) {
        let argv: string[] = [];
        try {
            argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
        } catch {
            continue;
        }
        const ours = (state?.binDir && argv[0]?.startsWith(state.binDir + path.sep)) || argv.includes("istio-ca-cluster-watchdog");
        if (ours) {
            try {
                process.kill(pid, "SIGKILL");
            } catch {
                /* gone */
            }
        }
    }
    fs.rmSync(dir, { recursive: true, force: true });
}

async function stopGroups(groups: number[], graceMs: number): Promise<void> {
    for (const g of groups) killGroup(g, "SIGTERM");
    const deadline = Date.now() + graceMs;
    while (groups.some(isAlive) && Date.now() < deadline) await sleep(20);
    for (const g of groups) killGroup(g, "SIGKILL");
    // wait until the group leaders are really gone (reaped by us or by init)
    const hard = Date.now() + 5_000;
    while (groups.some(isAlive) && Date.now() < hard) await sleep(20);
}

/**
 * Stops components in reverse start order: clients first, then kube-apiserver (its graceful
 * shutdown takes ~1 s with etcd up, but hangs for many seconds once etcd is gone), then etcd.
 */
async function stopOrdered(dir: string, pgids: Record<string, number>, watchdog: number | undefined, graceMs: number): Promise<void> {
    // Only groups whose leader still is this cluster's process: a stale state.json (after a
    // reboot) must not make us signal unrelated processes that reuse the pids.
    const by = (names: string[]) =>
        names.map((n) => pgids[n]).filter((p): p is number => typeof p === "number" && mentions(p, dir));
    const known = new Set(["kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"]);
    const others = Object.entries(pgids).filter(([n, p]) => !known.has(n) && mentions(p, dir)).map(([, p]) => p);
    await stopGroups([...by(["kwok", "kube-scheduler", "kube-controller-manager"]), ...others], graceMs);
    await stopGroups(by(["kube-apiserver"]), graceMs);
    await stopGroups(by(["etcd"]), graceMs);
    if (watchdog && mentions(watchdog, dir)) await stopGroups([watchdog], graceMs);
}

// ---------------------------------------------------------------------------------------------
// Starting

/** Starts a cluster; see the module comment. Rejects (after cleaning up) when it cannot start. */
export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
    // Ports are picked free, then bound by the components a moment later: another process (e.g. a
    // cluster of a parallel test file) may take one in between. That start-up fails cleanly with
    // "address already in use"; try again with new ports.
    for (let attempt = 1; ; attempt++) {
        try {
            return await startOnce(opts);
        } catch (e) {
            if (attempt >= 3 || !/address already in use/i.test((e as Error).message)) throw e;
            opts.log?.(`[cluster] port conflict, retrying (${(e as Error).message.split("\n")[0]})`);
        }
    }
}

async function startOnce(opts: ClusterOptions): Promise<Cluster> {
    const t0 = Date.now();
    const log = (m: string) => opts.log?.(`[cluster +${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}`);
    const binDir = path.resolve(opts.binDir ?? findBinDir());
    const missing = missingBinaries(binDir);
    if (missing.length) {
        throw new Error(
            `control-plane binaries missing in ${binDir}: ${missing.join(", ")}. ` +
                "Build them with toolchain/cluster.sh (or set ISTIO_CA_CLUSTER_BIN_DIR).",
        );
    }
    const nodeCount = opts.nodes ?? 1;
    const timeoutMs = opts.startTimeoutMs ?? 120_000;

    let dir: string;
    if (opts.dir) {
        dir = path.resolve(opts.dir);
        fs.mkdirSync(dir, { recursive: true });
        if (fs.readdirSync(dir).length) throw new Error(`cluster dir ${dir} is not empty (a cluster running there?)`);
    } else {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "istio-ca-cluster-"));
    }
    fs.chmodSync(dir, 0o700);
    for (const sub of ["pki", "etcd", "logs", "kwok", "kube-cache"]) fs.mkdirSync(path.join(dir, sub));

    /** resolve when a child has exited AND been reaped by Node.js (no zombie left behind) */
    const reaped: Promise<void>[] = [];
    const exited = new Map<Component, string>();
    const state: StateFile = {
        dir,
        server: "",
        kubeconfig: path.join(dir, "kubeconfig"),
        pgids: {},
        startedAt: new Date().toISOString(),
        binDir,
    };
    const allGroups = () => [...Object.values(state.pgids), ...(state.watchdog ? [state.watchdog] : [])];

    // --- cleanup on abnormal exit of this process (not for persistent clusters) ---------------
    let stopped = false;
    const onExit = () => {
        if (!stopped) killNowSync(dir, allGroups());
    };
    const onSignal = (sig: NodeJS.Signals) => {
        onExit();
        removeHandlers();
        process.kill(process.pid, sig); // re-raise with the default behaviour
    };
    const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
    const removeHandlers = () => {
        process.removeListener("exit", onExit);
        for (const s of signals) process.removeListener(s, onSignal);
    };
    if (!opts.persistent) {
        process.on("exit", onExit);
        for (const s of signals) process.once(s, onSignal);
        // Watchdog for SIGKILL of this process: when our pid disappears, kill the groups listed
        // in <dir>/pgids and remove the directory. It exits by itself once the dir is gone.
        const script =
            'while kill -0 "$1" 2>/dev/null && [ -d "$2" ]; do sleep 1; done; ' +
            '[ -d "$2" ] || exit 0; for g in $(cat "$2/pgids" 2>/dev/null); do kill -KILL "-$g" 2>/dev/null; done; rm -rf "$2"';
        const wd = spawn("/bin/sh", ["-c", script, "istio-ca-cluster-watchdog", String(process.pid), dir], {
            detached: true,
            stdio: "ignore",
        });
        wd.unref();
        if (wd.pid) state.watchdog = wd.pid;
    }

    const launch = (name: Component, args: string[]) => {
        const logPath = path.join(dir, "logs", `${name}.log`);
        const fd = fs.openSync(logPath, "a");
        const env = { ...process.env, ...opts.componentEnv?.[name] };
        delete env.KUBECONFIG;
        const child = spawn(path.join(binDir, name), [...args, ...(opts.componentArgs?.[name] ?? [])], {
            cwd: dir,
            env,
            detached: true, // own process group: stop() kills the whole group
            stdio: ["ignore", fd, fd],
        });
        fs.closeSync(fd);
        if (!child.pid) throw new Error(`cannot start ${name}`);
        reaped.push(new Promise((r) => child.once("close", () => r())));
        state.pgids[name] = child.pid;
        writeState(dir, state);
        child.on("exit", (code, signal) => exited.set(name, signal ? `signal ${signal}` : `exit code ${code}`));
        child.on("error", (e) => exited.set(name, `spawn error ${e.message}`));
        if (opts.persistent) child.unref();
    };

    const checkAlive = () => {
        for (const [name, how] of exited) {
            throw new Error(`${name} stopped during start-up (${how}); last log lines:\n${tail(path.join(dir, "logs", `${name}.log`))}`);
        }
    };
    const waitFor = async <T>(what: string, probe: () => Promise<T | undefined>, ms = timeoutMs): Promise<T> => {
        const deadline = Date.now() + ms;
        let last = "";
        for (;;) {
            checkAlive();
            try {
                const v = await probe();
                if (v !== undefined) return v;
            } catch (e) {
                last = (e as Error).message;
            }
            if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${last}` : ""}`);
            await sleep(100);
        }
    };

    let cluster: Cluster | undefined;
    try {
        const [etcdPort, etcdPeerPort, apiPort] = await freePorts(3);
        const server = `https://127.0.0.1:${apiPort}`;
        state.server = server;

        // --- credentials: tokens and the service-account signing key, fresh for every cluster ----
        const tok = () => crypto.randomBytes(24).toString("hex");
        const tokens = { admin: tok(), kcm: tok(), scheduler: tok(), kwok: tok() };
        fs.writeFileSync(
            path.join(dir, "pki", "tokens.csv"),
            [
                `${tokens.admin},admin,uid-admin,"system:masters"`,
                // With --use-service-account-credentials=false the controller-manager acts as itself
                // for every controller; its bootstrap role does not cover that, hence system:masters.
                `${tokens.kcm},system:kube-controller-manager,uid-kcm,"system:masters"`,
                `${tokens.scheduler},system:kube-scheduler,uid-scheduler`,
                `${tokens.kwok},kwok,uid-kwok,"system:masters"`,
                "",
            ].join("\n"),
            { mode: 0o600 },
        );
        const sa = crypto.generateKeyPairSync("ec", { namedCurve: "prime256v1" });
        fs.writeFileSync(path.join(dir, "pki", "sa.key"), sa.privateKey.export({ type: "sec1", format: "pem" }), { mode: 0o600 });
        fs.writeFileSync(path.join(dir, "pki", "sa.pub"), sa.publicKey.export({ type: "spki", format: "pem" }));

        // --- etcd ---------------------------------------------------------------------------
        log(`starting etcd on 127.0.0.1:${etcdPort}`);
        const etcdUrl = `http://127.0.0.1:${etcdPort}`;
        const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
        launch("etcd", [
            "--name=default",
            `--data-dir=${path.join(dir, "etcd")}`,
            `--listen-client-urls=${etcdUrl}`,
            `--advertise-client-urls=${etcdUrl}`,
            `--listen-peer-urls=${peerUrl}`,
            `--initial-advertise-peer-urls=${peerUrl}`,
            `--initial-cluster=default=${peerUrl}`,
            "--initial-cluster-state=new",
            "--unsafe-no-fsync=true", // throw-away data: no fsync makes writes far faster
            "--quota-backend-bytes=2147483648",
            "--log-level=warn",
        ]);

        // --- kube-apiserver ----------------------------------------------------------------
        const certDir = path.join(dir, "pki", "apiserver");
        log(`starting kube-apiserver on ${server}`);
        launch("kube-apiserver", [
            `--etcd-servers=${etcdUrl}`,
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            `--secure-port=${apiPort}`,
            `--cert-dir=${certDir}`, // self-signed CA + serving cert for 127.0.0.1/localhost
            `--token-auth-file=${path.join(dir, "pki", "tokens.csv")}`,
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            `--service-account-key-file=${path.join(dir, "pki", "sa.pub")}`,
            `--service-account-signing-key-file=${path.join(dir, "pki", "sa.key")}`,
            "--service-cluster-ip-range=10.96.0.0/16",
            // The node lifecycle controller is not run, so nothing would remove the not-ready
            // taint this admission plugin puts on new Nodes; kwok marks them Ready itself.
            "--disable-admission-plugins=TaintNodesByCondition",
            // 127.0.0.1 may not be written into the kubernetes Service's Endpoints.
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--profiling=false",
            "--enable-priority-and-fairness=false",
            "--v=1",
        ]);

        const caFile = path.join(certDir, "apiserver.crt");
        await waitFor("kube-apiserver /readyz", async () => {
            if (!fs.existsSync(caFile)) return undefined;
            const ca = fs.readFileSync(caFile, "utf8");
            const { status, body } = await httpsGet(`${server}/readyz`, ca, tokens.admin);
            if (status !== 200) throw new Error(`/readyz ${status}: ${body.slice(0, 300)}`);
            return true;
        });
        const caPem = fs.readFileSync(caFile, "utf8");
        const versionInfo = JSON.parse((await httpsGet(`${server}/version`, caPem, tokens.admin)).body) as { gitVersion: string };
        log(`kube-apiserver ready (${versionInfo.gitVersion})`);

        const kubeconfig = path.join(dir, "kubeconfig");
        fs.writeFileSync(kubeconfig, kubeconfigText(server, caPem, "admin", tokens.admin), { mode: 0o600 });
        const kcFor = (name: string, token: string) => {
            const p = path.join(dir, "pki", `${name}.kubeconfig`);
            fs.writeFileSync(p, kubeconfigText(server, caPem, name, token), { mode: 0o600 });
            return p;
        };

        // --- controllers, scheduler, kwok ----------------------------------------------------
        launch("kube-controller-manager", [
            `--kubeconfig=${kcFor("kube-controller-manager", tokens.kcm)}`,
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--secure-port=0", // no serving endpoint needed
            `--root-ca-file=${caFile}`,
            "--use-service-account-credentials=false",
            // Only what the tests need. Deliberately absent: node-lifecycle (no taints/evictions
            // of fake nodes), serviceaccount-token (no legacy token Secrets), csr*, pv*, hpa, ipam.
            "--controllers=" +
                [
                    "serviceaccount-controller", // "default" ServiceAccount in every namespace
                    "root-ca-certificate-publisher-controller", // kube-root-ca.crt ConfigMaps
                    "namespace-controller",
                    "garbage-collector-controller",
                    "deployment-controller",
                    "replicaset-controller",
                    "statefulset-controller",
                    "daemonset-controller",
                    "job-controller",
                    "endpoints-controller",
                    "endpointslice-controller",
                    "clusterrole-aggregation-controller",
                ].join(","),
            "--v=1",
        ]);
        launch("kube-scheduler", [
            `--kubeconfig=${kcFor("kube-scheduler", tokens.scheduler)}`,
            `--authentication-kubeconfig=${path.join(dir, "pki", "kube-scheduler.kubeconfig")}`,
            `--authorization-kubeconfig=${path.join(dir, "pki", "kube-scheduler.kubeconfig")}`,
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            "--v=1",
        ]);
        const stagesFile = path.join(dir, "kwok", "stages.yaml");
        // A KwokConfiguration read from a file gets no defaults: kwok's own (v0.8.0) come first.
        const kwokDefaults = { podPlayStageParallelism: 4, nodePlayStageParallelism: 4, nodeLeaseParallelism: 4, podsOnNodeSyncParallelism: 1, enablePodsOnNodeSyncListPager: true };
        const kwokConfig = opts.kwokOptions
            ? "---\napiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokConfiguration\noptions:\n" +
              Object.entries({ ...kwokDefaults, ...opts.kwokOptions }).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}\n`).join("")
            : "";
        fs.writeFileSync(stagesFile, stagesYaml(opts.podReadyDelayMs ?? 0, opts.podReadyJitterMs ?? 0) + kwokConfig);
        launch("kwok", [
            `--kubeconfig=${kcFor("kwok", tokens.kwok)}`,
            `--config=${stagesFile}`,
            "--manage-all-nodes=false",
            "--manage-nodes-with-label-selector=type=kwok",
            "--cidr=10.244.0.0/16", // pod IPs (never dialled); the default /24 caps pods per node
            "--node-ip=127.0.0.1",
            "--node-lease-duration-seconds=40",
            // no --server-address / --node-port: kwok serves no kubelet API (no logs/exec)
        ]);

        const kubectl = (args: string[], kopts: KubectlOptions = {}) => runKubectl(binDir, kubeconfig, dir, args, kopts);

        // --- fake nodes ----------------------------------------------------------------------
        const nodes = Array.from({ length: nodeCount }, (_, i) => `kwok-node-${i}`);
        await kubectl(["apply", "-f", "-"], {
            input: JSON.stringify({
                apiVersion: "v1",
                kind: "List",
                items: nodes.map((name) => ({
                    apiVersion: "v1",
                    kind: "Node",
                    metadata: {
                        name,
                        labels: {
                            type: "kwok",
                            "kubernetes.io/hostname": name,
                            "kubernetes.io/os": "linux",
                            "kubernetes.io/arch": "amd64",
                        },
                        annotations: { "kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0" },
                    },
                })),
            }),
        });
        await waitFor("fake nodes Ready (kwok)", async () => {
            const r = await kubectl(["get", "nodes", "-o", "jsonpath={range .items[*]}{.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}"]);
            const ready = r.stdout.split("\n").filter((s) => s === "True").length;
            return ready >= nodeCount ? true : undefined;
        });
        await waitFor('ServiceAccount "default" (kube-controller-manager)', async () => {
            const r = await kubectl(["get", "serviceaccount", "default", "-n", "default", "-o", "name"], { allowFailure: true });
            return r.code === 0 ? true : undefined;
        });
        log("control plane ready");

        const env: NodeJS.ProcessEnv = { ...process.env, KUBECONFIG: kubeconfig, PATH: `${binDir}${path.delimiter}${process.env.PATH ?? ""}` };
        const pids = Object.fromEntries(COMPONENTS.map((c) => [c, state.pgids[c]])) as Record<Component, number>;
        let stopping: Promise<void> | undefined;
        cluster = {
            dir,
            kubeconfig,
            server,
            token: tokens.admin,
            caPem,
            binDir,
            version: versionInfo.gitVersion,
            nodes,
            env,
            pids,
            kubectl,
            apply: async (manifests) => {
                const input =
                    typeof manifests === "string" ? manifests : JSON.stringify({ apiVersion: "v1", kind: "List", items: manifests });
                await kubectl(["apply", "-f", "-"], { input });
            },
            logFile: (c) => path.join(dir, "logs", `${c}.log`),
            stop: () => {
                stopping ??= (async () => {
                    await stopOrdered(dir, state.pgids, state.watchdog, 10_000);
                    await Promise.race([Promise.all(reaped), new Promise((r) => setTimeout(r, 5_000).unref())]);
                    fs.rmSync(dir, { recursive: true, force: true });
                    stopped = true;
                    removeHandlers();
                })();
                return stopping;
            },
        };
        return cluster;
    } catch (e) {
        await stopOrdered(dir, state.pgids, state.watchdog, 2_000);
        fs.rmSync(dir, { recursive: true, force: true });
        stopped = true;
        removeHandlers();
        throw e;
    }
}

function httpsGet(url: string, ca: string, token: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
        const req = https.get(url, { ca, headers: { Authorization: `Bearer ${token}` }, timeout: 5_000 }, (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (d: string) => (body += d));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on("timeout", () => req.destroy(new Error("timeout")));
        req.on("error", reject);
    });
}

/** Runs kubectl from binDir with the given kubeconfig; see Cluster.kubectl. */
export function runKubectl(
    binDir: string,
    kubeconfig: string,
    dir: string,
    args: string[],
    opts: KubectlOptions = {},
): Promise<KubectlResult> {
    return new Promise((resolve, reject) => {
        const env = { ...process.env, KUBECONFIG: kubeconfig };
        const child = spawn(path.join(binDir, "kubectl"), [`--cache-dir=${path.join(dir, "kube-cache")}`, ...args], {
            env,
            stdio: ["pipe", "pipe", "pipe"],
        });
        let stdout = "";
        let stderr = "";
        child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
        child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
        const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 120_000);
        child.on("error", (e) => {
            clearTimeout(timer);
            reject(e);
        });
        child.on("close", (code, signal) => {
            clearTimeout(timer);
            const result = { code: code ?? -1, stdout, stderr };
            if (result.code !== 0 && !opts.allowFailure) {
                const why = signal ? `killed by ${signal} (timeout?)` : `exit code ${code}`;
                reject(Object.assign(new Error(`kubectl ${args.join(" ")} failed (${why}): ${stderr.trim()}`), { result }));
            } else {
                resolve(result);
            }
        });
        child.stdin.on("error", () => {
            /* kubectl may exit before reading stdin */
        });
        child.stdin.end(opts.input ?? "");
    });
}

// ---------------------------------------------------------------------------------------------
// A small mesh

export interface SeedOptions {
    /** Wait until every seeded Deployment has rolled out (default true). */
    wait?: boolean;
    /** Per-deployment rollout timeout (default 120 s). */
    timeoutMs?: number;
}

export interface SeededWorkload {
    namespace: string;
    name: string;
    replicas: number;
    /** true for namespaces with istio-injection=enabled or istio.io/rev */
    istioEnabled: boolean;
}

/** Namespaces and Deployments seedMesh creates. */
export const MESH: { namespace: string; labels: Record<string, string>; deployments: { name: string; replicas: number }[] }[] = [
    { namespace: "istio-system", labels: {}, deployments: [{ name: "istiod", replicas: 1 }] },
    { namespace: "bookinfo", labels: { "istio-injection": "enabled" }, deployments: [{ name: "productpage", replicas: 1 }, { name: "reviews", replicas: 2 }] },
    { namespace: "payments", labels: { "istio-injection": "enabled" }, deployments: [{ name: "ledger", replicas: 2 }, { name: "checkout", replicas: 1 }] },
    { namespace: "canary", labels: { "istio.io/rev": "default" }, deployments: [{ name: "canary-api", replicas: 1 }] },
    { namespace: "plain", labels: {}, deployments: [{ name: "legacy-batch", replicas: 1 }] },
];

/**
 * Seeds a small "mesh": istio-system with an `istiod` Deployment (app=istiod); bookinfo and
 * payments labelled istio-injection=enabled; canary labelled istio.io/rev=default; plain without
 * Istio labels. There is no injection webhook, so pods in Istio-enabled namespaces are written as
 * if injected (an `istio-proxy` container and the sidecar.istio.io/status annotation).
 * Nothing else is installed (no CRDs, no webhooks, no Services).
 */
export async function seedMesh(cluster: Cluster, opts: SeedOptions = {}): Promise<SeededWorkload[]> {
    const workloads: SeededWorkload[] = [];
    const namespaces = MESH.map((ns) => ({
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: ns.namespace, labels: ns.labels },
    }));
    await cluster.apply(namespaces);
    // Pods are refused until the namespace's "default" ServiceAccount exists; wait for it so the
    // ReplicaSet controller does not back off.
    for (const ns of MESH) {
        const deadline = Date.now() + 60_000;
        while ((await cluster.kubectl(["get", "sa", "default", "-n", ns.namespace, "-o", "name"], { allowFailure: true })).code !== 0) {
            if (Date.now() > deadline) throw new Error(`no ServiceAccount "default" in namespace ${ns.namespace}`);
            await sleep(100);
        }
    }
    const deployments: object[] = [];
    for (const ns of MESH) {
        const istioEnabled = Object.keys(ns.labels).length > 0;
        for (const d of ns.deployments) {
            workloads.push({ namespace: ns.namespace, name: d.name, replicas: d.replicas, istioEnabled });
            const isIstiod = d.name === "istiod";
            const labels: Record<string, string> = isIstiod ? { app: "istiod", istio: "pilot" } : { app: d.name, version: "v1" };
            const containers: object[] = [
                isIstiod
                    ? { name: "discovery", image: "docker.io/istio/pilot:1.27.0", args: ["discovery"] }
                    : { name: d.name, image: `registry.invalid/istio-ca-fake/${d.name}:1.0` },
            ];
            const annotations: Record<string, string> = {};
            if (istioEnabled) {
                containers.push({ name: "istio-proxy", image: "docker.io/istio/proxyv2:1.27.0", args: ["proxy", "sidecar"] });
                annotations["sidecar.istio.io/status"] = JSON.stringify({ containers: ["istio-proxy"], revision: "default" });
                labels["security.istio.io/tlsMode"] = "istio";
            }
            deployments.push({
                apiVersion: "apps/v1",
                kind: "Deployment",
                metadata: { name: d.name, namespace: ns.namespace, labels: { app: labels.app } },
                spec: {
                    replicas: d.replicas,
                    selector: { matchLabels: { app: labels.app } },
                    template: {
                        metadata: { labels, annotations },
                        spec: { containers, terminationGracePeriodSeconds: 1 },
                    },
                },
            });
        }
    }
    await cluster.apply(deployments);
    if (opts.wait ?? true) {
        const timeout = `${Math.ceil((opts.timeoutMs ?? 120_000) / 1000)}s`;
        await Promise.all(
            workloads.map((w) => cluster.kubectl(["rollout", "status", `deployment/${w.name}`, "-n", w.namespace, `--timeout=${timeout}`])),
        );
    }
    return workloads;
}
