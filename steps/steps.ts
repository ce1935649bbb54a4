// The four steps that follow a change of `cacerts`, as the manual procedure runs them, but with
// every wait bounded and every check comparing certificates rather than strings. Each step reads
// the cluster with a constant number of list calls (never one call per namespace), waits on ONE
// kubectl watch rather than re-listing (kube/kubeWatch.ts), and restarts in parallel up to a
// concurrency bound.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { mapLimit, pollUntil } from "../kube/concurrency";
import { Kubectl, KubeList, Namespace, runTool } from "../kube/kubectl";
import { watchUntil, WatchTarget } from "../kube/kubeWatch";
import { evaluateProxySecrets, formatProxySecretsReport, summarizeProxySecrets } from "./verify/proxySecrets";
import { evaluateProxyStatus, parseProxyStatus } from "./verify/proxyStatus";
import { checkRootCertConfigMaps, ConfigMapList, formatRootCertReport, NamespaceList, ROOT_CERT_CONFIGMAP, RootCertCheckResult } from "./rootCertCheck";
import { DeploymentLike, planRestart, restartPatch, RolloutSummary, summarizeRollouts } from "./rolloutStatus";
import { StepSettings } from "./stepEnv";
import { FIRST_NAMES, firstNames } from "./stepOutput";

export class StepFailure extends Error {
    constructor(message: string) {
        super(message);
        this.name = "StepFailure";
    }
}

export interface StepContext {
    settings: StepSettings;
    kubectl: Kubectl;
    /** Progress for a person (stderr). */
    log: (line: string) => void;
}

const RETRY_HINT = "Fix the cause (or raise the timeout in stack config), then run `pulumi up` again: this step runs again.";

const seconds = (ms: number): string => `${Math.round(ms / 1000)}s`;

/** How the steps' watches reach the cluster: the same kubectl, kubeconfig and context as every call. */
const watchTarget = (s: StepSettings): WatchTarget => ({ binary: s.kubectl, kubeconfig: s.kubeconfig, context: s.context });

const namespaceOf = (target: string): string => target.slice(0, target.indexOf("/"));

/**
 * Restarts the given Deployments as `kubectl rollout restart` does (the pod template's restartedAt
 * annotation, same field manager) with `kubectl patch -f <list>`: ONE request per Deployment
 * (rollout restart GETs each one first), and a constant number of processes: the namespaces are
 * split into at most `concurrency` batches (a namespace is never split), one kubectl each, all at
 * once. One process per namespace cost ~0.1-0.2 CPU-s each, which at 200 namespaces took ~27 s of a
 * 2-core machine away from the control plane doing the rollouts (bench/).
 */
async function restartDeployments(ctx: StepContext, deployments: DeploymentLike[]): Promise<void> {
    const plan = planRestart(deployments, ctx.settings.concurrency);
    if (plan.paused.length > 0) {
        throw new StepFailure(
            `cannot restart paused Deployment(s) (spec.paused: kubectl rollout restart refuses them, and their rollout would never finish): ${firstNames(plan.paused)}.\n` +
            `Resume them (kubectl rollout resume deployment/<name> -n <namespace>) or leave their namespaces out (istio-ca:workloadNamespaces). ${RETRY_HINT}`);
    }
    const patch = restartPatch(new Date());
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "istio-ca-restart-"));
    let restarted = 0;
    let namespacesDone = 0;
    try {
        await mapLimit(plan.batches, plan.batches.length, async (batch, i) => {
            const file = path.join(dir, `batch-${i}.json`);
            const items = batch.map(({ namespace, name }) => ({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name, namespace } }));
            fs.writeFileSync(file, JSON.stringify({ apiVersion: "v1", kind: "List", items }));
            await ctx.kubectl.run(["patch", "-f", file, "--type=strategic", "--field-manager=kubectl-rollout", "-p", patch, "-o", "name"]);
            restarted += batch.length;
            namespacesDone += new Set(batch.map((d) => d.namespace)).size;
            if (plan.batches.length > 1) {
                ctx.log(`restarted ${restarted}/${deployments.length} Deployments (${namespacesDone}/${plan.namespaces.length} namespaces)`);
            }
        });
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

