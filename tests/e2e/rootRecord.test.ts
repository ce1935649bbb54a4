// #12 on the real engine, the real tls and kubernetes providers and a local API server:
// - item 1: a key spec edit replaces no existing root (preview); a cacerts edited by hand is
//   refused, then backed up and overwritten when asked (istio-ca:overwriteChangedCacerts);
// - item 2: phase 1 whose last gate fails leaves the previous record, so phase 2 is refused;
//   the gate fixed and phase 1 re-run, phase 2 is accepted.
// Real istiod and agents run in the cluster (tests/harness/realIstio.ts). The gate made to fail is
// verify-proxies (the last step here), for real: the restarted pods get no sidecar agent, so they
// never show in the real istioctl's proxy-status.
import { test } from "node:test";
import assert from "node:assert/strict";
import { seedMesh, startCluster } from "../harness/cluster";
import { createTestStack, OpRecorder, TestStack } from "../support/engine";
import { RealIstio } from "../harness/realIstio";
import { enableMultiRoot, localClusterConfig, MULTI_ROOT_PROXY_METADATA, readSecret, SEED_SWAP } from "../support/localCluster";
import { selfSignedCa } from "../support/testCerts";
import { backupNameOf } from "../../common/cacertsFiles";
import { bundleFingerprints, formatFingerprint } from "../../common/pem";
import { tolerateRefusalEchoes } from "../../plan/refusal";
import { applyTrustState } from "../../cli/stackTrustState";
import { inlineProgram } from "../../program/inline";

test("real engine: recorded roots and the phase record (#12 items 1 and 2)", { timeout: 20 * 60_000 }, async (t) => {
    tolerateRefusalEchoes();
    const cluster = await startCluster({ log: (m) => t.diagnostic(m) });
    let istio: RealIstio | undefined;
    let ts: TestStack | undefined;
    try {
        await seedMesh(cluster);
        await enableMultiRoot(cluster);
        istio = await RealIstio.start(cluster, { proxyMetadata: MULTI_ROOT_PROXY_METADATA, log: (m) => t.diagnostic(m) });
        const agents = istio.agents!;
        ts = await createTestStack("record", inlineProgram, localClusterConfig(cluster, "record", {
            ...istio.stackConfig,
            proxyStatusTimeoutSeconds: "10",
            ...SEED_SWAP,
        }));
        const { stack } = ts;
        const log = (line: string): void => t.diagnostic(line.trimEnd());
        const recorded = async () => (await stack.outputs()).trustState.value;

        // Phase 0. The record holds root 1 by certificate and key spec.
        const first = await stack.up({ onOutput: log });
        await stack.removeConfig("istio-ca:allowImmediateRootSwap");
        const v1 = (await readSecret(cluster, "cacerts"))!;
        const root1 = formatFingerprint(bundleFingerprints(v1.data["root-cert.pem"], "root")[0]);
        assert.deepEqual(first.outputs.recordedRoots.value, { v1: { sha256Fingerprint: root1, key: { algorithm: "ECDSA", ecdsaCurve: "P256" }, validityHours: 3650 * 24 } });

        // Item 1: a key spec edit on a deployed stack replaces no existing root (it would, with the
        // key spec from config: it is an input of root-v1-key).
        await stack.setAllConfig({ "istio-ca:keyAlgorithm": { value: "RSA" }, "istio-ca:rsaBits": { value: "2048" } });
        const spec = new OpRecorder();
        const specLines: string[] = [];
        await stack.preview({ onEvent: spec.onEvent, onOutput: (l) => specLines.push(l) });
        const touched = [...spec.ops.entries()].filter(([n, ops]) => n.startsWith("root-v1") && !(ops.size === 1 && ops.has("same")));
        assert.deepEqual(touched, [], "root-v1-* unchanged");
        assert.match(specLines.join(""), /root-v1 keeps its recorded ECDSA P256 key/);
        await stack.setAllConfig({ "istio-ca:keyAlgorithm": { value: "ECDSA" } });
        await stack.removeConfig("istio-ca:rsaBits");

        // Item 2: phase 1 with its last gate failing.
        agents.pause();
        await applyTrustState(stack, { keyVersion: 1, trustedKeyVersions: [1, 2], intermediateVersion: 1 });
        await assert.rejects(stack.up({ onOutput: log }), /proxies not in sync/);
        assert.equal(bundleFingerprints((await readSecret(cluster, "cacerts"))!.data["root-cert.pem"], "p1").length, 2, "phase 1 was applied");
        assert.deepEqual(await recorded(), { keyVersion: 1, trustedKeyVersions: [1], intermediateVersion: 1 }, "the record stays at phase 0");

        // Phase 2 is refused: the record says root 2 was never trusted (its gate did not pass).
        await applyTrustState(stack, { keyVersion: 2, trustedKeyVersions: [1, 2], intermediateVersion: 1 });
        await assert.rejects(stack.preview(), /refusing this change of the CA.*skips phase 1 'trust'/s);
        await assert.rejects(stack.up(), /refusing this change of the CA/);

        // The gate fixed, phase 1 again (cacerts holds what that up applied: not taken for a hand edit), then phase 2.
        agents.resume();
        await applyTrustState(stack, { keyVersion: 1, trustedKeyVersions: [1, 2], intermediateVersion: 1 });
        await stack.up({ onOutput: log });
        assert.deepEqual(await recorded(), { keyVersion: 1, trustedKeyVersions: [1, 2], intermediateVersion: 1 });
        await applyTrustState(stack, { keyVersion: 2, trustedKeyVersions: [1, 2], intermediateVersion: 1 });
        const phase2 = await stack.up({ onOutput: log });
        assert.deepEqual(await recorded(), { keyVersion: 2, trustedKeyVersions: [1, 2], intermediateVersion: 1 });
        assert.deepEqual(Object.keys(phase2.outputs.recordedRoots.value), ["v1", "v2"]);
        assert.equal(phase2.outputs.recordedRoots.value.v1.sha256Fingerprint, root1, "root 1 is the same certificate through the phases");

        // Item 1: cacerts edited by hand since the last up: refused, naming the backup and the option.
        const deployed = (await readSecret(cluster, "cacerts"))!;
        const handRoot = selfSignedCa("Hand Root").certPem;
        const edited = { ...deployed.data, "root-cert.pem": handRoot };
        await cluster.kubectl(["patch", "secret", "cacerts", "-n", "istio-system", "--type", "merge", "-p",
            JSON.stringify({ data: { "root-cert.pem": Buffer.from(handRoot).toString("base64") } })]);
        const backup = backupNameOf(edited);
        await assert.rejects(stack.preview(), (err: Error) => {
            assert.match(err.message, /Secret istio-system\/cacerts changed outside this stack since its last up/);
            assert.ok(err.message.includes(`backs it up as Secret istio-ca-backups/${backup}`), err.message);
            assert.match(err.message, /pulumi config set istio-ca:overwriteChangedCacerts true/);
            return true;
        });
        assert.equal((await readSecret(cluster, "cacerts"))!.data["root-cert.pem"], handRoot, "nothing applied");
        await stack.setConfig("istio-ca:overwriteChangedCacerts", { value: "true" });
        await stack.up({ onOutput: log });
        assert.equal((await readSecret(cluster, backup, "istio-ca-backups"))!.data["root-cert.pem"], handRoot, "the hand edit is backed up");
        assert.equal((await readSecret(cluster, "cacerts"))!.data["root-cert.pem"], deployed.data["root-cert.pem"], "and overwritten with the stack's content");
    } finally {
        await istio?.stop();
        await ts?.dispose();
        await cluster.stop();
    }
});
