// One mesh, two clusters: a root stack and two cluster stacks on two local API servers, with the
// real engine and providers, and real Istio in each cluster (its own istiod, a pilot-agent per mesh
// pod: tests/harness/realIstio.ts). Both cacerts chain to the shared root and differ in
// intermediate; workloads of east and west complete mTLS before, during and after a shared-root
// rotation driven by the rotate driver.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Cluster, seedMesh, startCluster } from "../harness/cluster";
import { createTestStack, TestStack } from "../support/engine";
import { RealIstio } from "../harness/realIstio";
import { enableMultiRoot, MULTI_ROOT_PROXY_METADATA, SEED_SWAP } from "../support/localCluster";
import { CertificateHistory, failedPairHandshakes } from "../support/meshChecks";
import { bundleFingerprints } from "../../common/pem";
import { tolerateRefusalEchoes } from "../../plan/refusal";
import { applyTrustState } from "../../cli/stackTrustState";
import { inlineProgram } from "../../program/inline";
import { runCa } from "../../cli/ca";

async function cacerts(cluster: Cluster): Promise<Record<string, string>> {
    const secret = JSON.parse((await cluster.kubectl(["get", "secret", "cacerts", "-n", "istio-system", "-o", "json"])).stdout);
    return Object.fromEntries(Object.entries(secret.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]));
}

test("multicluster: a root stack, two cluster stacks, one shared root, an intermediate each", { timeout: 20 * 60_000 }, async (t) => {
    tolerateRefusalEchoes();
    const clusters: Cluster[] = [];
    const istiods: RealIstio[] = [];
    const names = ["east", "west"];
    const stacks: TestStack[] = [];
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "istio-ca-mc-"));
    try {
        for (let i = 0; i < 2; i++) {
            const cluster = await startCluster({ log: (m) => t.diagnostic(m) });
            clusters.push(cluster);
            await seedMesh(cluster);
            await enableMultiRoot(cluster);
            istiods.push(await RealIstio.start(cluster, { clusterId: names[i], proxyMetadata: MULTI_ROOT_PROXY_METADATA, log: (m) => t.diagnostic(m) }));
        }
        const root = await createTestStack("root", inlineProgram, { role: "root", keyAlgorithm: "ECDSA" });
        stacks.push(root);
        const rootUp = await root.stack.up({ onOutput: (l) => t.diagnostic(l.trimEnd()) });
        assert.equal(rootUp.outputs.roots.secret, true, "the root keys cross only as a secret output");

        // A cluster stack naming a generation the root stack does not have is refused, naming both.
        for (const [i, name] of names.entries()) {
            const ts = await createTestStack(name, inlineProgram, {
                clusterName: name,
                keyAlgorithm: "ECDSA",
                rootStack: `organization/istio-ca/${root.name}`,
                kubeconfig: clusters[i].kubeconfig,
                kubectlPath: path.join(clusters[i].binDir, "kubectl"),
                ...istiods[i].stackConfig,
                ...SEED_SWAP,
                verifyWorkloadCertificates: "false",
                rootCertTimeoutSeconds: "60",
            }, { backendDir: root.backendDir });
            stacks.push(ts);
            if (i === 0) {
                await ts.stack.setConfig("istio-ca:keyVersion", { value: "2" });
                await assert.rejects(ts.stack.preview(), /has no root generation 2 \(it has v1\)/);
                await ts.stack.setConfig("istio-ca:keyVersion", { value: "1" });
            }
            await ts.stack.up({ onOutput: (l) => t.diagnostic(l.trimEnd()) });
            const exported = JSON.stringify(await ts.stack.exportStack());
            assert.ok(!exported.includes("tls:index/selfSignedCert:SelfSignedCert"), `${name} makes no root of its own`);
        }

        const [east, west] = await Promise.all(clusters.map(cacerts));
        assert.deepEqual(bundleFingerprints(east["root-cert.pem"], "east"), bundleFingerprints(west["root-cert.pem"], "west"), "one shared root");
        assert.notEqual(east["ca-cert.pem"], west["ca-cert.pem"], "an intermediate each");
        for (const [name, data] of [["east", east], ["west", west]] as const) {
            fs.writeFileSync(path.join(scratch, `${name}-ca.pem`), data["ca-cert.pem"]);
            fs.writeFileSync(path.join(scratch, `${name}-root.pem`), data["root-cert.pem"]);
            fs.writeFileSync(path.join(scratch, `${name}-chain.pem`), data["cert-chain.pem"]);
            const subject = execFileSync("openssl", ["x509", "-in", `${name}-ca.pem`, "-noout", "-subject"], { cwd: scratch, encoding: "utf8" });
            assert.match(subject, new RegExp(`L ?= ?${name}`));
        }
        // Each cluster's chain verifies against the other cluster's trust bundle.
        const verify = (bundle: string, chain: string) =>
            execFileSync("openssl", ["verify", "-CAfile", bundle, chain], { cwd: scratch, encoding: "utf8" });
        assert.match(verify("west-root.pem", "east-chain.pem"), /OK/);
        assert.match(verify("east-root.pem", "west-chain.pem"), /OK/);

        // The shared root, rotated while every workload of east and west keeps talking to the other
        // cluster's: root stack trusts root 2; the driver walks both clusters through the phases;
        // root stack completes. Every certificate seen live is recorded; each pair that was live at
        // the same time, one in each cluster, must complete mTLS.
        const history = new CertificateHistory();
        history.start({ east: () => istiods[0].agents!.certificates(), west: () => istiods[1].agents!.certificates() });
        const say = (_stack: string, line: string): void => t.diagnostic(line.trimEnd());
        await applyTrustState(root.stack, { keyVersion: 1, trustedKeyVersions: [1, 2], intermediateVersion: 1 });
        await root.stack.up({ onOutput: (l) => t.diagnostic(l.trimEnd()) });
        const clusterStacks = stacks.slice(1);
        await runCa({ command: "rotate", stacks: clusterStacks.map((s) => s.name), to: 2, envVars: clusterStacks[0].envVars, output: say });
        await applyTrustState(root.stack, { keyVersion: 2, trustedKeyVersions: [2], intermediateVersion: 1 });
        await root.stack.up({ onOutput: (l) => t.diagnostic(l.trimEnd()) });
        history.stop();
        for (const istio of istiods) istio.istiod.assertHealthy();
        const [eastAfter, westAfter] = await Promise.all(clusters.map(cacerts));
        assert.notDeepEqual(bundleFingerprints(eastAfter["root-cert.pem"], "east"), bundleFingerprints(east["root-cert.pem"], "east"), "the root changed");
        assert.deepEqual(bundleFingerprints(eastAfter["root-cert.pem"], "east"), bundleFingerprints(westAfter["root-cert.pem"], "west"), "still one shared root");
        const pairs = history.concurrentCrossClusterPairs();
        t.diagnostic(`${history.size} workload certificates seen; ${pairs.length} east-west pairs live at the same time`);
        assert.ok(pairs.length >= 49, "the workloads of both clusters were sampled throughout");
        assert.deepEqual(await failedPairHandshakes(pairs), [], "every east-west pair live at the same time completes mTLS");
    } finally {
        for (const istiod of istiods) await istiod.stop();
        for (const ts of stacks.reverse()) await ts.dispose();
        fs.rmSync(stacks[0]?.backendDir ?? "/nonexistent", { recursive: true, force: true });
        for (const cluster of clusters) await cluster.stop();
        fs.rmSync(scratch, { recursive: true, force: true });
    }
});
