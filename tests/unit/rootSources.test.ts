// The three root sources (generated here, a root stack, an external root), with Pulumi mocks.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { clusterFacts, isSecret, promiseOf, setupMocks } from "../support/mocks";
import { parseConfig } from "../../plan/config";
import { issuedBy, selfSignedCa } from "../support/testCerts";

const world = setupMocks({});
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { istioCa, rootStack } = require("../../program/istioCa") as typeof import("../../program/istioCa");

const SELF_SIGNED = "tls:index/selfSignedCert:SelfSignedCert";
const SIGNED = "tls:index/locallySignedCert:LocallySignedCert";
const offline = selfSignedCa("Offline Root");

async function deploy(values: Record<string, string>, roots?: Record<string, { certPem: string; privateKeyPem: string }>) {
    const before = world.resources.length;
    const config = parseConfig((k) => ({ clusterName: "east", ...values } as Record<string, string>)[k]);
    const outcome = await world.run(() => istioCa(config, {
        previousOutputs: async () => undefined,
        inspectCluster: async () => clusterFacts(),
        readRootStack: async () => roots,
    })).then((outputs) => ({ outputs, error: undefined as Error | undefined }), (error: Error) => ({ outputs: undefined, error }));
    return { ...outcome, registered: world.resources.slice(before) };
}

test("external root: no root resources here; the intermediate is signed by it; the key stays secret", async () => {
    const r = await deploy({ rootCertPem: offline.certPem, rootKeyPem: offline.keyPem });
    assert.equal(r.error, undefined);
    assert.deepEqual(r.registered.filter((x) => x.type === SELF_SIGNED), []);
    const signed = r.registered.find((x) => x.type === SIGNED)!;
    assert.equal((await promiseOf<string>(signed.inputs.caCertPem)).trim(), offline.certPem.trim());
    assert.equal(await isSecret(pulumi.output(signed.inputs.caPrivateKeyPem)), true);
});

test("external root that is not a CA, or whose key does not match: refused before anything, naming the source", async () => {
    const leaf = issuedBy(offline, "/CN=leaf", { ca: false });
    const notCa = await deploy({ rootCertPem: leaf.certPem, rootKeyPem: leaf.keyPem });
    assert.match(notCa.error!.message, /istio-ca:rootCertPem \/ istio-ca:rootKeyPem: .*CA/);
    assert.deepEqual(notCa.registered, []);
    const other = selfSignedCa("Other");
    const mismatch = await deploy({ rootCertPem: offline.certPem, rootKeyPem: other.keyPem });
    assert.match(mismatch.error!.message, /istio-ca:rootCertPem \/ istio-ca:rootKeyPem: .*(match|belong)/i);
    assert.deepEqual(mismatch.registered, []);
    assert.doesNotMatch(mismatch.error!.message, /PRIVATE KEY/);
});

test("root stack: the cluster uses the shared generations and makes none", async () => {
    const shared = { v1: { certPem: offline.certPem, privateKeyPem: offline.keyPem } };
    const r = await deploy({ rootStack: "organization/istio-ca/root" }, shared);
    assert.equal(r.error, undefined);
    assert.deepEqual(r.registered.filter((x) => x.type === SELF_SIGNED), []);
    const csr = r.registered.find((x) => x.type === "tls:index/certRequest:CertRequest")!;
    assert.equal((await promiseOf(csr.inputs.subject) as { locality: string }).locality, "east");
    assert.equal(await promiseOf(r.registered.find((x) => x.type === SIGNED)!.inputs.caCertPem), offline.certPem);
});

test("root stack without the generation this cluster needs, or without outputs: a clear error", async () => {
    const shared = { v1: { certPem: offline.certPem, privateKeyPem: offline.keyPem } };
    const missing = await deploy({ rootStack: "organization/istio-ca/root", keyVersion: "1", trustedKeyVersions: "[1,2]" }, shared);
    assert.match(missing.error!.message, /istio-ca:rootStack organization\/istio-ca\/root has no root generation 2 \(it has v1\)/);
    assert.deepEqual(missing.registered, []);
    const none = await deploy({ rootStack: "organization/istio-ca/nope" }, undefined);
    assert.match(none.error!.message, /istio-ca:rootStack organization\/istio-ca\/nope: the stack has no output `roots`/);
});

test("root stack role: one root per generation, keys exported only as a secret", async () => {
    const config = parseConfig((k) => ({ role: "root", trustedKeyVersions: "[1,2]", keyVersion: "1", keyAlgorithm: "ECDSA" } as Record<string, string>)[k]);
    const before = world.resources.length;
    const outputs = await world.run(() => rootStack(config));
    const made = world.resources.slice(before).filter((x) => x.type === SELF_SIGNED).map((x) => x.name);
    assert.deepEqual(made.sort(), ["root-v1-cert", "root-v2-cert"]);
    assert.equal(world.resources.slice(before).some((x) => x.type.startsWith("kubernetes:") || x.type.startsWith("command:")), false, "a root stack touches no cluster");
    assert.equal(await isSecret(outputs.roots as pulumi.Output<unknown>), true);
    const roots = await promiseOf(outputs.roots as pulumi.Output<Record<string, { certPem: string }>>);
    assert.deepEqual(Object.keys(roots).sort(), ["v1", "v2"]);
});

test("config: root sources are exclusive and complete", () => {
    const raw = (v: Record<string, string>) => (k: string) => ({ clusterName: "c", ...v } as Record<string, string>)[k];
    assert.throws(() => parseConfig(raw({ rootStack: "a/b/c", rootCertPem: "x", rootKeyPem: "y" })), /istio-ca:rootStack and istio-ca:rootCertPem\/rootKeyPem are two different root sources/);
    assert.throws(() => parseConfig(raw({ rootCertPem: "x" })), /istio-ca:rootKeyPem is required with an external root/);
    assert.throws(() => parseConfig(raw({ rootCertPem: "x", rootKeyPem: "y", trustedKeyVersions: "[1,2]" })), /istio-ca:trustedKeyVersions can list only keyVersion with an external root/);
    assert.throws(() => parseConfig((k) => ({ role: "root", rootStack: "a/b/c" } as Record<string, string>)[k]), /istio-ca:role root makes the root generations itself/);
    assert.equal(parseConfig((k) => ({ role: "root" } as Record<string, string>)[k]).clusterName, "", "a root stack needs no cluster name");
});
