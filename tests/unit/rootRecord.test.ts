// #12 item 1: a root changes only by a new generation. Each deployment records every generation's
// root by certificate (fingerprint, key spec); the next run refuses other roots under the same
// numbers before anything is registered, keeps existing generations on their recorded key spec,
// and refuses to overwrite a cacerts changed by someone else. #12 item 2: the record waits for the
// last gate. Pulumi mocks; the real engine: tests/e2e/rootRecord.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { clusterFacts, promiseOf, runCapturing, setupMocks } from "../support/mocks";
import type { ClusterFacts } from "../../plan/clusterFacts";
import { parseConfig } from "../../plan/config";
import { publicContentHash } from "../../common/cacertsFiles";
import { changedRoots, keySpecOfCert, recordedRoot, RootRecord } from "../../plan/rootRecord";
import { APPLIED_HASH_ANNOTATION, planServedDrift } from "../../plan/takeover";
import { TrustState } from "../../plan/rotation";
import { handMadeCacerts, openssl, selfSignedCa } from "../support/testCerts";

const world = setupMocks({});
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { istioCa, rootStack, stackOutputs } = require("../../program/istioCa") as typeof import("../../program/istioCa");

const KEY = "tls:index/privateKey:PrivateKey";
const CERT = "tls:index/selfSignedCert:SelfSignedCert";
const steady: TrustState = { keyVersion: 1, trustedKeyVersions: [1], intermediateVersion: 1 };
const rootA = selfSignedCa("Root A");
const rootB = selfSignedCa("Root B");

async function deploy(values: Record<string, string>, previous: Record<string, unknown> | undefined, opts: { cluster?: ClusterFacts; rootStack?: Record<string, { certPem: string; privateKeyPem: string }> } = {}) {
    const config = parseConfig((k) => ({ clusterName: "c", ...values } as Record<string, string>)[k]);
    return runCapturing(world, () => istioCa(config, {
        previousOutputs: async () => previous,
        readRootStack: async () => opts.rootStack,
        inspectCluster: async () => opts.cluster ?? clusterFacts(),
    }));
}

const recordOf = (gens: Record<number, string>, validityHours?: number): RootRecord =>
    Object.fromEntries(Object.entries(gens).map(([g, pem]) => [`v${g}`, recordedRoot(pem, validityHours)]));

test("key spec and fingerprint are read from the certificate", () => {
    assert.deepEqual(keySpecOfCert(rootA.certPem), { algorithm: "ECDSA", ecdsaCurve: "P256" });
    const rsa = openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "/dev/null", "-days", "1", "-subj", "/CN=rsa"]);
    assert.deepEqual(keySpecOfCert(rsa), { algorithm: "RSA", rsaBits: 2048 });
    assert.match(recordedRoot(rootA.certPem).sha256Fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    assert.deepEqual(changedRoots(recordOf({ 1: rootA.certPem }), [{ generation: 1, certPem: rootA.certPem, source: "s" }]), []);
    assert.deepEqual(changedRoots(undefined, [{ generation: 1, certPem: rootB.certPem, source: "s" }]), [], "nothing recorded: nothing to compare");
    assert.equal(changedRoots(recordOf({ 1: rootA.certPem }), [{ generation: 1, certPem: rootB.certPem, source: "s" }]).length, 1);
});

test("an external root replaced under the same keyVersion: refused before anything, naming generation, both fingerprints and the config to use", async () => {
    const previous = { trustState: steady, recordedRoots: recordOf({ 1: rootA.certPem }) };
    const r = await deploy({ rootCertPem: rootB.certPem, rootKeyPem: rootB.keyPem }, previous);
    assert.match(r.error!.message, /root generation 1 would change/);
    assert.ok(r.error!.message.includes(recordedRoot(rootA.certPem).sha256Fingerprint), "the recorded fingerprint");
    assert.ok(r.error!.message.includes(recordedRoot(rootB.certPem).sha256Fingerprint), "the new fingerprint");
    assert.match(r.error!.message, /from istio-ca:rootCertPem/);
    assert.match(r.error!.message, /pulumi config set istio-ca:keyVersion 2/);
    assert.match(r.error!.message, /istio-ca:allowImmediateRootSwap true/);
    assert.deepEqual(r.registered, []);

    const same = await deploy({ rootCertPem: rootA.certPem, rootKeyPem: rootA.keyPem }, previous);
    assert.equal(same.error, undefined, "the recorded root itself is accepted");

    const asked = await deploy({ rootCertPem: rootB.certPem, rootKeyPem: rootB.keyPem, allowImmediateRootSwap: "true" }, previous);
    assert.equal(asked.error, undefined);
    assert.match(asked.warnings.join("\n"), /ROOT SWAP UNDER THE SAME GENERATION .*root generation 1 would change/);
});

