import * as pulumi from "@pulumi/pulumi";
import * as fs from "node:fs";
import * as path from "node:path";
import { Kubectl } from "../lib/kubectl";
import { ClusterFacts, inspectCluster, multiRootProblem, PreflightError } from "../lib/preflight";
import { markRefusal } from "../lib/refusal";
import { classifyTransition, Transition, TrustState } from "../lib/rotation";
import { STEP_ENTRY_POINT } from "../lib/stepEnv";
import { certChain, trustBundle } from "../lib/trustBundle";
import { CacertsSecret } from "./cacerts";
import { clusterProvider } from "./cluster";
import { IstioCaConfig, loadConfig } from "./config";
import { IntermediateCa } from "./intermediateCa";
import { MeshRollout } from "./meshRollout";
import { externalRoots, generatedRoots, RootGeneration, RootStackReader, RootStackRoots } from "./roots";
import { CertificateSummary } from "./summary";

export interface IstioCaOutputs {
    istioNamespace: string;
    clusterName: string;
    /** The root that signs the intermediate (istio-ca:keyVersion). */
    signingRoot: pulumi.Output<CertificateSummary>;
    /** Every root in root-cert.pem, by generation. */
    trustedRoots: pulumi.Output<Record<string, CertificateSummary>>;
    intermediate: pulumi.Output<CertificateSummary>;
    /** Public hash of the cacerts content, the trigger of the restarts. */
    cacertsContentHash: pulumi.Output<string>;
    restartedNamespaces: pulumi.Output<string[]>;
    /** What this deployment signs with and trusts: the next run compares its config with it. */
    trustState: TrustState;
    /** The kind of change this run makes (trust, sign, complete, immediate-swap, …). */
    transition: Transition;
}

/** What the program needs from outside the config; replaced by stubs in unit tests. */
export interface ProgramEnvironment {
    /** Reads the cluster (istiod, the CA Secrets); throws a clear error when it cannot be read. */
    inspectCluster(config: IstioCaConfig): Promise<ClusterFacts>;
    /** The stack outputs the last deployment of this stack recorded (undefined: none yet). */
    previousOutputs(): Promise<Record<string, unknown> | undefined>;
    /** The `roots` output of a root stack (istio-ca:rootStack). */
    readRootStack: RootStackReader;
}

const trustStateOf = (config: IstioCaConfig): TrustState => ({
    keyVersion: config.keyVersion,
    trustedKeyVersions: config.trustedKeyVersions,
    intermediateVersion: config.intermediateVersion,
});

/** Multi-root bundles, before or after: istiod must accept a bundle that changes by subset/superset. */
function needsMultiRoot(previous: TrustState | undefined, next: TrustState): boolean {
    return next.trustedKeyVersions.length > 1 || (previous?.trustedKeyVersions.length ?? 0) > 1;
}

/** The real environment: the cluster through kubectl, the previous state through this stack's own outputs. */
export const liveEnvironment: ProgramEnvironment = {
    async inspectCluster(config) {
        const where = config.kubeContext ? `context ${config.kubeContext}` : "the current kube context";
        return inspectCluster({
            kubectl: new Kubectl({ binary: config.kubectlPath, kubeconfig: config.kubeconfig, context: config.kubeContext, timeoutMs: 30_000 }),
            where: config.kubeconfig ? `${where} of ${config.kubeconfig}` : where,
            istioNamespace: config.istioNamespace,
            istiodSelector: config.istiodSelector,
        });
    },
    async previousOutputs() {
        // The stack reads its own last outputs: what the cluster was given last time.
        const self = new pulumi.StackReference("previous-deployment", {
            name: `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`,
        });
        const outputs = await new Promise<Record<string, unknown>>((resolve) => self.outputs.apply(resolve));
        return outputs && Object.keys(outputs).length > 0 ? outputs : undefined;
    },
    async readRootStack(name) {
        // The root keys cross only as this secret output; values stay secret in this stack's state.
        const root = new pulumi.StackReference("root-stack", { name });
        const roots = await new Promise<unknown>((resolve) => root.getOutput("roots").apply(resolve));
        return (roots ?? undefined) as RootStackRoots | undefined;
    },
};

/** The directory holding Pulumi.yaml, whatever runs the program (ts from the root, js from dist/). */
export function projectRoot(from = __dirname): string {
    for (let dir = from; ; dir = path.dirname(dir)) {
        if (fs.existsSync(path.join(dir, "Pulumi.yaml"))) {
            return dir;
        }
        if (path.dirname(dir) === dir) {
            throw new Error(`no Pulumi.yaml above ${from}`);
        }
    }
}

/** The step commands run compiled JavaScript; say so before anything is applied if it is missing. */
export function assertStepsBuilt(root = projectRoot()): void {
    if (!fs.existsSync(path.join(root, STEP_ENTRY_POINT))) {
        throw new Error(`${STEP_ENTRY_POINT} is missing under ${root}: run \`npm run build\` (npm ci does it) before pulumi preview/up`);
    }
}

/**
 * The whole program for one cluster stack: PKI → cacerts → ordered restarts and verification.
 * Everything that can refuse the change (config, the step from the previous deployment, the
 * cluster) is checked before the first resource is registered.
 */
