import * as pulumi from "@pulumi/pulumi";
import * as fs from "node:fs";
import * as path from "node:path";
import { bundleFingerprints } from "../lib/pem";
import { STEP_ENTRY_POINT } from "../lib/stepEnv";
import { certChain, trustBundle } from "../lib/trustBundle";
import { CacertsSecret } from "./cacerts";
import { clusterProvider } from "./cluster";
import { IstioCaConfig } from "./config";
import { IntermediateCa } from "./intermediateCa";
import { MeshRollout } from "./meshRollout";
import { RootCa } from "./rootCa";
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
}

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

/** The whole program for one cluster stack: PKI → cacerts → ordered restarts and verification. */
export function istioCa(config: IstioCaConfig): IstioCaOutputs {
    assertStepsBuilt();
    const provider = clusterProvider(config);

    const roots = config.trustedKeyVersions.map((generation) => new RootCa(`root-v${generation}`, {
        generation,
        key: config.key,
        validityHours: config.rootValidityHours,
    }));
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
        contentHash: cacerts.contentHash,
        trustFingerprints: rootCertPem.apply((pem) => bundleFingerprints(pem, "root-cert.pem")),
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
    };
}