test("a root stack whose generation 1 was recreated: the cluster stack refuses it, naming the root stack output", async () => {
    const previous = { trustState: steady, recordedRoots: recordOf({ 1: rootA.certPem }) };
    const r = await deploy({ rootStack: "organization/istio-ca/root" }, previous, { rootStack: { v1: { certPem: rootB.certPem, privateKeyPem: rootB.keyPem } } });
    assert.match(r.error!.message, /root generation 1 would change: .*from istio-ca:rootStack organization\/istio-ca\/root output roots\.v1/);
    assert.match(r.error!.message, /npm run rotate -- --stack <stack> --to 2/);
    assert.deepEqual(r.registered, []);
});

test("istiod's self-signed CA (generation 0) regenerated since the last up: refused", async () => {
    const previous = { trustState: { keyVersion: 0, trustedKeyVersions: [0, 1], intermediateVersion: 1 }, recordedRoots: recordOf({ 0: rootA.certPem }) };
    const cluster = clusterFacts({ istioCaSecret: { name: "istio-ca-secret", data: { "ca-cert.pem": rootB.certPem, "ca-key.pem": rootB.keyPem } } });
    const r = await deploy({ keyVersion: "0", trustedKeyVersions: "[0,1]" }, previous, { cluster });
    assert.match(r.error!.message, /root generation 0 would change: .*from Secret istio-ca-secret/);
    assert.deepEqual(r.registered, []);
});

test("a key spec or validity edit keeps existing generations on their recorded values; a new generation takes the config", async () => {
    const previous = { trustState: steady, recordedRoots: { v1: { sha256Fingerprint: "", key: { algorithm: "RSA", rsaBits: 4096 }, validityHours: 87600 } } };
    // The mocks' certificate for root-v1 is whatever they issue: record its fingerprint so nothing differs.
    const probe = await deploy({ trustedKeyVersions: "[1,2]", keyAlgorithm: "ECDSA", rootValidityDays: "1000", intermediateValidityDays: "500" }, { trustState: steady });
    assert.equal(probe.error, undefined);
    previous.recordedRoots.v1.sha256Fingerprint = (await promiseOf(probe.outputs!.recordedRoots)).v1.sha256Fingerprint;
    const r = await deploy({ trustedKeyVersions: "[1,2]", keyAlgorithm: "ECDSA", rootValidityDays: "1000", intermediateValidityDays: "500" }, previous);
    assert.equal(r.error, undefined);
    const key = (name: string) => r.registered.find((x) => x.type === KEY && x.name === name)!.inputs;
    assert.deepEqual([key("root-v1-key").algorithm, key("root-v1-key").rsaBits], ["RSA", 4096], "root-v1 keeps its recorded key spec: no replacement");
    assert.equal(r.registered.find((x) => x.type === CERT && x.name === "root-v1-cert")!.inputs.validityPeriodHours, 87600);
    assert.deepEqual([key("root-v2-key").algorithm, key("root-v2-key").ecdsaCurve], ["ECDSA", "P256"], "a new generation takes the config");
    assert.equal(r.registered.find((x) => x.type === CERT && x.name === "root-v2-cert")!.inputs.validityPeriodHours, 24000);
    const recorded = await promiseOf(r.outputs!.recordedRoots);
    assert.deepEqual(Object.keys(recorded), ["v1", "v2"]);
    assert.equal(recorded.v1.validityHours, 87600);
    assert.equal(recorded.v2.validityHours, 24000);
});

test("a root stack keeps its recorded key spec too", async () => {
    const config = parseConfig((k) => ({ role: "root", keyAlgorithm: "ECDSA" } as Record<string, string>)[k]);
    await world.run(() => rootStack(config, { v1: { sha256Fingerprint: "x", key: { algorithm: "RSA", rsaBits: 3072 }, validityHours: 1000 } }));
    const key = world.resources.filter((x) => x.type === KEY && x.name === "root-v1-key").pop()!;
    assert.deepEqual([key.inputs.algorithm, key.inputs.rsaBits], ["RSA", 3072]);
});

