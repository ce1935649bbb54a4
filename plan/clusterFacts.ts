// Checks of the target cluster that run while the program is evaluated, in `pulumi preview` and
// before `pulumi up` registers anything: a wrong context, a missing Istio, or an istiod that
// cannot take a multi-root bundle is reported before any key or Secret is touched. The CA Secrets
// read here (cacerts, istio-ca-secret) stay in memory: they decide takeover and generation 0.
import { parse as parseYaml } from "yaml";
import { Kubectl, KubeList, ToolError } from "../kube/kubectl";
import { MULTIROOT_REQUIREMENTS } from "./rotation";
import { CACERTS } from "../common/cacertsFiles";

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
    /** The Secret's type (Opaque, kubernetes.io/tls): immutable, it decides the layout cacerts keeps. */
    type?: string;
    annotations?: Record<string, string>;
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
    /**
     * PROXY_CONFIG_XDS_AGENT=true in the mesh config's defaultConfig.proxyMetadata (ConfigMap
     * `istio`): "unknown" when there is no such ConfigMap (revisioned installs, other setups).
     */
    proxyXdsAgent?: "enabled" | "disabled" | "unknown";
    /** `cacerts` as it is now: absent on a mesh that runs on istiod's own CA (or before a takeover). */
    cacerts?: ExistingSecret;
    /** `istio-ca-secret`: istiod's self-signed CA (root generation 0). */
    istioCaSecret?: ExistingSecret;
    /** The backup named by istio-ca:restoreCacertsFrom (read only when it is set; absent: not found). */
    restoreSource?: ExistingSecret;
}

export { CACERTS };
export const ISTIO_CA_SECRET = "istio-ca-secret";