export interface RolloutWaitSummary {
    /** The last Deployments to finish, and when (ms after the wait began). */
    slowest: { name: string; ms: number }[];
}

/** Waits until every target Deployment (`ns/name`) has rolled out: ONE kubectl watch for the whole wait. */
async function waitForRollouts(ctx: StepContext, targets: string[], listArgs: string[]): Promise<RolloutWaitSummary> {
    if (targets.length === 0) {
        return { slowest: [] };
    }
    const started = Date.now();
    const doneAt = new Map<string, number>();
    const namespaceCount = new Set(targets.map(namespaceOf)).size;
    const result = await watchUntil<DeploymentLike, { rollouts: RolloutSummary; done: boolean }>(watchTarget(ctx.settings), ["get", "deployments", ...listArgs], {
        key: (d) => `${d.metadata.namespace ?? "default"}/${d.metadata.name}`,
        evaluate: (objects, deleted) => {
            const rollouts = summarizeRollouts(objects.values(), targets, { notFound: "pending", deleted });
            const now = Date.now() - started;
            for (const t of rollouts.done) {
                if (!doneAt.has(t)) doneAt.set(t, now);
            }
            // A failed rollout (progress deadline exceeded, Deployment deleted) ends the wait early: waiting will not help.
            return { rollouts, done: rollouts.pending.length === 0 || rollouts.failed.length > 0 };
        },
        timeoutMs: ctx.settings.rolloutTimeoutMs,
        onProgress: ({ rollouts }, elapsed) => {
            const pendingNamespaces = new Set(rollouts.pending.map((p) => namespaceOf(p.name))).size;
            const slow = rollouts.pending.slice(0, 3).map((p) => p.name).join(", ");
            ctx.log(`rollouts: ${rollouts.done.length}/${targets.length} Deployments, ${namespaceCount - pendingNamespaces}/${namespaceCount} namespaces done after ${seconds(elapsed)}` +
                `${slow ? `; waiting for ${slow}${rollouts.pending.length > 3 ? `, … (${rollouts.pending.length})` : ""}` : ""}`);
        },
    });
    const state = result.state.rollouts;
    if (state.failed.length > 0) {
        throw new StepFailure(`rollout failed for ${state.failed.length} Deployment(s):\n${state.failed.slice(0, 20).map((f) => `  - ${f.name}: ${f.message}`).join("\n")}` +
            (state.failed.length > 20 ? `\n  … and ${state.failed.length - 20} more` : "") + `\n${RETRY_HINT}`);
    }
    if (result.timedOut) {
        throw new StepFailure(
            `timed out after ${seconds(Date.now() - started)} (istio-ca:rolloutTimeoutSeconds) waiting for ${state.pending.length} of ${targets.length} Deployment(s) to roll out:\n` +
            state.pending.slice(0, 20).map((p) => `  - ${p.name}: ${p.message}`).join("\n") +
            (state.pending.length > 20 ? `\n  … and ${state.pending.length - 20} more` : "") + `\n${RETRY_HINT}`);
    }
    const slowest = [...doneAt].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([name, ms]) => ({ name, ms }));
    ctx.log(`rollouts: ${targets.length}/${targets.length} done in ${seconds(Date.now() - started)}` +
        (slowest.length > 0 ? ` (last: ${slowest.map((s) => `${s.name} ${(s.ms / 1000).toFixed(1)}s`).join(", ")})` : ""));
    return { slowest };
}

const targetsOf = (deployments: DeploymentLike[]): string[] => deployments.map((d) => `${d.metadata.namespace}/${d.metadata.name}`);