test("a stack deployed by the previous version (no recordedRoots): no refusal, same resources, the roots get recorded", async () => {
    const r = await deploy({ keyAlgorithm: "ECDSA" }, { trustState: steady, cacertsContentHash: "0".repeat(64) });
    assert.equal(r.error, undefined);
    const recorded = await promiseOf(r.outputs!.recordedRoots);
    assert.equal(recorded.v1.sha256Fingerprint, recordedRoot(world.roots.get("root-v1")!.certPem).sha256Fingerprint);
    assert.deepEqual(r.warnings, []);
    assert.deepEqual(recorded.v1.key, { algorithm: "ECDSA", ecdsaCurve: "P256" });
    assert.equal(r.outputs!.transition.kind, "unchanged");
});

const served = handMadeCacerts().files;
const servedHash = publicContentHash({ caCertPem: served["ca-cert.pem"], rootCertPem: served["root-cert.pem"], certChainPem: served["cert-chain.pem"] });

test("served cacerts: the recorded content or the content the last apply wrote (annotation) is no drift; anything else is", () => {
    const base = { namespace: "istio-system", overwrite: false };
    assert.equal(planServedDrift({ ...base, existing: { data: served }, recordedHash: servedHash }).kind, "none");
    assert.equal(planServedDrift({ ...base, existing: { data: served, annotations: { [APPLIED_HASH_ANNOTATION]: servedHash } }, recordedHash: "f".repeat(64) }).kind, "none",
        "an up whose gates failed applied content it did not record");
    assert.equal(planServedDrift({ ...base, existing: { data: served }, recordedHash: undefined }).kind, "none", "nothing recorded");
    const edited = planServedDrift({ ...base, existing: { data: served, annotations: { [APPLIED_HASH_ANNOTATION]: "e".repeat(64) } }, recordedHash: "f".repeat(64) });
    assert.equal(edited.kind, "refuse");
});

test("a cacerts changed by hand since the last up: preview refuses, naming the backup and the option; with it, backed up and overwritten", async () => {
    const cluster = clusterFacts({ cacerts: { name: "cacerts", data: served } });
    const previous = { trustState: steady, cacertsContentHash: "f".repeat(64) };
    const r = await deploy({}, previous, { cluster });
    assert.match(r.error!.message, /Secret istio-system\/cacerts changed outside this stack since its last up/);
    assert.match(r.error!.message, /backs it up as Secret istio-ca-backups\/cacerts-backup-[0-9a-f]{12}/);
    assert.match(r.error!.message, /pulumi config set istio-ca:overwriteChangedCacerts true/);
    assert.deepEqual(r.registered, []);

    const ok = await deploy({ overwriteChangedCacerts: "true" }, previous, { cluster });
    assert.equal(ok.error, undefined);
    assert.match(ok.warnings.join("\n"), /OVERWRITE \(istio-ca:overwriteChangedCacerts\)/);
    const backup = ok.registered.find((x) => x.name === "backup-cacerts")!;
    assert.ok((await promiseOf<string[]>(backup.inputs.triggers)).includes(`overwrites ${servedHash}`), "the backup step runs for it");
    const secret = ok.registered.find((x) => x.type === "kubernetes:core/v1:Secret")!;
    const annotations = (await promiseOf(secret.inputs.metadata) as { annotations: Record<string, string> }).annotations;
    assert.equal(annotations["istio-ca/overwrote-content-hash"], servedHash, "an input changes, so cacerts is written again");
    assert.match(annotations[APPLIED_HASH_ANNOTATION], /^[0-9a-f]{64}$/);
});

test("#12 item 2: every recorded output waits for the last gate of the run", async () => {
    const r = await deploy({}, undefined);
    const outputs = stackOutputs(r.outputs!);
    const last = r.registered.filter((x) => x.type === "command:local:Command").pop()!;
    assert.equal(last.name, "mesh-verify-workload-certs");
    for (const key of ["trustState", "recordedRoots", "cacertsContentHash"]) {
        const deps = await (outputs[key] as unknown as { allResources(): Promise<Set<pulumi.Resource>> }).allResources();
        assert.ok(deps.has(last.resource), `${key} depends on ${last.name}`);
    }
});
