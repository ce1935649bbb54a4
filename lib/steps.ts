// The four steps that follow a change of `cacerts`, as the manual procedure runs them, but with
// every wait bounded and every check comparing certificates rather than strings. Each step reads
// the cluster with a constant number of list calls per poll (never one call per namespace), and
// restarts namespaces in parallel up to a concurrency bound.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { mapLimit, pollUntil } from "./concurrency";
import { Kubectl, KubeList, Namespace, runTool } from "./kubectl";
import { evaluateProxySecrets, formatProxySecretsReport, summarizeProxySecrets } from "./proxySecrets";
import { evaluateProxyStatus, parseProxyStatus } from "./proxyStatus";
import { checkRootCertConfigMaps, ConfigMapList, formatRootCertReport, NamespaceList, ROOT_CERT_CONFIGMAP } from "./rootCertCheck";
import { DeploymentLike, summarizeRollouts } from "./rollout";
import { StepSettings } from "./stepEnv";

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

/** True on the first poll of each 5-second window: progress lines at a readable pace. */
const everyFiveSeconds = (elapsedMs: number, intervalMs: number): boolean =>
    Math.floor(elapsedMs / 5000) !== Math.floor((elapsedMs - intervalMs) / 5000);

/** A progress gate for polls of varying period: true at most once per `ms`. */
function every(ms: number): () => boolean {
    let last = -Infinity;
    return () => {
        const now = Date.now();
        if (now - last < ms) {
            return false;
        }
        last = now;
        return true;
    };
}

/**
 * Rollout waits poll at most this often: a rollout's end is seen within ~250 ms, not a whole
 * pollIntervalMs, on the critical path (istiod, then the last workload). The poll period also
 * stretches to the duration of the list itself (`adaptive`), so a slow list on a loaded API
 * server (1,000 Deployments) is never re-issued back to back.
 */
const ROLLOUT_POLL_MS = 250;

/** Restarts the Deployments matching `selector` in the given namespaces (one kubectl per namespace). */
async function restartNamespaces(ctx: StepContext, namespaces: string[], selector?: string): Promise<void> {
    let done = 0;
    await mapLimit(namespaces, ctx.settings.concurrency, async (ns) => {
        const args = ["rollout", "restart", "deployment", "-n", ns];
        if (selector) {
            args.push("-l", selector);
        }
        await ctx.kubectl.run(args);
        done++;
        if (namespaces.length > 1 && (done % 10 === 0 || done === namespaces.length)) {
            ctx.log(`restarted ${done}/${namespaces.length} namespaces`);
        }
    });
}

/**
 * Restarts the given Deployments with `kubectl rollout restart -f <list>`: the namespaces are split
 * into at most `concurrency` batches (a namespace is never split), one kubectl process per batch,
 * all batches at once. Same API effect as `kubectl rollout restart deployment -n <ns>` per
 * namespace, but a constant number of processes: one process per namespace cost ~0.1-0.2 CPU-s
 * each, which at 200 namespaces took ~27 s of a 2-core machine away from the control plane that
 * does the rollouts (bench/).
 */
