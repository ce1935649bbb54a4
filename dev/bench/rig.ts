import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { Cluster, ClusterOptions, findBinDir } from "../../tests/harness/cluster";
import { orphans, RealIstiod } from "../../tests/harness/istiod";
import { Options } from "./options";
import { progress } from "./progress";
import { Api } from "./api";

// Instrumented binaries: a private bin dir of symlinks and wrappers (see the module comment).

export const USERS = { istioCa: "istio-ca", istiod: "istiod" } as const;

interface Instrumentation {
    binDir: string;
    tokens: Record<keyof typeof USERS, string>;
}

export function instrumentedBinDir(opts: Options, work: string): Instrumentation {
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
export function simulationSettings(opts: Options): Pick<ClusterOptions, "componentArgs" | "componentEnv" | "kwokOptions"> {
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
export function kubeconfigFor(cluster: Cluster, token: string, file: string): string {
    const text = fs.readFileSync(cluster.kubeconfig, "utf8").replace(`token: ${cluster.token}`, `token: ${token}`);
    fs.writeFileSync(file, text, { mode: 0o600 });
    return file;
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
export interface Rig {
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
export function cpuSeconds({ cluster, istiod }: Rig): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [c, pid] of Object.entries(cluster.pids)) out[c] = processCpu(pid);
    out.istiod = istiod.cpuSeconds();
    out.tools = processCpu("self", true) - istiod.exitedCpuSeconds();
    return out;
}

/**
 * Real istiod for the seeded istiod Deployment, with its own token user (its requests are counted
 * apart from the stack's and the controllers'), its supervisor's watches included. No pilot-agents:
 * the bench measures the rotation's control-plane cost, the proxy checks are off (only Envoy-less
 * agents could run here, and a sample would fail verify-proxies' every-sidecar rule), and on 2
 * shared cores N agents would be N more processes competing with the control plane being measured.
 */
export async function startIstiod(cluster: Cluster, kubeconfig: string): Promise<RealIstiod> {
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
