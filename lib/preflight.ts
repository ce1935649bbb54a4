// Checks of the target cluster that run while the program is evaluated, in `pulumi preview` and
// before `pulumi up` registers anything: a wrong context, a missing Istio, or an istiod that
// cannot take a multi-root bundle is reported before any key or Secret is touched. The CA Secrets
// read here (cacerts, istio-ca-secret) stay in memory: they decide takeover and generation 0.
import { Kubectl, KubeList, ToolError } from "./kubectl";
import { MULTIROOT_REQUIREMENTS } from "./rotation";

export interface PreflightTarget {
    kubectl: Kubectl;
    /** How the cluster was chosen, for messages: e.g. `context "prod" of /home/me/.kube/config`. */
    where: string;
    istioNamespace: string;
    istiodSelector: string;
}

interface EnvVar { name: string; value?: string }
interface DeploymentView {
    metadata: { name: string };
    spec?: { template?: { spec?: { containers?: { name: string; env?: EnvVar[] }[] } } };
}

/** A Secret of the Istio namespace as the cluster holds it now, values decoded. Never logged. */
export interface ExistingSecret {
    name: string;
    resourceVersion?: string;
    /** File name -> decoded value (e.g. "root-cert.pem"). */
    data: Record<string, string>;
}

/** What the program needs to know about the cluster before it decides what to apply. */
export interface ClusterFacts {
    /** How the cluster was chosen, for messages. */
    where: string;
    /** Names of the istiod Deployments (istio-ca:istiodSelector). */
    istiods: string[];
    /** Those without ISTIO_MULTIROOT_MESH=true. */
    istiodsWithoutMultiRoot: string[];
    /** `cacerts` as it is now: absent on a mesh that runs on istiod's own CA (or before a takeover). */
    cacerts?: ExistingSecret;
    /** `istio-ca-secret`: istiod's self-signed CA (root generation 0). */
    istioCaSecret?: ExistingSecret;
}

export const CACERTS = "cacerts";
export const ISTIO_CA_SECRET = "istio-ca-secret";

interface SecretView {
    kind?: string;
    metadata: { name: string; resourceVersion?: string };
    data?: Record<string, string>;
    items?: SecretView[];
}

/** Reads the two CA Secrets of the Istio namespace in one call; absent ones are left out. */
export async function readCaSecrets(kubectl: Kubectl, namespace: string): Promise<Pick<ClusterFacts, "cacerts" | "istioCaSecret">> {
    const out = await kubectl.run(["get", "secret", CACERTS, ISTIO_CA_SECRET, "-n", namespace, "--ignore-not-found", "-o", "json"]);
    const facts: Pick<ClusterFacts, "cacerts" | "istioCaSecret"> = {};
    if (out.trim() === "") {
        return facts;
    }
    const parsed = JSON.parse(out) as SecretView;
    for (const item of parsed.kind === "List" ? parsed.items ?? [] : [parsed]) {
        const secret: ExistingSecret = {
            name: item.metadata.name,
            resourceVersion: item.metadata.resourceVersion,
            data: Object.fromEntries(Object.entries(item.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")])),
        };
        if (secret.name === CACERTS) {
            facts.cacerts = secret;
        } else if (secret.name === ISTIO_CA_SECRET) {
            facts.istioCaSecret = secret;
        }
    }
    return facts;
}

export class PreflightError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "PreflightError";
    }
}

const NOT_FOUND = /NotFound|not found/;

/**
 * Reads what the program decides on: the cluster is reachable, the Istio namespace and istiod
 * exist, which istiods accept a multi-root bundle, and the CA Secrets as they are now.
 */
export async function inspectCluster(t: PreflightTarget): Promise<ClusterFacts> {
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
    const withoutMultiRoot = istiods.items.filter((d) => {
        const env = (d.spec?.template?.spec?.containers ?? []).flatMap((c) => c.env ?? []);
        return !env.some((e) => e.name === "ISTIO_MULTIROOT_MESH" && e.value === "true");
    });
    return {
        where: t.where,
        istiods: istiods.items.map((d) => d.metadata.name),
        istiodsWithoutMultiRoot: withoutMultiRoot.map((d) => d.metadata.name),
        ...(await readCaSecrets(t.kubectl, t.istioNamespace)),
    };
}

/** The refusal when a multi-root bundle is about to be served to an istiod that cannot take it. */
export function multiRootProblem(facts: ClusterFacts, istioNamespace: string): string | undefined {
    if (facts.istiodsWithoutMultiRoot.length === 0) {
        return undefined;
    }
    return `this step serves a root-cert.pem with several roots, but istiod Deployment(s) ${facts.istiodsWithoutMultiRoot.join(", ")} in ${istioNamespace} ` +
        `lack ISTIO_MULTIROOT_MESH=true: ${MULTIROOT_REQUIREMENTS}. Enable it (e.g. istioctl install --set values.pilot.env.ISTIO_MULTIROOT_MESH=true ` +
        `--set meshConfig.defaultConfig.proxyMetadata.PROXY_CONFIG_XDS_AGENT=true) and restart the workloads, ` +
        `or rotate with the immediate swap instead (bump istio-ca:keyVersion and remove istio-ca:trustedKeyVersions; the mesh breaks until every workload restarted).`;
}
