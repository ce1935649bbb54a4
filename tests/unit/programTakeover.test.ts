// The program with an existing cacerts and with istio-ca:restoreCacertsFrom, under Pulumi mocks:
// the backup step runs before cacerts changes, a takeover is announced (or refused) before
// anything is registered, and a restore serves the backup's files while the generated material
// stays registered.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { clusterFacts, isSecret, promiseOf, runCapturing, setupMocks } from "../support/mocks";
import type { ClusterFacts } from "../../plan/clusterFacts";
import { ConfigError, parseConfig } from "../../plan/config";
import { backupNameOf, publicContentHash, servedContentHashOf } from "../../common/cacertsFiles";
import { bundleFingerprints, formatFingerprint } from "../../common/pem";
import { TrustState } from "../../plan/rotation";
import { planServedDrift } from "../../plan/takeover";
import { certManagerCacerts, handMadeCacerts, selfSignedCa } from "../support/testCerts";

const world = setupMocks({});
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { istioCa, stackOutputs } = require("../../program/istioCa") as typeof import("../../program/istioCa");

const KEY_MARKER = ["PRIVATE", "KEY"].join(" ");
const steady: TrustState = { keyVersion: 1, trustedKeyVersions: [1], intermediateVersion: 1 };


async function deploy(values: Record<string, string>, previous: TrustState | undefined, cluster: ClusterFacts) {
    const config = parseConfig((k) => ({ clusterName: "c", ...values } as Record<string, string>)[k]);
    const result = await runCapturing(world, () => istioCa(config, {
        previousOutputs: async () => (previous ? { trustState: previous } : undefined),
        readRootStack: async () => undefined,
        inspectCluster: async () => cluster,
    }));
    const named = (type: string, name: string) => result.registered.find((r) => r.type === type && r.name === name);
    return { ...result, named };
}

const SECRET = "kubernetes:core/v1:Secret";
const COMMAND = "command:local:Command";

test("the backup step runs before cacerts changes, triggered by the new content's public hash", async () => {
    const r = await deploy({}, steady, clusterFacts());
    assert.equal(r.error, undefined);
    const backup = r.named(COMMAND, "backup-cacerts")!;
    assert.ok(backup, "backup-cacerts registered");
    assert.equal(backup.inputs.create, "node dist/lib/cli/main.js backup-cacerts");
    const env = await promiseOf(backup.inputs.environment) as Record<string, string>;
    assert.deepEqual(Object.keys(env).sort(), ["ISTIO_CA_BACKUP_NAMESPACE", "ISTIO_CA_ISTIO_NAMESPACE", "ISTIO_CA_KEEP_BACKUPS", "ISTIO_CA_STACK_DIR"]);
    const secret = r.named(SECRET, "cacerts-secret")!;
    assert.deepEqual(secret.opts.dependsOn, [backup.resource], "cacerts waits for the backup");
    const data = await promiseOf(secret.inputs.stringData) as Record<string, string>;
    const hash = publicContentHash({ caCertPem: data["ca-cert.pem"], rootCertPem: data["root-cert.pem"], certChainPem: data["cert-chain.pem"] });
    assert.deepEqual(await promiseOf(backup.inputs.triggers), [hash]);
    assert.equal(await promiseOf(backup.inputs.addPreviousOutputInEnv), false, "no previous output in the environment");
    assert.equal(await promiseOf(r.outputs!.cacertsContentHash), hash, "the same hash the stack outputs");
    assert.deepEqual(r.warnings, [], "a deployed stack takes nothing over");
});

test("first up over a hand-made cacerts: backup announced, root swap said loudly, nothing refused", async () => {
    const existing = handMadeCacerts().files;
    const r = await deploy({}, undefined, clusterFacts({ cacerts: { name: "cacerts", data: existing } }));
    assert.equal(r.error, undefined);
    const text = r.warnings.join("\n");
    assert.ok(text.includes(`backs it up as Secret istio-ca-backups/${backupNameOf(existing)}`));
    assert.match(text, /ROOT SWAP/);
    assert.ok(text.includes(formatFingerprint(bundleFingerprints(existing["root-cert.pem"], "r")[0])));
    assert.ok(r.named(COMMAND, "backup-cacerts"));
});

