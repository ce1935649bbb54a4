// Checks of the target cluster that run while the program is evaluated, in `pulumi preview` and
// before `pulumi up` registers anything: a wrong context, a missing Istio, or an istiod that
// cannot take a multi-root bundle is reported before any key or Secret is touched.
import { Kubectl, KubeList, ToolError } from "./kubectl";
import { MULTIROOT_REQUIREMENTS } from "./rotation";

export interface PreflightTarget {
    kubectl: Kubectl;
    /** How the cluster was chosen, for messages: e.g. `context "prod" of /home/me/.kube/config`. */
    where: string;
    istioNamespace: string;
    istiodSelector: string;
    /** A multi-root bundle is about to be served (zero-downtime rotation phases). */
    needsMultiRoot: boolean;
}

interface EnvVar { name: string; value?: string }
interface DeploymentView {
    metadata: { name: string };
    spec?: { template?: { spec?: { containers?: { name: string; env?: EnvVar[] }[] } } };
}

export class PreflightError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "PreflightError";
    }
}

const NOT_FOUND = /NotFound|not found/;

export async function clusterPreflight(t: PreflightTarget): Promise<void> {
    try {
        await t.kubectl.run(["get", "namespace", t.istioNamespace, "-o", "name"]);
    } catch (err) {
        const message = (err as Error).message;
        if (err instanceof ToolError && NOT_FOUND.test(message) && !/connection|dial|Unable to connect/i.test(message)) {
            throw new PreflightError(`namespace ${t.istioNamespace} (istio-ca:istioNamespace) does not exist in ${t.where}: is Istio installed there, and is this the right cluster?`);
        }
        throw new PreflightError(`cannot reach the Kubernetes API of ${t.where} (istio-ca:kubeconfig / istio-ca:kubeContext): ${message}`);
    }
    const istiods = await t.kubectl.getJson<KubeList<DeploymentView>>(["get", "deployments", "-n", t.istioNamespace, "-l", t.istiodSelector]);
    if (istiods.items.length === 0) {
        throw new PreflightError(`no istiod Deployment matches ${t.istiodSelector} (istio-ca:istiodSelector) in namespace ${t.istioNamespace} of ${t.where}`);
    }
    if (t.needsMultiRoot) {
        const without = istiods.items.filter((d) => {
            const env = (d.spec?.template?.spec?.containers ?? []).flatMap((c) => c.env ?? []);
            return !env.some((e) => e.name === "ISTIO_MULTIROOT_MESH" && e.value === "true");
        });
        if (without.length > 0) {
            throw new PreflightError(
                `this step serves a root-cert.pem with several roots, but istiod Deployment(s) ${without.map((d) => d.metadata.name).join(", ")} in ${t.istioNamespace} ` +
                `lack ISTIO_MULTIROOT_MESH=true: ${MULTIROOT_REQUIREMENTS}. Enable it (e.g. istioctl install --set values.pilot.env.ISTIO_MULTIROOT_MESH=true ` +
                `--set meshConfig.defaultConfig.proxyMetadata.PROXY_CONFIG_XDS_AGENT=true) and restart the workloads, ` +
                `or rotate with the immediate swap instead (bump istio-ca:keyVersion and remove istio-ca:trustedKeyVersions; the mesh breaks until every workload restarted).`);
        }
    }
}