/** a. Restart istiod and wait for its rollout. */
export async function restartIstiod(ctx: StepContext): Promise<{ restarted: string[]; count: number } & RolloutWaitSummary> {
    const { istioNamespace, istiodSelector } = ctx.settings;
    const list = await ctx.kubectl.getJson<KubeList<DeploymentLike>>(["get", "deployments", "-n", istioNamespace, "-l", istiodSelector]);
    if (list.items.length === 0) {
        throw new StepFailure(`no Deployment matches ${istiodSelector} (istio-ca:istiodSelector) in namespace ${istioNamespace} (istio-ca:istioNamespace): is Istio installed in this cluster and context?`);
    }
    const targets = targetsOf(list.items);
    ctx.log(`restarting ${firstNames(targets)}`);
    await restartDeployments(ctx, list.items);
    const { slowest } = await waitForRollouts(ctx, targets, ["-n", istioNamespace, "-l", istiodSelector]);
    return { restarted: targets.slice(0, FIRST_NAMES), count: targets.length, slowest };
}

/** b. Wait until istio-ca-root-cert in every namespace istiod serves holds the new trust bundle. */
export async function waitRootCert(ctx: StepContext): Promise<{ namespaces: number }> {
    const expected = ctx.settings.trustFingerprints;
    if (expected.length === 0) {
        throw new StepFailure("ISTIO_CA_TRUST_FINGERPRINTS must be set for wait-root-cert");
    }
    ctx.log(`waiting for ${ROOT_CERT_CONFIGMAP} to carry ${expected.length} root(s) in every namespace`);
    const readNamespaces = (): Promise<NamespaceList> => ctx.kubectl.getJson<NamespaceList>(["get", "namespaces"]);
    let namespaces = await readNamespaces();
    // One watch of the ConfigMaps of all namespaces; the namespace list is read again before the
    // verdict and every 10 s (a namespace created or deleted meanwhile).
    type ConfigMap = ConfigMapList["items"][number];
    const result = await watchUntil<ConfigMap, RootCertCheckResult & { done: boolean }>(watchTarget(ctx.settings),
        ["get", "configmaps", "-A", "--field-selector", `metadata.name=${ROOT_CERT_CONFIGMAP}`], {
            key: (cm) => cm.metadata.namespace ?? "",
            evaluate: (objects) => {
                const check = checkRootCertConfigMaps({ items: [...objects.values()] }, namespaces, expected);
                return { ...check, done: check.ok };
            },
            refresh: async () => {
                namespaces = await readNamespaces();
            },
            refreshEveryMs: 10_000,
            timeoutMs: ctx.settings.rootCertTimeoutMs,
            onProgress: (s, elapsed) => {
                const ok = s.namespaces.filter((n) => n.status === "ok").length;
                ctx.log(`${ROOT_CERT_CONFIGMAP}: ${ok}/${s.namespaces.length} namespaces current after ${seconds(elapsed)}`);
            },
        });
    if (result.timedOut) {
        throw new StepFailure(
            `timed out after ${seconds(result.elapsedMs)} (istio-ca:rootCertTimeoutSeconds) waiting for ${ROOT_CERT_CONFIGMAP} to carry the new trust bundle.\n` +
            `${formatRootCertReport(result.state)}\n` +
            `istiod writes this ConfigMap; check that it runs and reads the new cacerts (kubectl logs -n ${ctx.settings.istioNamespace} -l ${ctx.settings.istiodSelector}). ${RETRY_HINT}`);
    }
    ctx.log(`${ROOT_CERT_CONFIGMAP}: all ${result.state.namespaces.length} namespaces carry the new bundle (${seconds(result.elapsedMs)})`);
    return { namespaces: result.state.namespaces.length };
}