test("first up adopting the existing root (istio-ca:rootCertPem/rootKeyPem): no root swap", async () => {
    const { root, files: existing } = handMadeCacerts(selfSignedCa("Adopted Root"));
    const r = await deploy({ rootCertPem: root.certPem, rootKeyPem: root.keyPem }, undefined, clusterFacts({ cacerts: { name: "cacerts", data: existing } }));
    assert.equal(r.error, undefined);
    assert.doesNotMatch(r.warnings.join("\n"), /ROOT SWAP/);
    assert.match(r.warnings.join("\n"), /keeps a root of the existing cacerts: no root swap/);
});

test("first up over an incomplete cacerts: refused before anything is registered; replaceInvalidCacerts proceeds", async () => {
    const existing = handMadeCacerts().files;
    delete existing["cert-chain.pem"];
    const facts = clusterFacts({ cacerts: { name: "cacerts", data: existing } });
    const refused = await deploy({}, undefined, facts);
    assert.match(refused.error!.message, /Secret istio-system\/cacerts exists but is not a complete Istio CA.*missing cert-chain\.pem/s);
    assert.match(refused.error!.message, /istio-ca:replaceInvalidCacerts/);
    assert.deepEqual(refused.registered, []);
    const replaced = await deploy({ replaceInvalidCacerts: "true" }, undefined, facts);
    assert.equal(replaced.error, undefined);
    assert.ok(replaced.named(SECRET, "cacerts-secret"));
});

test("restore: cacerts gets the backup's four files, the key stays secret, the generated material stays registered", async () => {
    const backup: Record<string, string> = { ...handMadeCacerts().files, "note.txt": "not copied" };
    const name = backupNameOf(backup);
    const r = await deploy({ restoreCacertsFrom: name, verifyWorkloadCertificates: "true" }, steady,
        clusterFacts({ cacerts: { name: "cacerts", data: handMadeCacerts().files }, restoreSource: { name, data: backup } }));
    assert.equal(r.error, undefined);
    const secret = r.named(SECRET, "cacerts-secret")!;
    const stringData = secret.inputs.stringData as Record<string, pulumi.Output<string>>;
    const data = await promiseOf<Record<string, string>>(secret.inputs.stringData);
    assert.deepEqual(data, {
        "ca-cert.pem": backup["ca-cert.pem"], "ca-key.pem": backup["ca-key.pem"], "root-cert.pem": backup["root-cert.pem"], "cert-chain.pem": backup["cert-chain.pem"],
    });
    assert.equal(await isSecret(pulumi.output(stringData["ca-key.pem"])), true, "ca-key.pem stays secret");
    for (const kept of ["root-v1-key", "root-v1-cert", "intermediate-key", "intermediate-cert"]) {
        assert.ok(r.registered.some((x) => x.name === kept), `${kept} stays registered (no key dropped from the state)`);
    }
    // The checks compare the mesh with what cacerts holds now.
    const wait = await promiseOf(r.named(COMMAND, "mesh-wait-root-cert")!.inputs.environment) as Record<string, string>;
    assert.equal(wait.ISTIO_CA_TRUST_FINGERPRINTS, bundleFingerprints(backup["root-cert.pem"], "r").join(","));
    const verify = await promiseOf(r.named(COMMAND, "mesh-verify-workload-certs")!.inputs.environment) as Record<string, string>;
    assert.equal(verify.ISTIO_CA_SIGNING_CERT_PEM, backup["ca-cert.pem"]);
    const hash = publicContentHash({ caCertPem: backup["ca-cert.pem"], rootCertPem: backup["root-cert.pem"], certChainPem: backup["cert-chain.pem"] });
    assert.deepEqual(await promiseOf(r.named(COMMAND, "backup-cacerts")!.inputs.triggers), [hash], "the current cacerts is backed up first");
    // Outputs: the restore is visible, the trust state is the config's, no key anywhere.
    const outputs = stackOutputs(r.outputs!);
    const restoredFrom = await promiseOf(outputs.restoredFrom as pulumi.Output<any>);
    assert.equal(restoredFrom.secret, `istio-ca-backups/${name}`);
    assert.equal(restoredFrom.signingCert.sha256Fingerprint, formatFingerprint(bundleFingerprints(backup["ca-cert.pem"], "c")[0]));
    assert.equal(restoredFrom.trustedRoots.length, 1);
    assert.deepEqual(await promiseOf(outputs.trustState as pulumi.Output<unknown>), steady);
    assert.doesNotMatch(JSON.stringify(restoredFrom), new RegExp(KEY_MARKER));
    assert.match(r.warnings.join("\n"), new RegExp(`ROLLBACK: cacerts gets the four files of Secret istio-ca-backups/${name}`));
    assert.match(r.warnings.join("\n"), /ROOT SWAP/, "the restored roots share none with the current cacerts");
});

