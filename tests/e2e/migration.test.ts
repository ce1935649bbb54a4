// A mesh on istiod's own self-signed CA moves to plugged-in certificates without an outage, on the
// real engine, real providers, a real API server and real Istio (tests/harness/realIstio.ts): real
// istiod starts without cacerts and makes its own CA (istio-ca-secret), real agents get their
// certificates from it, then the three phases run, one `pulumi up` each. After each, istiod took
// cacerts, every workload holds a certificate from the signer in cacerts, and every pair of live
// workloads completes mTLS.
import { test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { Cluster, seedMesh, startCluster } from "../harness/cluster";
import { createTestStack, TestStack } from "../support/engine";
import { RealIstio } from "../harness/realIstio";
import { localClusterConfig, MULTI_ROOT_PROXY_METADATA, readSecret } from "../support/localCluster";
import { workloadsNotIssuedBy } from "../support/meshChecks";
import { assertMeshTook, liveCertificates } from "../support/realMesh";
import { bundleFingerprints, splitCertificates } from "../../common/pem";
import { tolerateRefusalEchoes } from "../../plan/refusal";
import { applyTrustState } from "../../cli/stackTrustState";
import { inlineProgram } from "../../program/inline";
import { runCa } from "../../cli/ca";

async function istiodRestartedAt(cluster: Cluster): Promise<string | undefined> {
    const d = JSON.parse((await cluster.kubectl(["get", "deployment", "istiod", "-n", "istio-system", "-o", "json"])).stdout);
    return d.spec.template.metadata?.annotations?.["kubectl.kubernetes.io/restartedAt"];
}

const fp = (pem: string): string => bundleFingerprints(pem, "pem")[0];

test("migration from istio-ca-secret to cacerts: trust both, sign with root 1, trust only root 1; istio-ca-secret never modified", { timeout: 15 * 60_000 }, async (t) => {
    tolerateRefusalEchoes();
    const cluster = await startCluster({ log: (m) => t.diagnostic(m) });
    let istio: RealIstio | undefined;
    let ts: TestStack | undefined;
    try {
        await seedMesh(cluster);
        await cluster.kubectl(["set", "env", "deployment/istiod", "-n", "istio-system", "ISTIO_MULTIROOT_MESH=true"]);
        await cluster.kubectl(["rollout", "status", "deployment/istiod", "-n", "istio-system", "--timeout=120s"]);
        // Real istiod, started without cacerts, makes its own CA and keeps it in istio-ca-secret.
        istio = await RealIstio.start(cluster, { proxyMetadata: MULTI_ROOT_PROXY_METADATA, log: (m) => t.diagnostic(m) });
        const seeded = (await readSecret(cluster, "istio-ca-secret"))!;
        assert.ok(seeded, "real istiod wrote istio-ca-secret");
        const selfSigned = { certPem: seeded.data["ca-cert.pem"], keyPem: seeded.data["ca-key.pem"] };
        let live = await liveCertificates(cluster, istio);
        assert.deepEqual(workloadsNotIssuedBy(live, selfSigned.certPem), [], "the mesh runs on istiod's own CA");
        const judged = async (what: string): Promise<void> => {
            live = await assertMeshTook(cluster, istio!, what, live);
        };

        ts = await createTestStack("migration", inlineProgram, localClusterConfig(cluster, "migrated", { ...istio.stackConfig, rootCertTimeoutSeconds: "60" }));
        const { stack } = ts;
        const lines: string[] = [];
        const log = (line: string): void => { lines.push(line); t.diagnostic(line.trimEnd()); };

        // The default config would swap at once: refused unless asked for (#12); asked for, preview
        // says so, loudly, with the phased commands.
        await assert.rejects(stack.preview(), /refusing an immediate root swap that was not asked for/);
        await stack.setConfig("istio-ca:allowImmediateRootSwap", { value: "true" });
        const swap = await stack.preview({ onOutput: log });
        await stack.removeConfig("istio-ca:allowImmediateRootSwap");
        assert.equal(swap.changeSummary.create !== undefined, true);
        assert.match(lines.join(""), /runs on istiod's self-signed CA; it counts as root generation 0/);
        assert.match(lines.join(""), /ROOT SWAP WITHOUT TRUST OVERLAP/);
        assert.match(lines.join(""), /pulumi config set istio-ca:keyVersion 0/);

        // Phase 1 'trust': istiod's CA keeps signing, now from cacerts; root-cert.pem = self-signed + root 1.
        // First with a mesh config whose proxies lack multi-root support: refused, naming what to enable.
        const meshConfig = (mesh: string) => [{
            apiVersion: "v1", kind: "ConfigMap", metadata: { name: "istio", namespace: "istio-system" },
            data: { mesh },
        }];
        await cluster.apply(meshConfig('defaultConfig:\n  proxyMetadata:\n    PROXY_CONFIG_XDS_AGENT: "false"\n'));
        await applyTrustState(stack, { keyVersion: 0, trustedKeyVersions: [0, 1], intermediateVersion: 1 });
        await assert.rejects(stack.preview({ onOutput: log }), /lacks PROXY_CONFIG_XDS_AGENT/);
        // Then enabled, in flow style with a quoted key (the program reads it as istiod does: as YAML).
        await cluster.apply(meshConfig('defaultConfig: {proxyMetadata: {"PROXY_CONFIG_XDS_AGENT": "true"}}\n'));
        const beforeRestart = await istiodRestartedAt(cluster);
        const logFrom = istio.istiod.log().length;
        const phase1 = await stack.up({ onOutput: log });
        assert.equal(phase1.outputs.lastChange.value, "trust");
        // istiod, which started on its own CA, reads a cacerts created since only when it restarts (istio/istio#57853).
        await istio.istiod.waitForLog(/Use local CA certificate/, logFrom, 1000);
        await judged("phase 1");
        const c1 = (await readSecret(cluster, "cacerts"))!;
        assert.equal(c1.data["ca-cert.pem"].trim(), selfSigned.certPem.trim(), "the self-signed CA signs from cacerts");
        assert.equal(c1.data["ca-key.pem"].trim(), selfSigned.keyPem.trim());
        const bundle1 = bundleFingerprints(c1.data["root-cert.pem"], "phase 1");
        assert.equal(bundle1.length, 2);
        assert.equal(bundle1[0], fp(selfSigned.certPem));
        assert.notEqual(await istiodRestartedAt(cluster), beforeRestart, "istiod restarted once to see the new cacerts (#57853)");
        assert.ok(!JSON.stringify(phase1.outputs).includes("PRIVATE"), "no key in the outputs");

        // Phase 2 'sign': the intermediate under root 1 signs; both still trusted (A+B+B).
        await applyTrustState(stack, { keyVersion: 1, trustedKeyVersions: [0, 1], intermediateVersion: 1 });
        const phase2 = await stack.up({ onOutput: log });
        await judged("phase 2");
        assert.equal(phase2.outputs.lastChange.value, "sign");
        const c2 = (await readSecret(cluster, "cacerts"))!;
        assert.equal(splitCertificates(c2.data["root-cert.pem"]).length, 3);
        assert.deepEqual(new Set(bundleFingerprints(c2.data["root-cert.pem"], "phase 2")), new Set(bundle1));
        const root1 = new X509Certificate(splitCertificates(c2.data["root-cert.pem"])[1]);
        assert.ok(new X509Certificate(c2.data["ca-cert.pem"]).checkIssued(root1), "ca-cert.pem is issued by root 1");
        assert.ok(new X509Certificate(c2.data["ca-cert.pem"]).verify(root1.publicKey));

        // Phase 3 'complete': only root 1, by the rotate driver (it resumes from the config of phase 2).
        await runCa({ command: "rotate", to: 1, stacks: [ts.name], envVars: ts.envVars, output: (_s, l) => log(l) });
        await judged("phase 3");
        const phase3 = await stack.outputs();
        assert.equal(phase3.lastChange.value, "complete");
        assert.deepEqual(phase3.trustState.value, { keyVersion: 1, trustedKeyVersions: [1], intermediateVersion: 1 });
        const c3 = (await readSecret(cluster, "cacerts"))!;
        assert.deepEqual(bundleFingerprints(c3.data["root-cert.pem"], "phase 3"), [bundle1[1]]);
        assert.equal(c3.data["ca-cert.pem"], c2.data["ca-cert.pem"], "the signer did not change in phase 3");
        // The wait step passed: istio-ca-root-cert carries root 1 alone.
        const published = (await cluster.kubectl(["get", "configmap", "istio-ca-root-cert", "-n", "bookinfo", "-o", "jsonpath={.data.root-cert\\.pem}"])).stdout;
        assert.deepEqual(bundleFingerprints(published, "istio-ca-root-cert"), [bundle1[1]]);

        const after = (await readSecret(cluster, "istio-ca-secret"))!;
        assert.equal(after.resourceVersion, seeded.resourceVersion, "istio-ca-secret was never written");
        assert.deepEqual(after.data, seeded.data);
    } finally {
        await istio?.stop();
        await ts?.dispose();
        await cluster.stop();
    }
});
