// One mesh, two clusters: a root stack and two cluster stacks on two local API servers, with the
// real engine and providers. Both cacerts chain to the shared root and differ in intermediate.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Cluster, seedMesh, startCluster } from "../harness/cluster";
import { createTestStack, TestStack } from "../support/engine";
import { FakeIstiod } from "../support/fakeIstiod";
import { bundleFingerprints } from "../../lib/pem";
import { tolerateRefusalEchoes } from "../../lib/refusal";
import { inlineProgram } from "../../scripts/ca";

async function cacerts(cluster: Cluster): Promise<Record<string, string>> {
    const secret = JSON.parse((await cluster.kubectl(["get", "secret", "cacerts", "-n", "istio-system", "-o", "json"])).stdout);
    return Object.fromEntries(Object.entries(secret.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]));
}

test("multicluster: a root stack, two cluster stacks, one shared root, an intermediate each", { timeout: 20 * 60_000 }, async (t) => {
    tolerateRefusalEchoes();
    const clusters: Cluster[] = [];
    const istiods: FakeIstiod[] = [];
    const stacks: TestStack[] = [];
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "istio-ca-mc-"));
    try {
        for (let i = 0; i < 2; i++) {
            const cluster = await startCluster({ log: (m) => t.diagnostic(m) });
            clusters.push(cluster);
            await seedMesh(cluster);
            const istiod = new FakeIstiod(cluster);
            istiod.start();
            istiods.push(istiod);
        }
        const root = await createTestStack("root", inlineProgram, { role: "root", keyAlgorithm: "ECDSA" });
        stacks.push(root);
        const rootUp = await root.stack.up({ onOutput: (l) => t.diagnostic(l.trimEnd()) });
        assert.equal(rootUp.outputs.roots.secret, true, "the root keys cross only as a secret output");

        // A cluster stack naming a generation the root stack does not have is refused, naming both.
        const names = ["east", "west"];
        for (const [i, name] of names.entries()) {
            const ts = await createTestStack(name, inlineProgram, {
                clusterName: name,
                keyAlgorithm: "ECDSA",
                rootStack: `organization/istio-ca/${root.name}`,
                kubeconfig: clusters[i].kubeconfig,
                kubectlPath: path.join(clusters[i].binDir, "kubectl"),
                verifyProxyStatus: "false",
                verifyWorkloadCertificates: "false",
                rootCertTimeoutSeconds: "30",
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
    } finally {
        for (const istiod of istiods) await istiod.stop();
        for (const ts of stacks.reverse()) await ts.dispose();
        fs.rmSync(stacks[0]?.backendDir ?? "/nonexistent", { recursive: true, force: true });
        for (const cluster of clusters) await cluster.stop();
        fs.rmSync(scratch, { recursive: true, force: true });
    }
});