async function restartDeployments(ctx: StepContext, deployments: DeploymentLike[]): Promise<void> {
    const byNamespace = new Map<string, DeploymentLike[]>();
    for (const d of deployments) {
        const ns = d.metadata.namespace ?? "default";
        byNamespace.set(ns, [...(byNamespace.get(ns) ?? []), d]);
    }
    const namespaces = [...byNamespace.keys()];
    const batchCount = Math.max(1, Math.min(ctx.settings.concurrency, namespaces.length));
    const batches: string[][] = Array.from({ length: batchCount }, () => []);
    namespaces.forEach((ns, i) => batches[i % batchCount].push(ns));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "istio-ca-restart-"));
    let done = 0;
    try {
        await mapLimit(batches, batchCount, async (batch, i) => {
            const file = path.join(dir, `batch-${i}.json`);
            const items = batch.flatMap((ns) => byNamespace.get(ns)!.map((d) => ({
                apiVersion: "apps/v1",
                kind: "Deployment",
                metadata: { name: d.metadata.name, namespace: ns },
            })));
            fs.writeFileSync(file, JSON.stringify({ apiVersion: "v1", kind: "List", items }));
            await ctx.kubectl.run(["rollout", "restart", "-f", file]);
            done += batch.length;
            ctx.log(`restarted ${done}/${namespaces.length} namespaces`);
        });
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/** Waits until every target Deployment (`ns/name`) has rolled out; one list per poll. */
async function waitForRollouts(ctx: StepContext, targets: string[], listArgs: string[]): Promise<void> {
    const started = Date.now();
    const progress = every(5000);
    const result = await pollUntil(async () => {
        const list = await ctx.kubectl.getJson<KubeList<DeploymentLike>>(["get", "deployments", ...listArgs]);
        const rollouts = summarizeRollouts(list, targets);
        // A failed rollout (progress deadline exceeded) ends the wait early: waiting will not help.
        return { rollouts, done: rollouts.pending.length === 0 || rollouts.failed.length > 0 };
    }, {
        timeoutMs: ctx.settings.rolloutTimeoutMs,
        intervalMs: Math.min(ctx.settings.pollIntervalMs, ROLLOUT_POLL_MS),
        adaptive: true,
        onProgress: ({ rollouts }, elapsed) => {
            if (progress()) {
                const slow = rollouts.pending.slice(0, 3).map((p) => p.name).join(", ");
                ctx.log(`rollouts: ${rollouts.done.length}/${targets.length} done after ${seconds(elapsed)}${slow ? `; waiting for ${slow}${rollouts.pending.length > 3 ? ", …" : ""}` : ""}`);
            }
        },
    });
    const state = result.state.rollouts;
    if (state.failed.length > 0) {
        throw new StepFailure(`rollout failed for ${state.failed.length} Deployment(s):\n${state.failed.map((f) => `  - ${f.name}: ${f.message}`).join("\n")}\n${RETRY_HINT}`);
    }
    if (result.timedOut) {
        throw new StepFailure(
            `timed out after ${seconds(Date.now() - started)} (istio-ca:rolloutTimeoutSeconds) waiting for ${state.pending.length} of ${targets.length} Deployment(s) to roll out:\n` +
            state.pending.slice(0, 20).map((p) => `  - ${p.name}: ${p.message}`).join("\n") +
            (state.pending.length > 20 ? `\n  … and ${state.pending.length - 20} more` : "") + `\n${RETRY_HINT}`);
    }
    ctx.log(`rollouts: ${targets.length}/${targets.length} done in ${seconds(Date.now() - started)}`);
}

const targetsOf = (deployments: DeploymentLike[]): string[] => deployments.map((d) => `${d.metadata.namespace}/${d.metadata.name}`);

/** a. Restart istiod and wait for its rollout. */
export async function restartIstiod(ctx: StepContext): Promise<{ restarted: string[] }> {
    const { istioNamespace, istiodSelector } = ctx.settings;
    const list = await ctx.kubectl.getJson<KubeList<DeploymentLike>>(["get", "deployments", "-n", istioNamespace, "-l", istiodSelector]);
    if (list.items.length === 0) {
        throw new StepFailure(`no Deployment matches ${istiodSelector} (istio-ca:istiodSelector) in namespace ${istioNamespace} (istio-ca:istioNamespace): is Istio installed in this cluster and context?`);
    }
    const targets = targetsOf(list.items);
    ctx.log(`restarting ${targets.join(", ")}`);
    await restartNamespaces(ctx, [istioNamespace], istiodSelector);
    await waitForRollouts(ctx, targets, ["-n", istioNamespace, "-l", istiodSelector]);
    return { restarted: targets };
}

/** b. Wait until istio-ca-root-cert in every namespace istiod serves holds the new trust bundle. */
export async function waitRootCert(ctx: StepContext): Promise<{ namespaces: number }> {
    const expected = ctx.settings.trustFingerprints;
    if (expected.length === 0) {
        throw new StepFailure("ISTIO_CA_TRUST_FINGERPRINTS must be set for wait-root-cert");
    }
    ctx.log(`waiting for ${ROOT_CERT_CONFIGMAP} to carry ${expected.length} root(s) in every namespace`);
    const result = await pollUntil(async () => {
        const [configMaps, namespaces] = await Promise.all([
            ctx.kubectl.getJson<ConfigMapList>(["get", "configmaps", "-A", "--field-selector", `metadata.name=${ROOT_CERT_CONFIGMAP}`]),
            ctx.kubectl.getJson<NamespaceList>(["get", "namespaces"]),
        ]);
        const check = checkRootCertConfigMaps(configMaps, namespaces, expected);
        return { ...check, done: check.ok };
    }, {
        timeoutMs: ctx.settings.rootCertTimeoutMs,
        intervalMs: ctx.settings.pollIntervalMs,
        onProgress: (s, elapsed) => {
            const ok = s.namespaces.filter((n) => n.status === "ok").length;
            if (everyFiveSeconds(elapsed, ctx.settings.pollIntervalMs)) {
                ctx.log(`${ROOT_CERT_CONFIGMAP}: ${ok}/${s.namespaces.length} namespaces current after ${seconds(elapsed)}`);
            }
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
            throw new StepFailure(`istio-ca:workloadNamespaces names namespaces that do not exist: ${missing.join(", ")}`);
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
export async function restartWorkloads(ctx: StepContext): Promise<{ restartedNamespaces: string[]; deployments: number }> {
    const [namespaceList, deploymentList] = await Promise.all([
        ctx.kubectl.getJson<KubeList<Namespace>>(["get", "namespaces"]),
        ctx.kubectl.getJson<KubeList<DeploymentLike>>(["get", "deployments", "-A"]),
    ]);
    const namespaces = meshNamespaces(namespaceList.items, ctx.settings.istioNamespace, ctx.settings.workloadNamespaces);
    const inMesh = new Set(namespaces);
    const deployments = deploymentList.items.filter((d) => inMesh.has(d.metadata.namespace ?? ""));
    const withDeployments = namespaces.filter((ns) => deployments.some((d) => d.metadata.namespace === ns));
    ctx.log(`restarting ${deployments.length} Deployment(s) in ${withDeployments.length} namespace(s) (${ctx.settings.concurrency} at a time)`);
    await restartDeployments(ctx, deployments);
    await waitForRollouts(ctx, targetsOf(deployments), ["-A"]);
    return { restartedNamespaces: withDeployments, deployments: deployments.length };
}

/** d. `istioctl proxy-status`: every proxy SYNCED, retried until the timeout. */
export async function verifyProxies(ctx: StepContext): Promise<{ proxies: number }> {
    const { settings } = ctx;
    const args = ["proxy-status", "-i", settings.istioNamespace];
    if (settings.kubeconfig) {
        args.push("--kubeconfig", settings.kubeconfig);
    }
    if (settings.context) {
        args.push("--context", settings.context);
    }
    const result = await pollUntil(async () => {
        let report = parseProxyStatus(await runTool(settings.istioctl, args, "istioctl", "istio-ca:istioctlPath"));
        if (!report.syncReported) {
            // istioctl >= 1.27 lists subscriptions by default; `-v 1` brings back per-type sync status.
            report = parseProxyStatus(await runTool(settings.istioctl, [...args, "-v", "1"], "istioctl", "istio-ca:istioctlPath"));
        }
        const evaluation = evaluateProxyStatus(report, { requireSyncStatus: true });
        return { ...evaluation, done: evaluation.ok, proxies: report.proxies.length };
    }, { timeoutMs: settings.proxyStatusTimeoutMs, intervalMs: Math.max(settings.pollIntervalMs, 2000) });
    if (result.timedOut) {
        throw new StepFailure(`proxies not in sync after ${seconds(result.elapsedMs)} (istio-ca:proxyStatusTimeoutSeconds):\n${result.state.summary}\n${RETRY_HINT}`);
    }
    ctx.log(result.state.summary);
    return { proxies: result.state.proxies };
}

interface PodView {
    metadata: { name: string; namespace: string };
    spec?: { containers?: { name: string }[] };
    status?: { phase?: string };
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
    const [namespaceList, podList] = await Promise.all([
        ctx.kubectl.getJson<KubeList<Namespace>>(["get", "namespaces"]),
        ctx.kubectl.getJson<KubeList<PodView>>(["get", "pods", "-A", "--field-selector", "status.phase=Running"]),
    ]);
    const inMesh = new Set(meshNamespaces(namespaceList.items, settings.istioNamespace, settings.workloadNamespaces));
    const pods = podList.items
        .filter((p) => inMesh.has(p.metadata.namespace) && (p.spec?.containers ?? []).some((c) => c.name === "istio-proxy"))
        .map((p) => `${p.metadata.name}.${p.metadata.namespace}`);
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
