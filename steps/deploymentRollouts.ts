// Restarting Deployments and waiting for their rollouts: what restart-istiod and restart-workloads
// share.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { mapLimit } from "../kube/concurrency";
import { watchUntil } from "../kube/kubeWatch";
import { DeploymentLike, planRestart, restartPatch, RolloutSummary, summarizeRollouts } from "./rolloutStatus";
import { firstNames } from "./stepOutput";
import { RETRY_HINT, seconds, StepContext, StepFailure, watchTarget } from "./stepContext";

const namespaceOf = (target: string): string => target.slice(0, target.indexOf("/"));

/**
 * Restarts the given Deployments as `kubectl rollout restart` does (the pod template's restartedAt
 * annotation, same field manager) with `kubectl patch -f <list>`: ONE request per Deployment
 * (rollout restart GETs each one first), and a constant number of processes: the namespaces are
 * split into at most `concurrency` batches (a namespace is never split), one kubectl each, all at
 * once. One process per namespace cost ~0.1-0.2 CPU-s each, which at 200 namespaces took ~27 s of a
 * 2-core machine away from the control plane doing the rollouts (bench/).
 */
export async function restartDeployments(ctx: StepContext, deployments: DeploymentLike[]): Promise<void> {
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
export async function waitForRollouts(ctx: StepContext, targets: string[], listArgs: string[]): Promise<RolloutWaitSummary> {
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

export const targetsOf = (deployments: DeploymentLike[]): string[] => deployments.map((d) => `${d.metadata.namespace}/${d.metadata.name}`);
