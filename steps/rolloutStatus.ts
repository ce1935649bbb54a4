// `kubectl rollout status` for Deployments, as a pure function over the Deployment JSON, so the
// verification steps can poll `kubectl get deployments -o json` once for many targets.
//
// Mirrors kubernetes/kubectl `pkg/polymorphichelpers/rollout_status.go` (DeploymentStatusViewer):
//   if generation <= status.observedGeneration:
//     Progressing condition with reason ProgressDeadlineExceeded -> error "exceeded its progress deadline"
//     spec.replicas set and updatedReplicas < spec.replicas       -> "N out of M new replicas have been updated"
//     status.replicas > updatedReplicas                           -> "N old replicas are pending termination"
//     availableReplicas < updatedReplicas                         -> "N of M updated replicas are available"
//     otherwise                                                   -> done
//   else -> "Waiting for deployment spec update to be observed"
// Absent integers count as 0, as in the Go structs. kubectl's optional `--revision` check is not mirrored.

export interface DeploymentCondition {
    type: string;
    status?: string;
    reason?: string;
    message?: string;
}

/** The parts of an apps/v1 Deployment (`kubectl get deployment -o json`) that rollout status reads. */
export interface DeploymentLike {
    metadata: { name: string; namespace?: string; generation?: number };
    spec?: { replicas?: number | null; paused?: boolean | null } | null;
    status?: {
        observedGeneration?: number;
        replicas?: number;
        updatedReplicas?: number;
        availableReplicas?: number;
        conditions?: DeploymentCondition[] | null;
    } | null;
}

export interface RolloutStatus {
    /** True when kubectl would print "successfully rolled out". */
    done: boolean;
    /** True when kubectl would exit with an error (progress deadline exceeded): waiting longer will not help. */
    failed: boolean;
    /** kubectl's message, without the trailing newline. */
    message: string;
}

/** kubectl's `deploymentutil.TimedOutReason`. */
export const PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded";

export function deploymentRolloutStatus(dep: DeploymentLike): RolloutStatus {
    const name = dep.metadata.name;
    const q = JSON.stringify(name); // Go's %q for a plain name
    const generation = dep.metadata.generation ?? 0;
    const st = dep.status ?? {};
    const observed = st.observedGeneration ?? 0;
    if (generation <= observed) {
        const progressing = (st.conditions ?? []).find((c) => c.type === "Progressing");
        if (progressing && progressing.reason === PROGRESS_DEADLINE_EXCEEDED) {
            return { done: false, failed: true, message: `deployment ${q} exceeded its progress deadline` };
        }
        const updated = st.updatedReplicas ?? 0;
        const replicas = st.replicas ?? 0;
        const available = st.availableReplicas ?? 0;
        const desired = dep.spec?.replicas;
        if (desired !== undefined && desired !== null && updated < desired) {
            return {
                done: false,
                failed: false,
                message: `Waiting for deployment ${q} rollout to finish: ${updated} out of ${desired} new replicas have been updated...`,
            };
        }
        if (replicas > updated) {
            return {
                done: false,
                failed: false,
                message: `Waiting for deployment ${q} rollout to finish: ${replicas - updated} old replicas are pending termination...`,
            };
        }
        if (available < updated) {
            return {
                done: false,
                failed: false,
                message: `Waiting for deployment ${q} rollout to finish: ${available} of ${updated} updated replicas are available...`,
            };
        }
        return { done: true, failed: false, message: `deployment ${q} successfully rolled out` };
    }
    return { done: false, failed: false, message: "Waiting for deployment spec update to be observed..." };
}

export interface RolloutSummary {
    /** Targets (`namespace/name`) that are fully rolled out. */
    done: string[];
    /** Targets still rolling out: poll again. */
    pending: { name: string; message: string }[];
    /** Targets that will not finish by waiting: progress deadline exceeded, or no such Deployment. */
    failed: { name: string; message: string }[];
}

function parseTarget(target: string): { namespace: string; name: string } {
    const m = /^([^/\s]+)\/([^/\s]+)$/.exec(target.trim());
    if (!m) {
        throw new Error(`rollout target ${JSON.stringify(target)} is not of the form namespace/name`);
    }
    return { namespace: m[1], name: m[2] };
}