export async function istioCa(config: IstioCaConfig, env: ProgramEnvironment = liveEnvironment): Promise<IstioCaOutputs> {
    assertStepsBuilt();
    const previous = (await env.previousOutputs())?.trustState as TrustState | undefined;
    const transition = classifyTransition(previous, trustStateOf(config));
    if (transition.errors.length > 0) {
        throw new Error(`refusing this change of the CA: ${transition.description}\n  - ${transition.errors.join("\n  - ")}`);
    }
    for (const warning of transition.warnings) {
        pulumi.log.warn(warning);
    }
    if (transition.kind !== "unchanged" && transition.kind !== "initial") {
        pulumi.log.info(transition.description);
    }
    const supplied = await externalRoots(config, env.readRootStack);
    const cluster = await env.inspectCluster(config);
    // The immediate swap replaces a single root by another: no multi-root bundle is ever served.
    if (transition.kind !== "immediate-swap" && needsMultiRoot(previous, trustStateOf(config))) {
        const problem = multiRootProblem(cluster, config.istioNamespace);
        if (problem) {
            throw new PreflightError(problem);
        }
    }
    const provider = clusterProvider(config);

    const roots: RootGeneration[] = supplied ?? generatedRoots(config);
    const signingRoot = roots.find((r) => r.generation === config.keyVersion);
    if (!signingRoot) {
        // parseConfig guarantees keyVersion ∈ trustedKeyVersions; this guards programming errors.
        throw new Error(`istio-ca:keyVersion ${config.keyVersion} is not in istio-ca:trustedKeyVersions`);
    }

    const intermediate = new IntermediateCa("intermediate", {
        root: signingRoot,
        version: config.intermediateVersion,
        clusterName: config.clusterName,
        istioNamespace: config.istioNamespace,
        key: config.key,
        validityHours: config.intermediateValidityHours,
    });

    const rootCertPem = pulumi
        .all(roots.map((r) => r.certPem))
        .apply((pems) => trustBundle(pems.map((certPem, i) => ({ generation: roots[i].generation, certPem })), config.keyVersion));
    const certChainPem = pulumi.all([intermediate.certPem, signingRoot.certPem]).apply(([i, r]) => certChain(i, r));

    const cacerts = new CacertsSecret("cacerts", {
        namespace: config.istioNamespace,
        caCertPem: intermediate.certPem,
        caKeyPem: intermediate.privateKeyPem,
        rootCertPem,
        certChainPem,
    }, { provider });

    const rollout = new MeshRollout("mesh", {
        config,
        trustBundleHash: cacerts.trustBundleHash,
        signerHash: cacerts.signerHash,
        trustBundlePem: rootCertPem,
        signingCertPem: intermediate.certPem,
        after: [cacerts],
    });

    return {
        istioNamespace: config.istioNamespace,
        clusterName: config.clusterName,
        signingRoot: signingRoot.summary,
        trustedRoots: pulumi
            .all(roots.map((r) => r.summary))
            .apply((summaries) => Object.fromEntries(summaries.map((s, i) => [`v${roots[i].generation}`, s]))),
        intermediate: intermediate.summary,
        cacertsContentHash: cacerts.contentHash,
        restartedNamespaces: rollout.restartedNamespaces,
        trustState: trustStateOf(config),
        transition,
    };
}

/**
 * A root stack (istio-ca:role: root): the root generations of a multicluster mesh and nothing else.
 * Cluster stacks read them through istio-ca:rootStack; the keys cross only as a secret output.
 */
export function rootStack(config: IstioCaConfig): Record<string, unknown> {
    assertNoCluster(config);
    const roots = generatedRoots(config);
    return {
        role: "root",
        trustState: trustStateOf(config),
        trustedRoots: pulumi.all(roots.map((r) => r.summary))
            .apply((summaries) => Object.fromEntries(summaries.map((s, i) => [`v${roots[i].generation}`, s]))),
        roots: pulumi.secret(pulumi.all(roots.map((r) => pulumi.all([r.certPem, r.privateKeyPem])))
            .apply((pairs) => Object.fromEntries(pairs.map(([certPem, privateKeyPem], i) => [`v${roots[i].generation}`, { certPem, privateKeyPem }])))),
    };
}

function assertNoCluster(config: IstioCaConfig): void {
    if (config.clusterName !== "") {
        throw new Error("istio-ca:clusterName is set on a root stack (istio-ca:role: root): a root stack manages no cluster; remove it");
    }
}

/** The program as `pulumi up` runs it (index.ts, and inline through the Automation API). */
export async function runIstioCa(env: ProgramEnvironment = liveEnvironment): Promise<Record<string, unknown>> {
    try {
        const config = loadConfig();
        if (config.role === "root") {
            return rootStack(config);
        }
        return stackOutputs(await istioCa(config, env));
    } catch (err) {
        // Thrown before any resource is registered: the update fails and nothing is touched.
        throw markRefusal(err);
    }
}

/** The stack outputs a person reads (and the next run reads back: trustState). No key material. */
export function stackOutputs(ca: IstioCaOutputs): Record<string, unknown> {
    return {
        clusterName: ca.clusterName,
        istioNamespace: ca.istioNamespace,
        signingRoot: ca.signingRoot,
        trustedRoots: ca.trustedRoots,
        intermediate: ca.intermediate,
        restartedNamespaces: ca.restartedNamespaces,
        cacertsContentHash: ca.cacertsContentHash,
        trustState: ca.trustState,
        lastChange: ca.transition.kind,
    };
}
