// The change this run makes, decided before the first resource is registered: the previous
// deployment, the step from it (refused when unsafe), the roots from outside this stack, the
// cluster's state (multi-root support, a cacerts this stack did not make, a backup to restore).
// A refusal here is thrown before anything is applied.
import * as pulumi from "@pulumi/pulumi";
import { ClusterFacts, ISTIO_CA_SECRET, multiRootProblem, multiRootWarning, PreflightError } from "../plan/clusterFacts";
import { IstioCaConfig, SELF_SIGNED_GENERATION } from "../plan/config";
import { classifyTransition, Transition, TrustState } from "../plan/rotation";
import { changedRoots, rootChangeRefusal, rootChangeWarning, RootRecord, SWAP_OPTION } from "../plan/rootRecord";
import { announceTakeover, checkServedCacerts, restoreFromBackup } from "../components/cacerts/existingCacerts";
import { externalRoots, RootGeneration, selfSignedRoot } from "../components/pki/roots";
import { generationOfKey } from "../plan/generations";
import { ProgramEnvironment } from "./environment";

export interface Change {
    /** The stack outputs of the last deployment (undefined: the first). */
    record?: Record<string, unknown>;
    /** What the last deployment recorded of its roots (by certificate). */
    recordedRoots?: RootRecord;
    /** The previous state: the last deployment's, or what the mesh runs on before the first. */
    previous?: TrustState;
    transition: Transition;
    cluster: ClusterFacts;
    /** Roots from outside this stack (istiod's own CA, an external root, a root stack); undefined: generated here. */
    suppliedRoots?: RootGeneration[];
    selfSignedRoots: RootGeneration[];
    restore?: ReturnType<typeof restoreFromBackup>;
    /** Set when cacerts changed outside this stack and is overwritten (istio-ca:overwriteChangedCacerts). */
    overwrite?: ReturnType<typeof checkServedCacerts>;
}

/** Everything that can refuse the change, in the order that reaches the cluster last. */
export async function decideChange(config: IstioCaConfig, env: ProgramEnvironment): Promise<Change> {
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
    checkMultiRoot(cluster, config, previous, transition);
    // A rollback and a cacerts this stack did not make: checked and announced before anything is registered.
    const restore = restoreFromBackup(config, cluster);
    announceTakeover(config, cluster, deployed !== undefined, supplied, restore);
    const overwrite = deployed ? checkServedCacerts(config, cluster, record?.cacertsContentHash as string | undefined) : undefined;
    const selfSignedRoots = config.trustedKeyVersions.includes(SELF_SIGNED_GENERATION) ? [selfSignedRoot(config, cluster)] : [];
    checkRecordedRoots(config, recordedRoots, [...selfSignedRoots, ...(supplied ?? [])].map((r) => ({ generation: r.generation, certPem: r.certPem as string })));
    return { record, recordedRoots, previous, transition, cluster, suppliedRoots: supplied, selfSignedRoots, restore, overwrite };
}

/** The immediate swap replaces a single root by another: no multi-root bundle is ever served. */
function checkMultiRoot(cluster: ClusterFacts, config: IstioCaConfig, previous: TrustState | undefined, transition: Transition): void {
    if (transition.kind === "immediate-swap" || !needsMultiRoot(previous, trustStateOf(config))) {
        return;
    }
    const problem = multiRootProblem(cluster, config.istioNamespace);
    if (problem) {
        throw new PreflightError(problem);
    }
    const unchecked = multiRootWarning(cluster, config.istioNamespace);
    if (unchecked) {
        pulumi.log.warn(unchecked);
    }
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

export const trustStateOf = (config: IstioCaConfig): TrustState => ({
    keyVersion: config.keyVersion,
    trustedKeyVersions: config.trustedKeyVersions,
    intermediateVersion: config.intermediateVersion,
});

/** Multi-root bundles, before or after: istiod must accept a bundle that changes by subset/superset. */
function needsMultiRoot(previous: TrustState | undefined, next: TrustState): boolean {
    return next.trustedKeyVersions.length > 1 || (previous?.trustedKeyVersions.length ?? 0) > 1;
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
        const newest = Math.max(...config.trustedKeyVersions, ...Object.keys(record ?? {}).map(generationOfKey).filter((g) => !Number.isNaN(g)));
        throw new Error(rootChangeRefusal(changes, newest + 1, config.rootSource.kind !== "external"));
    }
    pulumi.log.warn(rootChangeWarning(changes));
}

