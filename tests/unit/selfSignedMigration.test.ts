// The move from istiod's own self-signed CA (istio-ca-secret) to plugged-in certificates: root
// generation 0, read from the cluster, classified like any root rotation. Pulumi mocks; real
// certificates from openssl.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { clusterFacts, isSecret, promiseOf, setupMocks } from "../support/mocks";
import { parseConfig } from "../../plan/config";
import type { ClusterFacts } from "../../plan/clusterFacts";
import { bundleFingerprints, splitCertificates } from "../../common/pem";
import { TrustState } from "../../plan/rotation";
import { handMadeCacerts, istiodSelfSignedCa } from "../support/testCerts";

const world = setupMocks({});
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { istioCa } = require("../../program/istioCa") as typeof import("../../program/istioCa");

const SECRET = "kubernetes:core/v1:Secret";
const SIGNED = "tls:index/locallySignedCert:LocallySignedCert";
const istiodCa = istiodSelfSignedCa();
const onIstiodCa = (overrides: Partial<ClusterFacts> = {}): ClusterFacts => clusterFacts({
    istioCaSecret: { name: "istio-ca-secret", data: { "ca-cert.pem": istiodCa.certPem, "ca-key.pem": istiodCa.keyPem } },
    ...overrides,
});

async function deploy(values: Record<string, string>, cluster: ClusterFacts, previous?: TrustState) {
    const before = world.resources.length;
    const warnings: string[] = [];
    const warn = pulumi.log.warn;
    pulumi.log.warn = (msg: string) => { warnings.push(msg); return Promise.resolve(); };
    try {
        const config = parseConfig((k) => ({ clusterName: "c", keyAlgorithm: "ECDSA", ...values } as Record<string, string>)[k]);
        const outcome = await world.run(() => istioCa(config, {
            previousOutputs: async () => (previous ? { trustState: previous } : undefined),
            readRootStack: async () => undefined,
            inspectCluster: async () => cluster,
        })).then((outputs) => ({ outputs, error: undefined as Error | undefined }), (error: Error) => ({ outputs: undefined, error }));
        return { ...outcome, warnings, registered: world.resources.slice(before) };
    } finally {
        pulumi.log.warn = warn;
    }
}

async function cacertsOf(registered: typeof world.resources): Promise<Record<string, string>> {
    const secret = registered.find((r) => r.type === SECRET && r.name === "cacerts-secret")!;
    return promiseOf(secret.inputs.stringData) as Promise<Record<string, string>>;
}

