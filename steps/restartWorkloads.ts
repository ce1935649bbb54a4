// Step restart-workloads: every Istio-enabled namespace's Deployments, in parallel, then their rollouts.
import { KubeList, Namespace } from "../kube/kubectl";
import { DeploymentLike } from "./rolloutStatus";
import { StepContext } from "./stepContext";
import { restartDeployments, RolloutWaitSummary, targetsOf, waitForRollouts } from "./deploymentRollouts";
import { meshNamespaces } from "./meshNamespaces";

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