interface SecretView {
    kind?: string;
    type?: string;
    metadata: { name: string; resourceVersion?: string; annotations?: Record<string, string> };
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
            type: item.type,
            annotations: item.metadata.annotations,
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

/** What the first call to the cluster failing means, in terms of the config key to fix. */
function firstCallProblem(t: PreflightTarget, err: Error): string {
    const message = err.message;
    if (err instanceof ToolError && err.notStarted) {
        return message; // names istio-ca:kubectlPath
    }
    const noContext = /context was not found for specified context: (\S+)/.exec(message);
    if (noContext) {
        return `kube context ${noContext[1]} (istio-ca:kubeContext) is not defined in the kubeconfig (${t.where}): kubectl config get-contexts lists those that are`;
    }
    const noFile = /stat (.+): no such file or directory/.exec(message);
    if (noFile) {
        return `kubeconfig file ${noFile[1]} does not exist (istio-ca:kubeconfig, else KUBECONFIG / ~/.kube/config)`;
    }
    if (/\(Forbidden\)|is forbidden/.test(message)) {
        return `the identity of ${t.where} may not read namespace ${t.istioNamespace}: grant it deploy/rbac.yaml (docs/security.md, Least privilege). ${message}`;
    }
    if (/\(Unauthorized\)|must be logged in|provide credentials/.test(message)) {
        return `the Kubernetes API of ${t.where} rejected the credentials (istio-ca:kubeconfig / istio-ca:kubeContext): ${message}`;
    }
    if (err instanceof ToolError && NOT_FOUND.test(message) && !/connection|dial|Unable to connect/i.test(message)) {
        return `namespace ${t.istioNamespace} (istio-ca:istioNamespace) does not exist in ${t.where}: is Istio installed there, and is this the right cluster?`;
    }
    return `cannot reach the Kubernetes API of ${t.where} (istio-ca:kubeconfig / istio-ca:kubeContext): ${message}`;
}

/**
 * Reads what the program decides on: the cluster is reachable, the Istio namespace and istiod
 * exist, which istiods accept a multi-root bundle, and the CA Secrets as they are now.
 */
export async function inspectCluster(t: PreflightTarget): Promise<ClusterFacts> {
    try {
        await t.kubectl.run(["get", "namespace", t.istioNamespace, "-o", "name"]);
    } catch (err) {
        throw new PreflightError(firstCallProblem(t, err as Error));
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
        proxyXdsAgent: await proxyXdsAgent(t.kubectl, t.istioNamespace),
        ...(await readCaSecrets(t.kubectl, t.istioNamespace)),
    };
}

export const MESH_CONFIG_MAP = "istio";
export const MESH_CONFIG_KEY = "mesh";

/** Whether the mesh config turns on the proxies' side of multi-root trust (their agent serves the bundle over xDS). */
export async function proxyXdsAgent(kubectl: Kubectl, namespace: string): Promise<"enabled" | "disabled" | "unknown"> {
    const out = await kubectl.run(["get", "configmap", MESH_CONFIG_MAP, "-n", namespace, "--ignore-not-found", "-o", "json"]);
    if (out.trim() === "") {
        return "unknown";
    }
    const mesh = (JSON.parse(out) as { data?: Record<string, string> }).data?.[MESH_CONFIG_KEY] ?? "";
    return meshEnablesXdsAgent(mesh, `ConfigMap ${MESH_CONFIG_MAP} in ${namespace}`) ? "enabled" : "disabled";
}

/** The values pilot-agent's env.Register(…).Get() reads as true (Go's strconv.ParseBool). */
const GO_TRUE = new Set(["1", "t", "T", "TRUE", "true", "True"]);

const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * Whether the mesh config YAML (the `mesh` key of ConfigMap `istio`) sets
 * defaultConfig.proxyMetadata.PROXY_CONFIG_XDS_AGENT to a true value, in any YAML style (block,
 * flow, quoted keys). Unparseable YAML is a PreflightError that names `where` and the key.
 */
export function meshEnablesXdsAgent(meshYaml: string, where = `ConfigMap ${MESH_CONFIG_MAP}`): boolean {
    let mesh: unknown;
    try {
        mesh = parseYaml(meshYaml);
    } catch (err) {
        const first = (err as Error).message.split("\n")[0];
        throw new PreflightError(`the mesh config (key ${MESH_CONFIG_KEY} of ${where}) is not valid YAML: ${first}`);
    }
    const defaultConfig = isMap(mesh) ? mesh.defaultConfig : undefined;
    const metadata = isMap(defaultConfig) ? defaultConfig.proxyMetadata : undefined;
    const value = isMap(metadata) ? metadata.PROXY_CONFIG_XDS_AGENT : undefined;
    return value === true || (typeof value === "string" && GO_TRUE.has(value));
}

/** A warning when the proxies' side could not be checked (no mesh ConfigMap `istio`). */
export function multiRootWarning(facts: ClusterFacts, istioNamespace: string): string | undefined {
    return facts.proxyXdsAgent === "unknown"
        ? `could not check the proxies' multi-root support: no ConfigMap ${MESH_CONFIG_MAP} in ${istioNamespace} (revisioned install?). ` +
          `Make sure every proxy runs with PROXY_CONFIG_XDS_AGENT=true in its proxyMetadata, or proxies may keep the old root-cert.pem.`
        : undefined;
}

/** The refusal when a multi-root bundle is about to be served to an istiod or proxies that cannot take it. */
export function multiRootProblem(facts: ClusterFacts, istioNamespace: string): string | undefined {
    if (facts.istiodsWithoutMultiRoot.length === 0) {
        if (facts.proxyXdsAgent === "disabled") {
            return `this step serves a root-cert.pem with several roots, but the mesh config (ConfigMap ${MESH_CONFIG_MAP} in ${istioNamespace}, ` +
                `defaultConfig.proxyMetadata) lacks PROXY_CONFIG_XDS_AGENT: "true": ${MULTIROOT_REQUIREMENTS}. Enable it (e.g. istioctl install ` +
                `--set meshConfig.defaultConfig.proxyMetadata.PROXY_CONFIG_XDS_AGENT=true) and restart the workloads, or rotate with the immediate swap instead.`;
        }
        return undefined;
    }
    return `this step serves a root-cert.pem with several roots, but istiod Deployment(s) ${facts.istiodsWithoutMultiRoot.join(", ")} in ${istioNamespace} ` +
        `lack ISTIO_MULTIROOT_MESH=true: ${MULTIROOT_REQUIREMENTS}. Enable it (e.g. istioctl install --set values.pilot.env.ISTIO_MULTIROOT_MESH=true ` +
        `--set meshConfig.defaultConfig.proxyMetadata.PROXY_CONFIG_XDS_AGENT=true) and restart the workloads, ` +
        `or rotate with the immediate swap instead (bump istio-ca:keyVersion and remove istio-ca:trustedKeyVersions; the mesh breaks until every workload restarted).`;
}
