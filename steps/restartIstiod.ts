// Step restart-istiod: a new istiod pod signs with what cacerts holds from its start.
import { KubeList } from "../kube/kubectl";
import { DeploymentLike } from "./rolloutStatus";
import { FIRST_NAMES, firstNames } from "./stepOutput";
import { StepContext, StepFailure } from "./stepContext";
import { restartDeployments, RolloutWaitSummary, targetsOf, waitForRollouts } from "./deploymentRollouts";

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
