import * as pulumi from "@pulumi/pulumi";
import { validateRootMaterial } from "../lib/rootMaterial";
import { IstioCaConfig } from "./config";
import { RootCa } from "./rootCa";
import { certificateSummary, CertificateSummary } from "./summary";

/** One root generation, whatever made it: what the intermediate and the trust bundle need. */
export interface RootGeneration {
    generation: number;
    certPem: pulumi.Input<string>;
    /** Secret. */
    privateKeyPem: pulumi.Input<string>;
    summary: pulumi.Output<CertificateSummary>;
}

/** Root generations as a root stack exports them (output `roots`, secret). */
export type RootStackRoots = Record<string, { certPem: string; privateKeyPem: string }>;

/** Reads a root stack's `roots` output (undefined when the stack has none). */
export type RootStackReader = (stack: string) => Promise<RootStackRoots | undefined>;

/** The generations this stack makes itself: one RootCa component each. */
export function generatedRoots(config: IstioCaConfig): RootCa[] {
    return config.trustedKeyVersions.map((generation) => new RootCa(`root-v${generation}`, {
        generation,
        key: config.key,
        validityHours: config.rootValidityHours,
    }));
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
        const report = validateRootMaterial(certPem, keyPem, what);
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
            for (const generation of config.trustedKeyVersions) {
                const root = exported[`v${generation}`];
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