/** Namespaces with Istio injection: the explicit list, or the labels istiod's injector uses. */
export function meshNamespaces(namespaces: Namespace[], istioNamespace: string, explicit?: string[]): string[] {
    const live = namespaces.filter((n) => n.status?.phase !== "Terminating");
    if (explicit) {
        const existing = new Set(live.map((n) => n.metadata.name));
        const missing = explicit.filter((n) => !existing.has(n));
        if (missing.length > 0) {
            throw new StepFailure(`istio-ca:workloadNamespaces names namespaces that do not exist: ${firstNames(missing)}`);
        }
        return [...explicit].sort();
    }
    return live
        .filter((n) => n.metadata.name !== istioNamespace)
        .filter((n) => {
            const labels = n.metadata.labels ?? {};
            if (labels["istio-injection"] === "disabled") {
                return false;
            }
            return labels["istio-injection"] === "enabled" || labels["istio.io/rev"] !== undefined;
        })
        .map((n) => n.metadata.name)
        .sort();
}

/** c. Restart the Deployments of every Istio-enabled namespace, in parallel, and wait for them all. */
export async function restartWorkloads(ctx: StepContext): Promise<{ restartedNamespaces: string[]; deployments: number } & RolloutWaitSummary> {
    const [namespaceList, deploymentList] = await Promise.all([
        ctx.kubectl.getJson<KubeList<Namespace>>(["get", "namespaces"]),
        ctx.kubectl.getJson<KubeList<DeploymentLike>>(["get", "deployments", "-A"]),
    ]);
    const namespaces = meshNamespaces(namespaceList.items, ctx.settings.istioNamespace, ctx.settings.workloadNamespaces);
    const inMesh = new Set(namespaces);
    const deployments = deploymentList.items.filter((d) => inMesh.has(d.metadata.namespace ?? ""));
    const withDeployments = namespaces.filter((ns) => deployments.some((d) => d.metadata.namespace === ns));
    ctx.log(`restarting ${deployments.length} Deployment(s) in ${withDeployments.length} namespace(s) (up to ${ctx.settings.concurrency} kubectl processes at once)`);
    await restartDeployments(ctx, deployments);
    const { slowest } = await waitForRollouts(ctx, targetsOf(deployments), ["-A"]);
    return { restartedNamespaces: withDeployments, deployments: deployments.length, slowest };
}

interface PodView {
    metadata: { name: string; namespace: string; deletionTimestamp?: string };
    spec?: { containers?: { name: string }[] };
    status?: { phase?: string };
}

/** `pod.namespace` (istioctl's proxy names) of every running pod with a sidecar in the mesh namespaces. */
async function meshProxies(ctx: StepContext): Promise<string[]> {
    const [namespaceList, podList] = await Promise.all([
        ctx.kubectl.getJson<KubeList<Namespace>>(["get", "namespaces"]),
        ctx.kubectl.getJson<KubeList<PodView>>(["get", "pods", "-A", "--field-selector", "status.phase=Running"]),
    ]);
    const inMesh = new Set(meshNamespaces(namespaceList.items, ctx.settings.istioNamespace, ctx.settings.workloadNamespaces));
    return podList.items
        .filter((p) => inMesh.has(p.metadata.namespace) && !p.metadata.deletionTimestamp && (p.spec?.containers ?? []).some((c) => c.name === "istio-proxy"))
        .map((p) => `${p.metadata.name}.${p.metadata.namespace}`);
}

/**
 * d. `istioctl proxy-status`: every sidecar of the mesh namespaces connected to istiod and every
 * proxy SYNCED, retried until the timeout. (An empty list is no proof: a missing proxy is a problem.)
 */
