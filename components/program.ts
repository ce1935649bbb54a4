import * as pulumi from "@pulumi/pulumi";
import * as fs from "node:fs";
import * as path from "node:path";
import { Kubectl } from "../lib/kubectl";
import { ClusterFacts, inspectCluster, ISTIO_CA_SECRET, multiRootProblem, multiRootWarning, PreflightError } from "../lib/preflight";
import { assertSupportedNode } from "../lib/nodeVersion";
import { asRefusal } from "../lib/refusal";
import { withholdRpcResponsesFromDebugLog } from "../lib/runtimeLog";
import { classifyTransition, Transition, TrustState } from "../lib/rotation";
import { changedRoots, recordedRoot, rootChangeRefusal, rootChangeWarning, RootRecord, SWAP_OPTION } from "../lib/rootRecord";
import { RunSettings, runSettings, STEP_ENTRY_POINT } from "../lib/stepEnv";
import { certChain, trustBundle } from "../lib/trustBundle";
import { readRestoreSource } from "../lib/restore";
import { restartDenied, restartDeniedWarning } from "../lib/restartAccess";
import { CacertsSecret } from "./cacerts";
import { CacertsBackup } from "./cacertsBackup";
import { clusterProvider } from "./cluster";
import { IstioCaConfig, loadConfig, SELF_SIGNED_GENERATION } from "./config";
import { announceTakeover, checkServedCacerts, restoreFromBackup, RestoredFrom, servedContentHash, ServedCacerts } from "./existingCacerts";
import { IntermediateCa } from "./intermediateCa";
import { MeshRollout, stepStackDir } from "./meshRollout";
import { externalRoots, generatedRoots, RootGeneration, RootStackReader, RootStackRoots, selfSignedRoot } from "./roots";
import { CertificateSummary } from "./summary";
import { expiryContext, warnOnExpiry, watchedRoot } from "./expiry";
import type { NamespacesSummary } from "../lib/stepRunner";
import { projectRoot, writeStepSettings } from "../lib/stackDir";

export { projectRoot };

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
    restartedNamespaces: pulumi.Output<NamespacesSummary>;
    /**
     * What this deployment signs with and trusts: the next run compares its config with it.
     * Resolves only when the last gate passed, so a failed gate leaves the previous record.
     */
    trustState: pulumi.Output<TrustState>;
    /** Each generation's root by certificate fingerprint and key spec (recorded like trustState). */
    recordedRoots: pulumi.Output<RootRecord>;
    /** Set while cacerts holds a restored backup (istio-ca:restoreCacertsFrom). */
    restoredFrom?: pulumi.Output<RestoredFrom>;
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
    /** Saves how the steps run for them to read at run time (default: the stack's settings file). */
    saveStepSettings?: (stackDir: string, settings: RunSettings) => void;
}

/** The certificate and key that sign workload certificates (ca-cert.pem / ca-key.pem), and cert-chain.pem. */
interface Signer {
    certPem: pulumi.Output<string>;
    /** Secret. */
    privateKeyPem: pulumi.Output<string>;
    certChainPem: pulumi.Output<string>;
    summary: pulumi.Output<CertificateSummary>;
}

/**
 * istiod's self-signed CA (generation 0) keeps signing directly, as it did before cacerts existed
 * (its chain is itself); every other generation signs through this cluster's intermediate.
 */
function signerFor(root: RootGeneration, config: IstioCaConfig): Signer {
    if (root.generation === SELF_SIGNED_GENERATION) {
        const certPem = pulumi.output(root.certPem);
        return { certPem, privateKeyPem: pulumi.output(root.privateKeyPem), certChainPem: certPem, summary: root.summary };
    }
    const intermediate = new IntermediateCa("intermediate", {
        root,
        version: config.intermediateVersion,
        clusterName: config.clusterName,
        istioNamespace: config.istioNamespace,
        key: config.key,
        validityHours: config.intermediateValidityHours,
        earlyRenewalHours: config.earlyRenewalHours,
    });
    return {
        certPem: intermediate.certPem,
        privateKeyPem: intermediate.privateKeyPem,
        certChainPem: pulumi.all([intermediate.certPem, root.certPem]).apply(([i, r]) => certChain(i, r)),
        summary: intermediate.summary,
    };
}

