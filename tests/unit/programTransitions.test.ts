// The program compares the new config with what the stack's last deployment recorded, and
// refuses, warns or proceeds before the first resource is registered.
import { test } from "node:test";
import assert from "node:assert/strict";
import { clusterFacts, promiseOf, setupMocks } from "../support/mocks";
import type { ClusterFacts } from "../../plan/clusterFacts";
import { parseConfig } from "../../plan/config";
import { TrustState } from "../../plan/rotation";
import { splitCertificates } from "../../common/pem";

const world = setupMocks({});
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { istioCa } = require("../../program/istioCa") as typeof import("../../program/istioCa");

const steady: TrustState = { keyVersion: 1, trustedKeyVersions: [1], intermediateVersion: 1 };

async function deploy(values: Record<string, string>, previous: TrustState | undefined, cluster: ClusterFacts = clusterFacts()) {
    const before = world.resources.length;
    let inspections = 0;
    const config = parseConfig((k) => ({ clusterName: "c", ...values } as Record<string, string>)[k]);
    const result = await world.run(() => istioCa(config, {
        previousOutputs: async () => (previous ? { trustState: previous } : undefined),
        readRootStack: async () => undefined,
        inspectCluster: async () => { inspections++; return cluster; },
    })).then((outputs) => ({ outputs, error: undefined }), (error: Error) => ({ outputs: undefined, error }));
    return { ...result, inspections, registered: world.resources.slice(before) };
}

test("phase 1 (trust): both roots exist, root-cert.pem carries both, istiod must accept multi-root", async () => {
    const r = await deploy({ keyVersion: "1", trustedKeyVersions: "[1,2]" }, steady);
    assert.equal(r.error, undefined);
    assert.equal(r.outputs!.transition.kind, "trust");
    assert.equal(r.inspections, 1);
    const roots = r.registered.filter((x) => x.type === "tls:index/selfSignedCert:SelfSignedCert").map((x) => x.name);
    assert.deepEqual(roots.sort(), ["root-v1-cert", "root-v2-cert"]);
    const secret = r.registered.find((x) => x.type === "kubernetes:core/v1:Secret")!;
    const data = await promiseOf(secret.inputs.stringData) as Record<string, string>;
    assert.equal(splitCertificates(data["root-cert.pem"]).length, 2);
});

test("immediate swap: allowed with a warning, single root, no multi-root requirement", async () => {
    const r = await deploy({ keyVersion: "2", allowImmediateRootSwap: "true" }, steady);
    assert.equal(r.error, undefined);
    assert.equal(r.outputs!.transition.kind, "immediate-swap");
    assert.ok(r.outputs!.transition.warnings.some((w) => /mTLS/.test(w) && /istio-ca:trustedKeyVersions/.test(w)));
});

test("an istiod without ISTIO_MULTIROOT_MESH: phase 1 is refused before anything, the immediate swap is not", async () => {
    const single = clusterFacts({ istiodsWithoutMultiRoot: ["istiod"] });
    const phase1 = await deploy({ keyVersion: "1", trustedKeyVersions: "[1,2]" }, steady, single);
    assert.match(phase1.error!.message, /istiod Deployment\(s\) istiod .*lack ISTIO_MULTIROOT_MESH=true/);
    assert.deepEqual(phase1.registered, []);
    const swap = await deploy({ keyVersion: "2", allowImmediateRootSwap: "true" }, steady, single);
    assert.equal(swap.error, undefined);
    assert.equal(swap.outputs!.transition.kind, "immediate-swap");
});

test("immediate swap not asked for (istio-ca:allowImmediateRootSwap unset): refused before anything, naming the option and the phases", async () => {
    const r = await deploy({ keyVersion: "2" }, steady);
    assert.match(r.error!.message, /refusing an immediate root swap that was not asked for/);
    assert.match(r.error!.message, /pulumi config set istio-ca:allowImmediateRootSwap true/);
    assert.match(r.error!.message, /pulumi config set istio-ca:trustedKeyVersions '\[1,2\]'/);
    assert.deepEqual(r.registered, []);
    assert.equal(r.inspections, 0, "the cluster is not even asked");
});

test("a step that skips phase 1 is refused before anything is registered", async () => {
    const r = await deploy({ keyVersion: "2", trustedKeyVersions: "[1,2]" }, steady);
    assert.ok(r.error, "refused");
    assert.match(r.error!.message, /refusing this change of the CA/);
    assert.match(r.error!.message, /istio-ca:/);
    assert.deepEqual(r.registered, [], "nothing registered");
    assert.equal(r.inspections, 0, "the cluster is not even asked");
});

test("a failing preflight stops the program before any resource", async () => {
    const before = world.resources.length;
    const config = parseConfig((k) => ({ clusterName: "c" } as Record<string, string>)[k]);
    await assert.rejects(world.run(() => istioCa(config, {
        previousOutputs: async () => undefined,
    readRootStack: async () => undefined,
        inspectCluster: async () => { throw new Error("no istiod Deployment matches app=istiod"); },
    })), /no istiod Deployment/);
    assert.equal(world.resources.length, before);
});