export async function verifyProxies(ctx: StepContext): Promise<{ proxies: number }> {
    const { settings } = ctx;
    const expectedProxies = await meshProxies(ctx);
    const args = ["proxy-status", "-i", settings.istioNamespace];
    if (settings.kubeconfig) {
        args.push("--kubeconfig", settings.kubeconfig);
    }
    if (settings.context) {
        args.push("--context", settings.context);
    }
    if (settings.istioctlXdsAddress) {
        args.push("--xds-address", settings.istioctlXdsAddress);
    }
    const result = await pollUntil(async () => {
        let report = parseProxyStatus(await runTool(settings.istioctl, args, "istioctl", "istio-ca:istioctlPath"));
        if (!report.syncReported) {
            // istioctl >= 1.27 lists subscriptions by default; `-v 1` brings back per-type sync status.
            report = parseProxyStatus(await runTool(settings.istioctl, [...args, "-v", "1"], "istioctl", "istio-ca:istioctlPath"));
        }
        const evaluation = evaluateProxyStatus(report, { requireSyncStatus: true, expectedProxies });
        return { ...evaluation, done: evaluation.ok, proxies: report.proxies.length };
    }, { timeoutMs: settings.proxyStatusTimeoutMs, intervalMs: Math.max(settings.pollIntervalMs, 2000) });
    if (result.timedOut) {
        throw new StepFailure(`proxies not in sync after ${seconds(result.elapsedMs)} (istio-ca:proxyStatusTimeoutSeconds):\n${result.state.summary}\n${RETRY_HINT}`);
    }
    ctx.log(result.state.summary);
    return { proxies: result.state.proxies };
}

/**
 * e. The gate between rotation phases: every Istio-enabled workload's certificate was issued by the
 * current intermediate and its proxy trusts exactly root-cert.pem (`istioctl proxy-config secret`,
 * one call per pod: that is the only place a proxy's certificates can be read).
 */
export async function verifyWorkloadCerts(ctx: StepContext): Promise<{ workloads: number }> {
    const { settings } = ctx;
    if (!settings.signingCertPem || !settings.trustBundlePem) {
        throw new StepFailure("ISTIO_CA_SIGNING_CERT_PEM and ISTIO_CA_TRUST_BUNDLE_PEM must be set for verify-workload-certs");
    }
    const pods = await meshProxies(ctx);
    ctx.log(`checking the certificates of ${pods.length} proxies`);
    const expected = { signingCertPem: settings.signingCertPem, trustBundlePem: settings.trustBundlePem };
    const globalArgs = [
        ...(settings.kubeconfig ? ["--kubeconfig", settings.kubeconfig] : []),
        ...(settings.context ? ["--context", settings.context] : []),
        "-i", settings.istioNamespace,
    ];
    const result = await pollUntil(async () => {
        const statuses = await mapLimit(pods, settings.concurrency, async (pod) => {
            const output = await runTool(settings.istioctl, ["proxy-config", "secret", pod, "-o", "json", ...globalArgs], "istioctl", "istio-ca:istioctlPath")
                .catch((err: Error) => err.message);
            return evaluateProxySecrets(pod, output, expected);
        });
        const summary = summarizeProxySecrets(statuses);
        return { statuses, summary, done: summary.ok };
    }, {
        timeoutMs: settings.workloadCertTimeoutMs,
        intervalMs: Math.max(settings.pollIntervalMs, 5000),
        onProgress: ({ summary }, elapsed) => ctx.log(`workload certificates: ${summary.ready}/${summary.total} current after ${seconds(elapsed)}`),
    });
    if (result.timedOut) {
        throw new StepFailure(
            `after ${seconds(result.elapsedMs)} (istio-ca:workloadCertTimeoutSeconds) ${result.state.summary.pending.length} of ${pods.length} workloads ` +
            `do not yet hold a certificate from the current intermediate and the current trust bundle:\n` +
            `${formatProxySecretsReport(result.state.statuses, { onlyProblems: true })}\n` +
            `Restart those workloads (kubectl rollout restart) or wait for them to re-sign; do not start the next rotation phase before this passes. ${RETRY_HINT}`);
    }
    ctx.log(`all ${pods.length} workloads hold certificates from the current intermediate`);
    return { workloads: pods.length };
}