/**
 * What the mesh runs on before this stack's first deployment. A cluster with istio-ca-secret and
 * no cacerts runs on istiod's self-signed CA: root generation 0, so that moving to a plugged-in
 * root is classified like any root rotation (phased, or a warned immediate swap).
 */
export function impliedTrustState(cluster: ClusterFacts, config: IstioCaConfig): TrustState | undefined {
    if (cluster.cacerts || !cluster.istioCaSecret) {
        return undefined;
    }
    pulumi.log.info(
        `First deployment of this stack: namespace ${config.istioNamespace} has ${ISTIO_CA_SECRET} and no cacerts, so the mesh runs on ` +
        `istiod's self-signed CA; it counts as root generation 0 (istio-ca:keyVersion 0). ${ISTIO_CA_SECRET} is read, never modified.`);
    return { keyVersion: SELF_SIGNED_GENERATION, trustedKeyVersions: [SELF_SIGNED_GENERATION], intermediateVersion: config.intermediateVersion };
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
        const kubectl = new Kubectl({ binary: config.kubectlPath, kubeconfig: config.kubeconfig, context: config.kubeContext, timeoutMs: 30_000 });
        const facts = await inspectCluster({
            kubectl,
            where: config.kubeconfig ? `${where} of ${config.kubeconfig}` : where,
            istioNamespace: config.istioNamespace,
            istiodSelector: config.istiodSelector,
        });
        // Namespaced restart rights (deploy/rbac.yaml): said at preview, not midway through the restarts.
        const denied = await restartDenied(kubectl, config.istioNamespace, config.workloadNamespaces).catch((err: Error) => {
            pulumi.log.warn(`could not check this identity's restart rights (the restart steps will tell): ${err.message}`);
            return [];
        });
        if (denied.length > 0) {
            pulumi.log.warn(restartDeniedWarning(denied, pulumi.getStack()));
        }
        // The backup to restore stays in memory, like cacerts itself.
        const name = config.restoreCacertsFrom;
        return name ? { ...facts, restoreSource: await readRestoreSource(kubectl, config.backupNamespace, name) } : facts;
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
    // How the steps run, read by them at run time (not a command input: editing it re-runs nothing).
    (env.saveStepSettings ?? ((dir, settings) => writeStepSettings(projectRoot(), dir, settings)))(stepStackDir(), runSettings(config));
    const record = await env.previousOutputs();
    const deployed = record?.trustState as TrustState | undefined;
    const recordedRoots = record?.recordedRoots as RootRecord | undefined;
    // A stack's first run asks the cluster what it runs on now; later runs compare with their own
    // last deployment first, so a refused change never even reaches the cluster.
    let cluster = deployed ? undefined : await env.inspectCluster(config);
    const previous = deployed ?? impliedTrustState(cluster!, config);
    const transition = checkedTransition(previous, config);
    const supplied = await externalRoots(config, env.readRootStack);
    cluster ??= await env.inspectCluster(config);
    // The immediate swap replaces a single root by another: no multi-root bundle is ever served.
    if (transition.kind !== "immediate-swap" && needsMultiRoot(previous, trustStateOf(config))) {
        const problem = multiRootProblem(cluster, config.istioNamespace);
        if (problem) {
            throw new PreflightError(problem);
        }
        const unchecked = multiRootWarning(cluster, config.istioNamespace);
        if (unchecked) {
            pulumi.log.warn(unchecked);
        }
    }
    // A rollback and a cacerts this stack did not make: checked and announced before anything is registered.
    const restore = restoreFromBackup(config, cluster);
    announceTakeover(config, cluster, deployed !== undefined, supplied, restore);
    const overwrite = deployed ? checkServedCacerts(config, cluster, record?.cacertsContentHash as string | undefined) : undefined;
    const selfSigned = config.trustedKeyVersions.includes(SELF_SIGNED_GENERATION) ? [selfSignedRoot(config, cluster)] : [];
    checkRecordedRoots(config, recordedRoots, [...selfSigned, ...(supplied ?? [])].map((r) => ({ generation: r.generation, certPem: r.certPem as string })));
    const provider = clusterProvider(config);

    const roots: RootGeneration[] = [...selfSigned, ...(supplied ?? generatedRoots(config, recordedRoots))];
    const signingRoot = roots.find((r) => r.generation === config.keyVersion);
    if (!signingRoot) {
        // parseConfig guarantees keyVersion ∈ trustedKeyVersions; this guards programming errors.
        throw new Error(`istio-ca:keyVersion ${config.keyVersion} is not in istio-ca:trustedKeyVersions`);
    }

    const intermediate = signerFor(signingRoot, config);
    const rootCertPem = pulumi
        .all(roots.map((r) => r.certPem))
        .apply((pems) => trustBundle(pems.map((certPem, i) => ({ generation: roots[i].generation, certPem })), config.keyVersion));
    const certChainPem = intermediate.certChainPem;

    // A restore serves the backup's files; the generated resources above stay registered (and in the state).
    const served: ServedCacerts = restore?.served ?? { caCertPem: intermediate.certPem, caKeyPem: intermediate.privateKeyPem, rootCertPem, certChainPem };
    // Runs whenever cacerts gets new content (first up, rotation, restore), before it changes;
    // and before a changed cacerts is overwritten (istio-ca:overwriteChangedCacerts).
    const backup = new CacertsBackup("backup", { config, newContentHash: servedContentHash(served), overwrites: overwrite });

    const cacerts = new CacertsSecret("cacerts", {
        namespace: config.istioNamespace,
        ...served,
        overwrites: overwrite,
    }, { provider, dependsOn: [backup.command] });

    const rollout = new MeshRollout("mesh", {
        config,
        trustBundleHash: cacerts.trustBundleHash,
        signerHash: cacerts.signerHash,
        trustBundlePem: served.rootCertPem,
        signingCertPem: served.caCertPem,
        after: [cacerts],
    });
    // What the next run compares with waits for the last gate: a failed gate leaves the previous record.
    const afterGates = <T>(value: pulumi.Input<T>): pulumi.Output<T> =>
        pulumi.all([rollout.lastStep.stdout, value]).apply(([, v]) => v as T);

    // Each certificate's summary warns once if it expires within istio-ca:expiryWarningDays.
    const expiry = expiryContext(config);
    const rootSummaries = roots.map((r) => warnOnExpiry(r.summary, watchedRoot(config, r.generation), expiry));
    const signingSummary = rootSummaries[roots.indexOf(signingRoot)];
    return {
        istioNamespace: config.istioNamespace,
        clusterName: config.clusterName,
        signingRoot: signingSummary,
        trustedRoots: pulumi
            .all(rootSummaries)
            .apply((summaries) => Object.fromEntries(summaries.map((s, i) => [`v${roots[i].generation}`, s]))),
        // Generation 0 signs directly: its summary (and warning) is the signing root's.
        intermediate: signingRoot.generation === SELF_SIGNED_GENERATION
            ? signingSummary
            : warnOnExpiry(intermediate.summary, { kind: "intermediate", intermediateVersion: config.intermediateVersion, earlyRenewalHours: config.earlyRenewalHours }, expiry),
        cacertsContentHash: afterGates(cacerts.contentHash),
        restartedNamespaces: rollout.restartedNamespaces,
        trustState: afterGates(trustStateOf(config)),
        recordedRoots: afterGates(rootRecordOf(roots)),
        transition,
        restoredFrom: restore?.restoredFrom,
    };
}

