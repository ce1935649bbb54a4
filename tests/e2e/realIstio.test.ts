// Real Istio judges the program: real istiod (pilot-discovery) runs against the local API server,
// a real pilot-agent per mesh pod gets its workload certificate from istiod's CA, and the program's
// verify-proxies step runs the real istioctl proxy-status against that istiod (tests/harness/
// realIstio.ts). The kubelet's sync of a changed Secret into the running istiod is delayed, as in a
// real cluster. After every `up`:
// - istiod took what the program wrote (its own log: "Use local CA certificate"; it never exited);
// - istio-ca-root-cert, written by istiod, carries the bundle in every namespace;
// - every workload's certificate was issued by the signer now in cacerts;
// - every pair of live workloads (those of before the step and those after it, as during a
//   rolling restart) completes an mTLS handshake; the seed's immediate root swap is shown to break
//   such pairs, the phases not.
// verify-workload-certs reads Envoy's admin API, which cannot run here: it stays off (unit-tested
// on real istioctl output).
import { test } from "node:test";
import assert from "node:assert/strict";
import { seedMesh, startCluster } from "../harness/cluster";
import { RealIstio } from "../harness/realIstio";
import type { WorkloadCertificate } from "../harness/meshAgents";
import { createTestStack, OpRecorder, TestStack } from "../support/engine";
import { enableMultiRoot, localClusterConfig, MULTI_ROOT_PROXY_METADATA, readSecret, SEED_SWAP } from "../support/localCluster";
import { failedHandshakes, workloadsNotIssuedBy } from "../support/meshChecks";
import { assertMeshTook, liveCertificates } from "../support/realMesh";
import { tolerateRefusalEchoes } from "../../plan/refusal";
import { applyTrustState } from "../../cli/stackTrustState";
import { inlineProgram } from "../../program/inline";

/** istio-ca:backupNamespace's default, where the backup step keeps copies of cacerts. */
const BACKUPS = "istio-ca-backups";

/** A kubelet that takes its time: istiod's hot reload would lag the Secret by this much. */
const KUBELET_SYNC_DELAY_MS = 30_000;