test("phase 1 from istiod's CA: it keeps signing from cacerts, root-cert.pem trusts it and root 1", async () => {
    const r = await deploy({ keyVersion: "0", trustedKeyVersions: "[0,1]" }, onIstiodCa());
    assert.equal(r.error, undefined);
    assert.equal(r.outputs!.transition.kind, "trust", "the mesh on istio-ca-secret counts as generation 0");
    assert.deepEqual(r.registered.filter((x) => x.type === SIGNED), [], "no intermediate while istiod's CA signs");
    const data = await cacertsOf(r.registered);
    assert.equal(data["ca-cert.pem"].trim(), istiodCa.certPem.trim());
    assert.equal(data["ca-key.pem"], istiodCa.keyPem, "the signer's key is istio-ca-secret's");
    assert.equal(data["cert-chain.pem"].trim(), istiodCa.certPem.trim());
    const bundle = splitCertificates(data["root-cert.pem"]);
    assert.equal(bundle.length, 2);
    assert.equal(bundle[0].trim(), istiodCa.certPem.trim(), "the self-signed root first, then root 1");
    assert.equal(bundle[1].trim(), world.roots.get("root-v1")!.certPem.trim());
    const secret = r.registered.find((x) => x.type === SECRET && x.name === "cacerts-secret")!;
    assert.equal(await isSecret(pulumi.output(secret.inputs.stringData["ca-key.pem"])), true);
    const outputs = JSON.stringify(await promiseOf(pulumi.output({ s: r.outputs!.signingRoot, t: r.outputs!.trustedRoots, i: r.outputs!.intermediate })));
    assert.ok(!outputs.includes("PRIVATE"), "no key in the outputs");
    assert.match(outputs, /"v0":\{"subject":"O=cluster.local"/);
});

test("phase 1 needs multi-root on istiod, and says how to enable it", async () => {
    const r = await deploy({ keyVersion: "0", trustedKeyVersions: "[0,1]" }, onIstiodCa({ istiodsWithoutMultiRoot: ["istiod"] }));
    assert.match(r.error!.message, /ISTIO_MULTIROOT_MESH=true/);
    assert.match(r.error!.message, /PROXY_CONFIG_XDS_AGENT=true/);
    assert.deepEqual(r.registered, []);
});

test("phase 2: the intermediate under root 1 signs, root-cert.pem is self-signed + root 1 + root 1", async () => {
    const r = await deploy({ keyVersion: "1", trustedKeyVersions: "[0,1]" }, onIstiodCa(), { keyVersion: 0, trustedKeyVersions: [0, 1], intermediateVersion: 1 });
    assert.equal(r.error, undefined);
    assert.equal(r.outputs!.transition.kind, "sign");
    assert.equal(r.registered.filter((x) => x.type === SIGNED).length, 1);
    const data = await cacertsOf(r.registered);
    const bundle = splitCertificates(data["root-cert.pem"]);
    assert.equal(bundle.length, 3);
    assert.equal(bundle[1], bundle[2], "the new root appended once more (same set, other bytes)");
    assert.equal(bundleFingerprints(data["root-cert.pem"], "bundle").length, 2);
    assert.notEqual(data["ca-cert.pem"].trim(), istiodCa.certPem.trim());
});

test("phase 3: only root 1; istio-ca-secret is not needed any more", async () => {
    const cluster = onIstiodCa();
    const r = await deploy({ keyVersion: "1" }, cluster, { keyVersion: 1, trustedKeyVersions: [0, 1], intermediateVersion: 1 });
    assert.equal(r.error, undefined);
    assert.equal(r.outputs!.transition.kind, "complete");
    const data = await cacertsOf(r.registered);
    assert.equal(splitCertificates(data["root-cert.pem"]).length, 1);
    assert.ok(!data["root-cert.pem"].includes(istiodCa.certPem.trim()));
});

test("the default config on a mesh running on istiod's CA is the immediate swap: refused unless asked for, then allowed loudly, with the phased commands", async () => {
    const refused = await deploy({}, onIstiodCa({ istiodsWithoutMultiRoot: ["istiod"] }));
    assert.match(refused.error!.message, /refusing an immediate root swap that was not asked for: ROOT SWAP WITHOUT TRUST OVERLAP/);
    assert.match(refused.error!.message, /pulumi config set istio-ca:keyVersion 0/);
    assert.deepEqual(refused.registered, []);
    const r = await deploy({ allowImmediateRootSwap: "true" }, onIstiodCa({ istiodsWithoutMultiRoot: ["istiod"] }));
    assert.equal(r.error, undefined);
    assert.equal(r.outputs!.transition.kind, "immediate-swap");
    const warning = r.warnings.join("\n");
    assert.match(warning, /ROOT SWAP WITHOUT TRUST OVERLAP/);
    assert.match(warning, /pulumi config set istio-ca:keyVersion 0/);
    assert.match(warning, /pulumi config set istio-ca:trustedKeyVersions '\[0,1\]'/);
});

test("a cluster that already has cacerts is not taken for istiod's CA", async () => {
    const cluster = onIstiodCa({ cacerts: { name: "cacerts", data: handMadeCacerts().files } });
    const r = await deploy({ keyVersion: "0", trustedKeyVersions: "[0,1]" }, cluster);
    assert.equal(r.outputs?.transition.kind ?? "refused", "initial");
});

test("generation 0 without istio-ca-secret, or with a broken one: refused before anything, naming the Secret", async () => {
    const none = await deploy({ keyVersion: "0", trustedKeyVersions: "[0,1]" }, clusterFacts());
    assert.match(none.error!.message, /includes 0 \(istiod's self-signed CA\), but there is no Secret istio-ca-secret in namespace istio-system/);
    assert.deepEqual(none.registered, []);
    const other = istiodSelfSignedCa();
    const mismatch = await deploy({ keyVersion: "0", trustedKeyVersions: "[0,1]" }, onIstiodCa({
        istioCaSecret: { name: "istio-ca-secret", data: { "ca-cert.pem": istiodCa.certPem, "ca-key.pem": other.keyPem } },
    }));
    assert.match(mismatch.error!.message, /Secret istio-ca-secret in namespace istio-system of the test cluster/);
    assert.match(mismatch.error!.message, /match/);
    assert.deepEqual(mismatch.registered, []);
});

test("the proxies' side of multi-root: refused when the mesh config lacks PROXY_CONFIG_XDS_AGENT, warned when unknown", async () => {
    const disabled = await deploy({ keyVersion: "0", trustedKeyVersions: "[0,1]" }, onIstiodCa({ proxyXdsAgent: "disabled" }));
    assert.match(disabled.error!.message, /ConfigMap istio in istio-system, defaultConfig.proxyMetadata\) lacks PROXY_CONFIG_XDS_AGENT/);
    assert.deepEqual(disabled.registered, []);
    const unknown = await deploy({ keyVersion: "0", trustedKeyVersions: "[0,1]" }, onIstiodCa({ proxyXdsAgent: "unknown" }));
    assert.equal(unknown.error, undefined);
    assert.ok(unknown.warnings.some((w) => /could not check the proxies' multi-root support/.test(w)));
    const enabled = await deploy({ keyVersion: "0", trustedKeyVersions: "[0,1]" }, onIstiodCa({ proxyXdsAgent: "enabled" }));
    assert.ok(!enabled.warnings.some((w) => /proxies' multi-root/.test(w)));
});