/** Classifies the step from the previous deployment; refuses an unsafe one, and an immediate swap not asked for. */
function checkedTransition(previous: TrustState | undefined, config: IstioCaConfig): Transition {
    const transition = classifyTransition(previous, trustStateOf(config));
    if (transition.errors.length > 0) {
        throw new Error(`refusing this change of the CA: ${transition.description}\n  - ${transition.errors.join("\n  - ")}`);
    }
    if (transition.kind === "immediate-swap" && !config.allowImmediateRootSwap) {
        throw new Error(`refusing an immediate root swap that was not asked for: ${transition.warnings.join(" ")}\n` +
            `To swap at once anyway, set \`pulumi config set ${SWAP_OPTION} true\` for this up.`);
    }
    for (const warning of transition.warnings) {
        pulumi.log.warn(warning);
    }
    if (transition.kind !== "unchanged" && transition.kind !== "initial") {
        pulumi.log.info(transition.description);
    }
    return transition;
}

/** Where a root this program does not generate comes from, for messages. */
function rootSourceOf(config: IstioCaConfig, generation: number): string {
    if (generation === SELF_SIGNED_GENERATION) {
        return `Secret ${ISTIO_CA_SECRET} (istiod's self-signed CA)`;
    }
    const source = config.rootSource;
    return source.kind === "external" ? "istio-ca:rootCertPem" : source.kind === "stack" ? `istio-ca:rootStack ${source.stack} output roots.v${generation}` : "this stack's tls resources";
}

