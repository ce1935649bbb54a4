import { mapLimit, sleep } from "../../kube/concurrency";
import { DeploymentLike, deploymentRolloutStatus } from "../../steps/rolloutStatus";
import { Cluster } from "../../tests/harness/cluster";
import { Options } from "./options";
import { progress, secs } from "./progress";
import { Rig } from "./rig";
import { Api, settle, waitRolledOut } from "./api";
import { Mesh, rootCertPublished } from "./mesh";
import { measured, PartResult } from "./measure";
import { SizeResult } from "./report";

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

export interface Limit {
    /** istiod twice, then three workloads. */
    samplesMs: number[];
    istiodMs: number;
    overheadMs: number;
    limitMs: number;
}

/**
 * istiod, then the slowest single workload, everything else in parallel. istiod's rollout is
 * measured as it is (its pod turns Ready when the real istiod answers /ready). A workload's
 * rollout (replicas 1, maxSurge 1) = control-plane overhead + the new pod's readiness delay (delay
 * + uniform jitter), and the slowest of many draws the maximum jitter:
 *   limit = istiod + overhead + delay + jitter,
 * istiod = mean(istiod rollouts), overhead = mean(workload rollouts) − (delay + jitter/2).
 */
async function measureLimit(api: Api, mesh: Mesh, opts: Options): Promise<Limit> {
    const workloads = [mesh.workloads[0], mesh.workloads[Math.floor(mesh.workloads.length / 2)], mesh.workloads[mesh.workloads.length - 1]];
    const samplesMs: number[] = [];
    for (const t of [mesh.istiod, mesh.istiod, ...workloads]) {
        samplesMs.push(await singleRollout(api, t));
        await settle(api, mesh.all, mesh.all.length);
    }
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    const istiodMs = mean(samplesMs.slice(0, 2));
    const overheadMs = Math.max(0, mean(samplesMs.slice(2)) - (opts.delayMs + opts.jitterMs / 2));
    const limitMs = istiodMs + overheadMs + opts.delayMs + opts.jitterMs;
    return { samplesMs, istiodMs, overheadMs, limitMs };
}

// (a) the manual procedure, kubectl processes in turn

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

// (b) the program

/** The limit, (a) and (c), each from rest, with istiod up and its ConfigMaps published before each. */
export async function baselineParts(rig: Rig, mesh: Mesh, opts: Options, n: number): Promise<Pick<SizeResult, "limit" | "manual" | "floor">> {
    progress(`N=${n}: physical limit: single rollouts, alone`);
    const limit = await measureLimit(rig.api, mesh, opts);
    progress(`N=${n}: single rollouts ${limit.samplesMs.map(secs).join(", ")}; istiod ${secs(limit.istiodMs)}, workload overhead ${secs(limit.overheadMs)}; limit ${secs(limit.limitMs)}`);

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