export interface SummarizeOptions {
    /**
     * What a target with no Deployment is: `failed` (default: read from a complete list) or
     * `pending` (from a watch whose initial listing may still be arriving).
     */
    notFound?: "failed" | "pending";
    /** Targets seen deleted (watch): failed, whatever `notFound` says. */
    deleted?: ReadonlySet<string>;
}

/**
 * Rollout state of each target (`namespace/name`) among the given Deployments (an array, a Map's
 * values, or the `{items}` of `kubectl get deployments -A -o json`). A target with no Deployment
 * is `failed` (see SummarizeOptions).
 */
export function summarizeRollouts(
    deployments: Iterable<DeploymentLike> | { items: DeploymentLike[] },
    targets: string[],
    opts: SummarizeOptions = {},
): RolloutSummary {
    const list: Iterable<DeploymentLike> = "items" in deployments ? deployments.items ?? [] : deployments;
    const index = new Map<string, DeploymentLike>();
    for (const d of list) {
        index.set(`${d.metadata.namespace ?? "default"}/${d.metadata.name}`, d);
    }
    const summary: RolloutSummary = { done: [], pending: [], failed: [] };
    for (const target of [...new Set(targets)]) {
        const { namespace, name } = parseTarget(target);
        const key = `${namespace}/${name}`;
        const dep = index.get(key);
        if (!dep) {
            if (opts.deleted?.has(key)) {
                summary.failed.push({ name: key, message: `deployment ${JSON.stringify(name)} in namespace ${JSON.stringify(namespace)} was deleted while rolling out` });
            } else if (opts.notFound === "pending") {
                summary.pending.push({ name: key, message: `deployment ${JSON.stringify(name)} not seen yet in namespace ${JSON.stringify(namespace)}` });
            } else {
                summary.failed.push({ name: key, message: `deployment ${JSON.stringify(name)} not found in namespace ${JSON.stringify(namespace)}` });
            }
            continue;
        }
        const st = deploymentRolloutStatus(dep);
        if (st.done) {
            summary.done.push(key);
        } else if (st.failed) {
            summary.failed.push({ name: key, message: st.message });
        } else {
            summary.pending.push({ name: key, message: st.message });
        }
    }
    return summary;
}

// --- restarting ---------------------------------------------------------------------------------

/** kubectl's annotation: `kubectl rollout restart` sets it on the pod template to the current time. */
export const RESTARTED_AT = "kubectl.kubernetes.io/restartedAt";

/**
 * The patch `kubectl rollout restart` sends (the pod template's restartedAt annotation, RFC 3339
 * with seconds, as Go's time.RFC3339 prints it in UTC). Sent as ONE request per Deployment with
 * `kubectl patch -f`: rollout restart GETs every object first, doubling the requests.
 */
export function restartPatch(now: Date): string {
    const stamp = now.toISOString().replace(/\.\d{3}Z$/, "Z");
    return JSON.stringify({ spec: { template: { metadata: { annotations: { [RESTARTED_AT]: stamp } } } } });
}

export interface RestartPlan {
    /** At most `concurrency` batches of Deployments (`namespace/name`); a namespace is never split. */
    batches: { namespace: string; name: string }[][];
    namespaces: string[];
    /** Paused Deployments: `kubectl rollout restart` refuses them, and their rollout would never finish. */
    paused: string[];
}

/** Splits the Deployments to restart into batches, one kubectl process each (see RestartPlan). */
export function planRestart(deployments: DeploymentLike[], concurrency: number): RestartPlan {
    const byNamespace = new Map<string, { namespace: string; name: string }[]>();
    const paused: string[] = [];
    for (const d of deployments) {
        const namespace = d.metadata.namespace ?? "default";
        if (d.spec?.paused) {
            paused.push(`${namespace}/${d.metadata.name}`);
        }
        byNamespace.set(namespace, [...(byNamespace.get(namespace) ?? []), { namespace, name: d.metadata.name }]);
    }
    const namespaces = [...byNamespace.keys()];
    const count = Math.max(1, Math.min(Math.floor(concurrency) || 1, namespaces.length));
    const batches: { namespace: string; name: string }[][] = Array.from({ length: count }, () => []);
    namespaces.forEach((ns, i) => batches[i % count].push(...byNamespace.get(ns)!));
    return { batches: batches.filter((b) => b.length > 0), namespaces, paused };
}
