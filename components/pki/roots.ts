import * as pulumi from "@pulumi/pulumi";
import { validateRootMaterial } from "../../plan/rootMaterial";
import { formatKeySpec, RootRecord, sameKeySpec } from "../../plan/rootRecord";
import { ClusterFacts, ISTIO_CA_SECRET } from "../../plan/clusterFacts";
import { IstioCaConfig, SELF_SIGNED_GENERATION } from "../../plan/config";
import { generationKey } from "../../plan/generations";
import { RootCa } from "./rootCa";
import { certificateSummary, CertificateSummary } from "./summary";

/** One root generation, whatever made it: what the intermediate and the trust bundle need. */
export interface RootGeneration {
    generation: number;
    certPem: pulumi.Input<string>;
    /** Secret. */
    privateKeyPem: pulumi.Input<string>;
    summary: pulumi.Output<CertificateSummary>;
    /** validityPeriodHours of a root this stack generates (recorded, so the generation keeps it). */
    validityHours?: number;
}

/** Root generations as a root stack exports them (output `roots`, secret). */
export type RootStackRoots = Record<string, { certPem: string; privateKeyPem: string }>;

/** Reads a root stack's `roots` output (undefined when the stack has none). */
export type RootStackReader = (stack: string) => Promise<RootStackRoots | undefined>;

/** The generations this program manages (generation 0 is istiod's own CA, read from the cluster). */
export function managedGenerations(config: IstioCaConfig): number[] {
    return config.trustedKeyVersions.filter((g) => g !== SELF_SIGNED_GENERATION);
}

/**
 * The generations this stack makes itself: one RootCa component each. A generation the last
 * deployment recorded keeps its recorded key spec and validity: the key spec and validity are
 * inputs of the tls resources, so taking them from config would replace the root (a root swap
 * under the same number). Config changes apply to new generations only.
 */
export function generatedRoots(config: IstioCaConfig, record?: RootRecord): RootCa[] {
    return managedGenerations(config).map((generation) => {
        const recorded = record?.[generationKey(generation)];
        const key = recorded?.key ?? config.key;
        const validityHours = recorded?.validityHours ?? config.rootValidityHours;
        if (!sameKeySpec(key, config.key) || validityHours !== config.rootValidityHours) {
            pulumi.log.info(`root-v${generation} keeps its recorded ${formatKeySpec(key)} key and ${validityHours / 24}-day validity: ` +
                "istio-ca:keyAlgorithm/rsaBits/ecdsaCurve/rootValidityDays apply to new root generations only (a rotation: npm run rotate)");
        }
        return new RootCa(`root-v${generation}`, { generation, key, validityHours });
    });
}

/**
 * Checks, before any resource is registered, the roots that come from elsewhere: an external root
 * from config, or the generations of a root stack. Each problem names its source.
 */
export async function externalRoots(config: IstioCaConfig, readRootStack: RootStackReader): Promise<RootGeneration[] | undefined> {
    const source = config.rootSource;
    if (source.kind === "generate") {
        return undefined;
    }
    const problems: string[] = [];
    const roots: RootGeneration[] = [];
    const take = (generation: number, certPem: string | undefined, keyPem: string | undefined, what: string): void => {
        // Expiry within istio-ca:expiryWarningDays is warned for every certificate (components/expiry.ts).
        const report = validateRootMaterial(certPem, keyPem, what, { minValidDays: 0 });
        problems.push(...report.problems);
        report.warnings.forEach((w) => pulumi.log.warn(w));
        if (report.problems.length === 0) {
            roots.push({ generation, certPem: certPem!, privateKeyPem: pulumi.secret(keyPem!), summary: certificateSummary(certPem!) });
        }
    };
    if (source.kind === "external") {
        take(config.keyVersion, source.certPem, source.keyPem, "istio-ca:rootCertPem / istio-ca:rootKeyPem");
    } else {
        const exported = await readRootStack(source.stack);
        if (!exported) {
            problems.push(`istio-ca:rootStack ${source.stack}: the stack has no output \`roots\` (does it exist, with istio-ca:role: root, and was \`pulumi up\` run on it?)`);
        } else {
            for (const generation of managedGenerations(config)) {
                const root = exported[generationKey(generation)];
                if (!root) {
                    problems.push(`istio-ca:rootStack ${source.stack} has no root generation ${generation} (it has ${Object.keys(exported).join(", ") || "none"}): ` +
                        `add ${generation} to the root stack's istio-ca:trustedKeyVersions and run \`pulumi up\` on it first`);
                    continue;
                }
                take(generation, root.certPem, root.privateKeyPem, `istio-ca:rootStack ${source.stack} output roots.v${generation}`);
            }
        }
    }
    if (problems.length > 0) {
        throw new Error(`the root is not usable:\n  - ${problems.join("\n  - ")}`);
    }
    return roots;
}

/**
 * Root generation 0: istiod's self-signed CA, from istio-ca-secret (`ca-cert.pem`, `ca-key.pem`,
 * written by istiod when it started without cacerts). Read at preview/up time, checked like any
 * external root; the key stays in memory and in the (encrypted) cacerts inputs only. The Secret
 * itself is never modified.
 */
export function selfSignedRoot(config: IstioCaConfig, cluster: ClusterFacts): RootGeneration {
    const where = `Secret ${ISTIO_CA_SECRET} in namespace ${config.istioNamespace} of ${cluster.where}`;
    const secret = cluster.istioCaSecret;
    if (!secret) {
        throw new Error(
            `istio-ca:trustedKeyVersions includes 0 (istiod's self-signed CA), but there is no ${where}: ` +
            `generation 0 exists only on a mesh that runs on istiod's own CA. Remove 0 from istio-ca:keyVersion / istio-ca:trustedKeyVersions.`);
    }
    const certPem = secret.data["ca-cert.pem"];
    const keyPem = secret.data["ca-key.pem"];
    const report = validateRootMaterial(certPem, keyPem, where, { minValidDays: 0 }); // expiry: components/expiry.ts
    if (report.problems.length > 0) {
        throw new Error(`istiod's self-signed CA (root generation 0) is not usable:\n  - ${report.problems.join("\n  - ")}`);
    }
    report.warnings.forEach((w) => pulumi.log.warn(w));
    return {
        generation: SELF_SIGNED_GENERATION,
        certPem,
        privateKeyPem: pulumi.secret(keyPem!),
        summary: certificateSummary(certPem!),
    };
}