test("without restoreCacertsFrom there is no restoredFrom output", async () => {
    const r = await deploy({}, steady, clusterFacts());
    assert.equal("restoredFrom" in stackOutputs(r.outputs!), false);
});

test("restore from a missing or broken backup is refused before anything is registered", async () => {
    const missing = await deploy({ restoreCacertsFrom: "cacerts-backup-000000000000" }, steady, clusterFacts());
    assert.match(missing.error!.message, /istio-ca:restoreCacertsFrom: Secret istio-ca-backups\/cacerts-backup-000000000000 does not exist/);
    assert.deepEqual(missing.registered, []);
    const broken = { ...handMadeCacerts().files, "ca-key.pem": handMadeCacerts().files["ca-key.pem"] };
    const mismatched = await deploy({ restoreCacertsFrom: "cacerts-backup-1" }, steady, clusterFacts({ restoreSource: { name: "cacerts-backup-1", data: broken } }));
    assert.match(mismatched.error!.message, /Secret istio-ca-backups\/cacerts-backup-1 cannot be restored.*ca-key\.pem is not the key of ca-cert\.pem/s);
    assert.deepEqual(mismatched.registered, []);
});

test("istio-ca:restoreCacertsFrom must be a Secret name; replaceInvalidCacerts a boolean", () => {
    const parse = (values: Record<string, string>) => parseConfig((k) => ({ clusterName: "c", ...values } as Record<string, string>)[k]);
    assert.equal(parse({}).restoreCacertsFrom, undefined);
    assert.equal(parse({ restoreCacertsFrom: "" }).restoreCacertsFrom, undefined, "Pulumi.yaml's default \"\" means unset");
    assert.equal(parse({ restoreCacertsFrom: "cacerts-backup-0123456789ab" }).restoreCacertsFrom, "cacerts-backup-0123456789ab");
    assert.throws(() => parse({ restoreCacertsFrom: "Bad_Name" }), (e: unknown) => e instanceof ConfigError && /istio-ca:restoreCacertsFrom must be the name of a Secret/.test(e.message));
    assert.throws(() => parse({ replaceInvalidCacerts: "yes" }), /istio-ca:replaceInvalidCacerts must be true or false/);
    assert.equal(parse({ replaceInvalidCacerts: "true" }).replaceInvalidCacerts, true);
});

test("istio-ca:restoreCacertsFrom cannot name cacerts itself", () => {
    assert.throws(() => parseConfig((k) => ({ clusterName: "c", restoreCacertsFrom: "cacerts" } as Record<string, string>)[k]), /istio-ca:restoreCacertsFrom must name a backup/);
});

test("first up over a cert-manager cacerts: the Secret keeps its type and gets tls.crt / tls.key / ca.crt, the key secret, hashes as read back", async () => {
    const existing = certManagerCacerts().files;
    const r = await deploy({}, undefined, clusterFacts({ cacerts: { name: "cacerts", type: "kubernetes.io/tls", data: existing } }));
    assert.equal(r.error, undefined);
    assert.match(r.warnings.join("\n"), /LAYOUT: Secret istio-system\/cacerts is of type kubernetes\.io\/tls/);
    const secret = r.named(SECRET, "cacerts-secret")!;
    assert.equal(secret.inputs.type, "kubernetes.io/tls");
    const data = await promiseOf(secret.inputs.stringData) as Record<string, string>;
    assert.deepEqual(Object.keys(data).sort(), ["ca.crt", "tls.crt", "tls.key"]);
    assert.equal(await isSecret(pulumi.output((secret.inputs.stringData as Record<string, pulumi.Output<string>>)["tls.key"])), true, "tls.key stays secret");
    assert.equal(bundleFingerprints(data["tls.crt"], "tls.crt").length, 1, "tls.crt: the intermediate alone");
    const hash = servedContentHashOf(data);
    assert.equal(await promiseOf(r.outputs!.cacertsContentHash), hash, "the recorded hash is the one the drift check reads back");
    assert.deepEqual(await promiseOf(r.named(COMMAND, "backup-cacerts")!.inputs.triggers), [hash]);
    // The next run finds what it wrote: no drift.
    assert.equal(planServedDrift({ namespace: "istio-system", existing: { type: "kubernetes.io/tls", data }, recordedHash: hash, overwrite: false }).kind, "none");
});