test("real istiod, real agents, real istioctl: first up, intermediate rotation, root phases, immediate swap, restore", { timeout: 30 * 60_000 }, async (t) => {
    tolerateRefusalEchoes();
    const log = (line: string): void => t.diagnostic(line.trimEnd());
    const cluster = await startCluster({ log });
    let istio: RealIstio | undefined;
    let ts: TestStack | undefined;
    try {
        await seedMesh(cluster);
        await enableMultiRoot(cluster);
        istio = await RealIstio.start(cluster, { secretSyncDelayMs: KUBELET_SYNC_DELAY_MS, proxyMetadata: MULTI_ROOT_PROXY_METADATA, log });
        // Before any up, the mesh runs on the CA istiod made for itself.
        const selfSigned = (await readSecret(cluster, "istio-ca-secret"))!;
        assert.ok(selfSigned, "real istiod created istio-ca-secret");
        let live = await liveCertificates(cluster, istio);
        assert.deepEqual(workloadsNotIssuedBy(live, selfSigned.data["ca-cert.pem"]), []);

        ts = await createTestStack("real", inlineProgram, localClusterConfig(cluster, "real", { ...istio.stackConfig, rootCertTimeoutSeconds: "120", ...SEED_SWAP }));
        const { stack } = ts;
        const lines: string[] = [];
        /** One `up`, judged by real Istio; `before` are the workloads live while it runs (default: those of now). */
        const up = async (what: string, before?: WorkloadCertificate[]): Promise<void> => {
            before ??= await liveCertificates(cluster, istio!);
            const logFrom = istio!.istiod.log().length;
            const res = await stack.up({ onOutput: (l) => { lines.push(l); log(l); } });
            assert.equal(res.summary.result, "succeeded");
            live = await assertMeshTook(cluster, istio!, what, before);
            const took = /Use local CA certificate|Istiod has detected the newly added intermediate CA/.exec(istio!.istiod.log().slice(logFrom));
            assert.ok(took, `${what}: istiod's log shows no "Use local CA certificate" (a start on cacerts) or reload since the up began`);
        };
        const proxyStatusLines = (): string[] => lines.filter((l) => /proxy-status \(/.test(l));

        // 1. First up: from istiod's own CA straight to root 1 (the seed's switch; warned).
        await up("first up", []);
        assert.ok(proxyStatusLines().some((l) => /7 proxies, 7 synced/.test(l)), `verify-proxies ran real istioctl: ${proxyStatusLines().join(" | ")}`);

        // 2. Intermediate rotation: the kubelet has not synced cacerts into istiod yet when the
        //    workloads restart; they must still get certificates from the new intermediate.
        const v1 = (await readSecret(cluster, "cacerts"))!;
        await stack.setConfig("istio-ca:intermediateVersion", { value: "2" });
        await up("intermediate rotation");
        const v2 = (await readSecret(cluster, "cacerts"))!;
        assert.notEqual(v2.data["ca-cert.pem"], v1.data["ca-cert.pem"]);
        assert.deepEqual(workloadsNotIssuedBy(live, v1.data["ca-cert.pem"]).length, live.length, "no workload keeps a certificate of the retired intermediate");

        // 3. Root rotation in phases: every pair of live workloads keeps talking.
        for (const [phase, state] of [
            ["phase 1 (trust)", { keyVersion: 1, trustedKeyVersions: [1, 2], intermediateVersion: 2 }],
            ["phase 2 (sign)", { keyVersion: 2, trustedKeyVersions: [1, 2], intermediateVersion: 2 }],
            ["phase 3 (complete)", { keyVersion: 2, trustedKeyVersions: [2], intermediateVersion: 2 }],
        ] as const) {
            await applyTrustState(stack, { ...state, trustedKeyVersions: [...state.trustedKeyVersions] });
            await up(phase);
        }

        // 4. The seed's immediate swap: root 3 at once. Workloads not yet restarted (old root,
        //    old bundle) and restarted ones (new root, new bundle) cannot complete mTLS: the outage
        //    the phases avoid.
        const phase3 = (await readSecret(cluster, "cacerts"))!;
        const beforeSwap = await liveCertificates(cluster, istio);
        await applyTrustState(stack, { keyVersion: 3, trustedKeyVersions: [3], intermediateVersion: 2 });
        await up("immediate swap", []);
        const broken = await failedHandshakes([...beforeSwap, ...live]);
        assert.ok(broken.length >= beforeSwap.length * live.length, `the immediate swap breaks old-new pairs (${broken.length} failed): ${broken.slice(0, 2).join("; ")}`);

        // 5. Restore the backup taken before the swap: istiod signs with root 2's intermediate again.
        const backups: string[] = JSON.parse((await cluster.kubectl(["get", "secrets", "-n", BACKUPS, "-o", "json"])).stdout).items
            .map((s: { metadata: { name: string } }) => s.metadata.name).filter((n: string) => n.startsWith("cacerts-backup-"));
        let restoreFrom: string | undefined;
        for (const name of backups) {
            if ((await readSecret(cluster, name, BACKUPS))!.data["ca-cert.pem"] === phase3.data["ca-cert.pem"]) restoreFrom = name;
        }
        assert.ok(restoreFrom, `a backup of the cacerts of phase 3 among ${backups.join(", ")}`);
        const ops = new OpRecorder();
        await stack.setConfig("istio-ca:restoreCacertsFrom", { value: restoreFrom });
        await stack.preview({ onEvent: ops.onEvent });
        assert.ok(ops.with("update").includes("cacerts-secret"));
        await up("restore", []);
        assert.equal((await readSecret(cluster, "cacerts"))!.data["ca-cert.pem"], phase3.data["ca-cert.pem"]);
    } finally {
        await istio?.stop();
        await ts?.dispose();
        await cluster.stop();
    }
});