/**
 * Refuses roots whose certificate differs from the one recorded for the same generation (a root
 * swap under the same number), unless istio-ca:allowImmediateRootSwap asks for it (then warns).
 * Generated roots keep their recorded key spec instead (roots.ts); their certificate is known only
 * after the tls provider ran.
 */
function checkRecordedRoots(config: IstioCaConfig, record: RootRecord | undefined, roots: { generation: number; certPem: string }[]): void {
    const changes = changedRoots(record, roots.map((r) => ({ ...r, source: rootSourceOf(config, r.generation) })));
    if (changes.length === 0) {
        return;
    }
    if (!config.allowImmediateRootSwap) {
        const newest = Math.max(...config.trustedKeyVersions, ...Object.keys(record ?? {}).map((k) => Number(k.slice(1))));
        throw new Error(rootChangeRefusal(changes, newest + 1, config.rootSource.kind !== "external"));
    }
    pulumi.log.warn(rootChangeWarning(changes));
}

/** The recorded identity of every served root (fingerprint, key spec, validity of generated ones). */
function rootRecordOf(roots: RootGeneration[]): pulumi.Output<RootRecord> {
    return pulumi.all(roots.map((r) => r.certPem)).apply((pems) =>
        Object.fromEntries(pems.map((pem, i) => [`v${roots[i].generation}`, recordedRoot(pem, roots[i].validityHours)])));
}

/**
 * A root stack (istio-ca:role: root): the root generations of a multicluster mesh and nothing else.
 * Cluster stacks read them through istio-ca:rootStack; the keys cross only as a secret output.
 */
export function rootStack(config: IstioCaConfig, record?: RootRecord): Record<string, unknown> {
    assertNoCluster(config);
    const roots = generatedRoots(config, record);
    return {
        role: "root",
        trustState: trustStateOf(config),
        recordedRoots: rootRecordOf(roots),
        trustedRoots: pulumi.all(roots.map((r) => warnOnExpiry(r.summary, watchedRoot(config, r.generation), expiryContext(config))))
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
    // Before any resource: the runtime's debug log would otherwise quote secret outputs.
    withholdRpcResponsesFromDebugLog();
    try {
        assertSupportedNode();
        const config = loadConfig();
        if (config.role === "root") {
            return rootStack(config, (await env.previousOutputs())?.recordedRoots as RootRecord | undefined);
        }
        return stackOutputs(await istioCa(config, env));
    } catch (err) {
        // Thrown before any resource is registered: the update fails and nothing is touched. The
        // engine prints the message alone (a RunError), not a JavaScript stack.
        throw asRefusal(err);
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
        recordedRoots: ca.recordedRoots,
        lastChange: ca.transition.kind,
        ...(ca.restoredFrom ? { restoredFrom: ca.restoredFrom } : {}),
    };
}
