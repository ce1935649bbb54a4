// The program for one cluster stack, in the order of the manual procedure it replaces:
// decide the change (refuse it before anything is applied) → make the roots and the intermediate
// → back up and write cacerts → restart istiod, wait for the bundle, restart the workloads,
// verify → record what was deployed once the last check passed.
import * as pulumi from "@pulumi/pulumi";
import { assertSupportedNode } from "../common/nodeVersion";
import { asRefusal } from "../plan/refusal";
import { withholdRpcResponsesFromDebugLog } from "./runtimeLog";
import { Transition, TrustState } from "../plan/rotation";
import { recordedRoot, RootRecord } from "../plan/rootRecord";
import { runSettings } from "../steps/stepEnv";
import { certChain, trustBundle } from "../plan/trustBundle";
import { CacertsSecret } from "../components/cacerts/cacertsSecret";
import { CacertsBackup } from "../components/cacerts/cacertsBackup";
import { clusterProvider } from "../components/clusterProvider";
import { IstioCaConfig, loadConfig, SELF_SIGNED_GENERATION } from "../plan/config";
import { cacertsLayout, RestoredFrom, servedContentHash, ServedCacerts } from "../components/cacerts/existingCacerts";
import { IntermediateCa } from "../components/pki/intermediateCa";
import { MeshRollout, stepStackDir } from "../components/rollout/meshRollout";
import { generatedRoots, RootGeneration, RootStackRoots } from "../components/pki/roots";
import { generationKey } from "../plan/generations";
import { CertificateSummary } from "../components/pki/summary";
import { expiryContext, warnOnExpiry, watchedRoot } from "../components/expiry";
import type { NamespacesSummary } from "../steps/stepRunner";
import { projectRoot, writeStepSettings } from "../common/stackDir";
import { Change, decideChange, trustStateOf } from "./change";
import { assertStepsBuilt, liveEnvironment, ProgramEnvironment } from "./environment";

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

/**
 * The whole program for one cluster stack. Everything that can refuse the change (config, the step
 * from the previous deployment, the cluster) is checked before the first resource is registered.
 */
export async function istioCa(config: IstioCaConfig, env: ProgramEnvironment = liveEnvironment): Promise<IstioCaOutputs> {
    assertStepsBuilt();
    // How the steps run, read by them at run time (not a command input: editing it re-runs nothing).
    (env.saveStepSettings ?? ((dir, settings) => writeStepSettings(projectRoot(), dir, settings)))(stepStackDir(), runSettings(config));
    const change = await decideChange(config, env);
    const pki = makePki(config, change);
    const cacerts = writeCacerts(config, change, pki);
    const rollout = new MeshRollout("mesh", {
        config,
        trustBundleHash: cacerts.secret.trustBundleHash,
        signerHash: cacerts.secret.signerHash,
        trustBundlePem: cacerts.served.rootCertPem,
        signingCertPem: cacerts.served.caCertPem,
        after: [cacerts.secret],
    });
    return outputsOf(config, change, pki, cacerts.secret, rollout);
}

interface Pki {
    /** Every root root-cert.pem carries, by generation. */
    roots: RootGeneration[];
    signingRoot: RootGeneration;
    signer: Signer;
    /** root-cert.pem. */
    trustBundlePem: pulumi.Output<string>;
}

/** Root generations (generated here or supplied) and the signer: this cluster's intermediate. */
function makePki(config: IstioCaConfig, change: Change): Pki {
    const roots: RootGeneration[] = [...change.selfSignedRoots, ...(change.suppliedRoots ?? generatedRoots(config, change.recordedRoots))];
    const signingRoot = roots.find((r) => r.generation === config.keyVersion);
    if (!signingRoot) {
        // parseConfig guarantees keyVersion ∈ trustedKeyVersions; this guards programming errors.
        throw new Error(`istio-ca:keyVersion ${config.keyVersion} is not in istio-ca:trustedKeyVersions`);
    }
    const trustBundlePem = pulumi
        .all(roots.map((r) => r.certPem))
        .apply((pems) => trustBundle(pems.map((certPem, i) => ({ generation: roots[i].generation, certPem })), config.keyVersion));
    return { roots, signingRoot, signer: signerFor(signingRoot, config), trustBundlePem };
}

/** A backup of what cacerts holds, then its new content, in place (never a moment without a CA). */
function writeCacerts(config: IstioCaConfig, change: Change, pki: Pki): { secret: CacertsSecret; served: ServedCacerts } {
    const { signer } = pki;
    // A restore serves the backup's files; the generated resources stay registered (and in the state).
    const served: ServedCacerts = change.restore?.served ??
        { caCertPem: signer.certPem, caKeyPem: signer.privateKeyPem, rootCertPem: pki.trustBundlePem, certChainPem: signer.certChainPem };
    // Runs whenever cacerts gets new content (first up, rotation, restore), before it changes;
    // and before a changed cacerts is overwritten (istio-ca:overwriteChangedCacerts).
    // Written in the layout istiod reads from the Secret there (Istio's files or kubernetes.io/tls).
    const layout = cacertsLayout(change.cluster);
    const contentHash = servedContentHash(served, layout.format);
    const backup = new CacertsBackup("backup", { config, newContentHash: contentHash, overwrites: change.overwrite });
    const secret = new CacertsSecret("cacerts", {
        namespace: config.istioNamespace,
        ...served,
        ...layout,
        contentHash,
        overwrites: change.overwrite,
    }, { provider: clusterProvider(config), dependsOn: [backup.command] });
    return { secret, served };
}

/** What a person reads, and the record the next run compares with (resolved after the last gate). */
function outputsOf(config: IstioCaConfig, change: Change, pki: Pki, cacerts: CacertsSecret, rollout: MeshRollout): IstioCaOutputs {
    const { roots, signingRoot } = pki;
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
            .apply((summaries) => Object.fromEntries(summaries.map((s, i) => [generationKey(roots[i].generation), s]))),
        // Generation 0 signs directly: its summary (and warning) is the signing root's.
        intermediate: signingRoot.generation === SELF_SIGNED_GENERATION
            ? signingSummary
            : warnOnExpiry(pki.signer.summary, { kind: "intermediate", intermediateVersion: config.intermediateVersion, earlyRenewalHours: config.earlyRenewalHours }, expiry),
        cacertsContentHash: afterGates(cacerts.contentHash),
        restartedNamespaces: rollout.restartedNamespaces,
        trustState: afterGates(trustStateOf(config)),
        recordedRoots: afterGates(rootRecordOf(roots)),
        transition: change.transition,
        restoredFrom: change.restore?.restoredFrom,
    };
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

/** The recorded identity of every served root (fingerprint, key spec, validity of generated ones). */
function rootRecordOf(roots: RootGeneration[]): pulumi.Output<RootRecord> {
    return pulumi.all(roots.map((r) => r.certPem)).apply((pems) =>
        Object.fromEntries(pems.map((pem, i) => [generationKey(roots[i].generation), recordedRoot(pem, roots[i].validityHours)])));
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
            .apply((summaries) => Object.fromEntries(summaries.map((s, i) => [generationKey(roots[i].generation), s]))),
        roots: pulumi.secret(pulumi.all(roots.map((r) => pulumi.all([r.certPem, r.privateKeyPem])))
            .apply((pairs): RootStackRoots => Object.fromEntries(pairs.map(([certPem, privateKeyPem], i) => [generationKey(roots[i].generation), { certPem, privateKeyPem }])))),
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
