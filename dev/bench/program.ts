import * as automation from "@pulumi/pulumi/automation";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnCounter } from "../../kube/kubectl";
import { Cluster } from "../../tests/harness/cluster";
import { RealIstiod } from "../../tests/harness/istiod";
import { createTestStack, PROJECT_ROOT, TestStack } from "../../tests/support/engine";
import { inlineProgram } from "../../program/inline";
import { Options } from "./options";
import { progress, secs } from "./progress";
import { Rig } from "./rig";
import { cacertsRoot, restartedSince, settle } from "./api";
import { Mesh, rootCertPublished } from "./mesh";
import { measured } from "./measure";
import { SizeResult } from "./report";

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

export async function createBenchStack(n: number, cluster: Cluster, kubeconfig: string, opts: Options): Promise<TestStack> {
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
export async function programParts(rig: Rig, mesh: Mesh, ts: TestStack, n: number): Promise<Pick<SizeResult, "firstUp" | "up" | "previewMs">> {
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
