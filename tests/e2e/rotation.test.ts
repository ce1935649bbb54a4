// End to end with the real engine, real providers and a real API server (see docs/toolchain.md:
// toolchain and local control plane are built here by toolchain/build.sh).
//
// Real Istio runs in the local cluster (tests/harness/realIstio.ts): istiod publishes
// istio-ca-root-cert, real pilot-agents connect, and verify-proxies runs the real istioctl. The
// wait step is seen to succeed, and (with istiod down) to time out and be finished by the next
// `up`. verify-workload-certs reads Envoy's admin API, which cannot run here: it is off (its
// parsing is unit-tested on real istioctl output). tests/e2e/realIstio.test.ts judges the
// certificates the workloads get.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createPublicKey, X509Certificate } from "node:crypto";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Cluster, processesMentioning, seedMesh, startCluster } from "../harness/cluster";
import { createTestStack, OpRecorder, PROJECT_ROOT, TestStack } from "../support/engine";
import { RealIstio } from "../harness/realIstio";
import { localClusterConfig, readSecret, SecretView, SEED_SWAP } from "../support/localCluster";
import { findMatches } from "../support/plaintext";
import { tolerateRefusalEchoes } from "../../plan/refusal";
import { bundleFingerprints, formatFingerprint } from "../../common/pem";
import { applyTrustState } from "../../cli/stackTrustState";
import { inlineProgram as program } from "../../program/inline";


/** `kubectl.kubernetes.io/restartedAt` of every Deployment, by namespace/name. */
async function restartMarks(cluster: Cluster): Promise<Record<string, string | undefined>> {
    const list = JSON.parse((await cluster.kubectl(["get", "deployments", "-A", "-o", "json"])).stdout);
    return Object.fromEntries(list.items.map((d: any) => [
        `${d.metadata.namespace}/${d.metadata.name}`,
        d.spec.template.metadata?.annotations?.["kubectl.kubernetes.io/restartedAt"],
    ]));
}

function openssl(args: string[], dir: string): string {
    return execFileSync("openssl", args, { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

const sha256Of = (pem: string): string => formatFingerprint(bundleFingerprints(pem, "pem")[0]);

test("real engine: up, no-op, intermediate rotation, root swap with istiod down finished by the next up, zero-downtime phases, secrets, destroy", { timeout: 40 * 60_000 }, async (t) => {
    // The program is made to refuse a change (no ISTIO_MULTIROOT_MESH): see plan/refusal.ts. Called
    // here, after the test runner installed its own handlers, which it then wraps.
    tolerateRefusalEchoes();
    const cluster = await startCluster({ log: (m) => t.diagnostic(m) });
    let istio: RealIstio | undefined;
    let ts: TestStack | undefined;
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "istio-ca-e2e-"));
    try {
        await seedMesh(cluster);
        istio = await RealIstio.start(cluster, { log: (m) => t.diagnostic(m) });
        ts = await createTestStack("rotation", program, localClusterConfig(cluster, "e2e", {
            ...istio.stackConfig,
            ...SEED_SWAP,
            // RSA 4096, the default: the X.509 profile below is checked on it.
            keyAlgorithm: "RSA",
            rolloutTimeoutSeconds: "180",
        }));
        const { stack } = ts;
        const log = (line: string) => t.diagnostic(line.trimEnd());

        // 1. A fresh stack (the seed's switch from istiod's own CA, asked for; then no longer).
        const first = await stack.up({ onOutput: log });
        await stack.removeConfig("istio-ca:allowImmediateRootSwap");
        const v1 = (await readSecret(cluster, "cacerts"))!;
        assert.deepEqual(Object.keys(v1.data).sort(), ["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"]);
        fs.writeFileSync(path.join(scratch, "root-cert.pem"), v1.data["root-cert.pem"]);
        fs.writeFileSync(path.join(scratch, "cert-chain.pem"), v1.data["cert-chain.pem"]);
        fs.writeFileSync(path.join(scratch, "ca-cert.pem"), v1.data["ca-cert.pem"]);
        assert.match(openssl(["verify", "-CAfile", "root-cert.pem", "cert-chain.pem"], scratch), /cert-chain.pem: OK/);
        assert.match(openssl(["verify", "-CAfile", "root-cert.pem", "ca-cert.pem"], scratch), /ca-cert.pem: OK/);
        // The X.509 profile the real tls provider emitted (Istio's Makefile profile).
        const intermediateText = openssl(["x509", "-in", "ca-cert.pem", "-noout", "-text"], scratch);
        assert.match(intermediateText, /Subject:.*O ?= ?Istio/);
        assert.match(intermediateText, /Subject:.*CN ?= ?Intermediate CA/);
        assert.match(intermediateText, /Subject:.*L ?= ?e2e/);
        assert.match(intermediateText, /X509v3 Basic Constraints: critical\s+CA:TRUE/);
        assert.match(intermediateText, /X509v3 Key Usage: critical\s+.*Certificate Sign/);
        assert.match(intermediateText, /DNS:istiod\.istio-system\.svc/);
        assert.match(intermediateText, /Public-Key: \(4096 bit\)/);
        const rootText = openssl(["x509", "-in", "root-cert.pem", "-noout", "-text"], scratch);
        assert.match(rootText, /Subject: O ?= ?Istio, CN ?= ?Root CA/);
        assert.match(rootText, /X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:1/);
        // ca-key.pem belongs to ca-cert.pem (compared in memory: the key never touches a command line or disk).
        const spki = (k: { export(o: { type: "spki"; format: "der" }): Buffer }) => k.export({ type: "spki", format: "der" }).toString("hex");
        assert.equal(spki(createPublicKey(v1.data["ca-key.pem"])), spki(new X509Certificate(v1.data["ca-cert.pem"]).publicKey));

        const outputs1 = first.outputs;
        assert.equal(outputs1.signingRoot.value.sha256Fingerprint, sha256Of(v1.data["root-cert.pem"]));
        assert.equal(outputs1.intermediate.value.sha256Fingerprint, sha256Of(v1.data["ca-cert.pem"]));
        // The restarted namespaces: a count and the first names in the output, all of them in a file (#12 item 4).
        const restarted = outputs1.restartedNamespaces.value as { count: number; first: string[]; list: string };
        assert.equal(restarted.count, 3);
        assert.deepEqual(restarted.first, ["bookinfo", "canary", "payments"]);
        assert.deepEqual(fs.readFileSync(path.join(PROJECT_ROOT, restarted.list), "utf8").trim().split("\n"), ["bookinfo", "canary", "payments"]);

        const marks1 = await restartMarks(cluster);
        for (const d of ["istio-system/istiod", "bookinfo/productpage", "bookinfo/reviews", "payments/ledger", "payments/checkout", "canary/canary-api"]) {
            assert.ok(marks1[d], `${d} was restarted`);
        }
        assert.equal(marks1["plain/legacy-batch"], undefined, "a namespace without Istio is not touched");
        const replicaSets = JSON.parse((await cluster.kubectl(["get", "replicasets", "-n", "bookinfo", "-l", "app=reviews", "-o", "json"])).stdout).items;
        assert.ok(replicaSets.length >= 2, "the restart rolled out a new ReplicaSet");
        assert.equal(istio.istiod.starts, 2, "istiod restarted once, onto cacerts");
        assert.match(istio.istiod.log(), /Use local CA certificate/, "istiod took cacerts");

        // 2. No change: preview shows none, up re-runs nothing.
        await stack.preview({ expectNoChanges: true });
        const noop = new OpRecorder();
        await stack.up({ onEvent: noop.onEvent, expectNoChanges: true });
        assert.deepEqual(noop.with("create").concat(noop.with("update"), noop.with("replace"), noop.with("delete")), []);
        assert.deepEqual(await restartMarks(cluster), marks1, "no command re-ran");

        // 3. Intermediate rotation: only the intermediate is replaced; cacerts is updated in place;
        //    istiod is restarted (so it signs with the new intermediate before the kubelet syncs
        //    its mount), then the workloads.
        await stack.setConfig("istio-ca:intermediateVersion", { value: "2" });
        const preview3 = new OpRecorder();
        await stack.preview({ onEvent: preview3.onEvent });
        // backup-cacerts: the content before the rotation is copied to a backup first.
        assert.deepEqual(preview3.with("replace"), ["backup-cacerts", "intermediate-cert", "intermediate-csr", "intermediate-key", "mesh-restart-istiod", "mesh-restart-workloads", "mesh-verify-proxies"]);
        assert.deepEqual(preview3.with("update"), ["cacerts-secret"], "cacerts is updated, never replaced");
        for (const kept of ["root-v1-key", "root-v1-cert", "mesh-wait-root-cert"]) {
            assert.ok(preview3.only("same").includes(kept), `${kept} is kept`);
        }
        await stack.up({ onOutput: log });
        const v2 = (await readSecret(cluster, "cacerts"))!;
        assert.equal(v2.uid, v1.uid, "same Secret object: updated in place");
        assert.notEqual(v2.resourceVersion, v1.resourceVersion);
        assert.equal(sha256Of(v2.data["root-cert.pem"]), sha256Of(v1.data["root-cert.pem"]), "root unchanged");
        assert.notEqual(sha256Of(v2.data["ca-cert.pem"]), sha256Of(v1.data["ca-cert.pem"]), "intermediate changed");
        const marks2 = await restartMarks(cluster);
        assert.notEqual(marks2["istio-system/istiod"], marks1["istio-system/istiod"], "istiod restarted before the workloads");
        assert.notEqual(marks2["bookinfo/reviews"], marks1["bookinfo/reviews"], "workloads restarted");

        // 4. Root rotation, the immediate swap, while istiod is down (its new pod never turns
        //    Ready): restart-istiod's rollout times out, `up` fails with a report and leaves the
        //    workloads alone; once istiod is back, the next `up` finishes the job.
        await stack.setConfig("istio-ca:keyVersion", { value: "2" });
        // An immediate swap is refused unless asked for (#12).
        await assert.rejects(stack.preview(), /refusing an immediate root swap that was not asked for.*istio-ca:allowImmediateRootSwap true/s);
        await stack.setConfig("istio-ca:allowImmediateRootSwap", { value: "true" });
        const preview4 = new OpRecorder();
        await stack.preview({ onEvent: preview4.onEvent });
        assert.deepEqual(preview4.with("create"), ["root-v2", "root-v2-cert", "root-v2-key"]);
        assert.deepEqual(preview4.with("delete"), ["root-v1", "root-v1-cert", "root-v1-key"]);
        assert.ok(preview4.with("replace").includes("intermediate-cert"));
        assert.deepEqual(preview4.with("update"), ["cacerts-secret"]);
        await istio.istiod.pause();
        await stack.setConfig("istio-ca:rolloutTimeoutSeconds", { value: "20" });
        await assert.rejects(stack.up({ onOutput: log }), (err: Error) => {
            assert.match(err.message, /restart-istiod failed: timed out after 20s \(istio-ca:rolloutTimeoutSeconds\)/);
            assert.match(err.message, /istio-system\/istiod/);
            assert.match(err.message, /run `pulumi up` again/);
            return true;
        });
        await stack.setConfig("istio-ca:rolloutTimeoutSeconds", { value: "180" });
        const v3 = (await readSecret(cluster, "cacerts"))!;
        assert.notEqual(sha256Of(v3.data["root-cert.pem"]), sha256Of(v2.data["root-cert.pem"]), "cacerts carries the new root");
        const marks3 = await restartMarks(cluster);
        assert.notEqual(marks3["istio-system/istiod"], marks2["istio-system/istiod"], "a root change restarts istiod");
        assert.equal(marks3["bookinfo/reviews"], marks2["bookinfo/reviews"], "workloads wait for istiod");
        await istio.istiod.resume();
        await stack.up({ onOutput: log });
        const marks4 = await restartMarks(cluster);
        assert.notEqual(marks4["bookinfo/reviews"], marks3["bookinfo/reviews"], "the next up finished the restarts");
        await stack.removeConfig("istio-ca:allowImmediateRootSwap");
        await stack.preview({ expectNoChanges: true });
        const v4 = (await readSecret(cluster, "cacerts"))!;
        assert.equal(v4.uid, v1.uid);
        assert.notEqual(sha256Of(v4.data["ca-cert.pem"]), sha256Of(v2.data["ca-cert.pem"]), "intermediate changed");
        fs.writeFileSync(path.join(scratch, "root-cert.pem"), v4.data["root-cert.pem"]);
        fs.writeFileSync(path.join(scratch, "cert-chain.pem"), v4.data["cert-chain.pem"]);
        assert.match(openssl(["verify", "-CAfile", "root-cert.pem", "cert-chain.pem"], scratch), /OK/);
        const cm = JSON.parse((await cluster.kubectl(["get", "configmap", "istio-ca-root-cert", "-n", "bookinfo", "-o", "json"])).stdout);
        assert.deepEqual(bundleFingerprints(cm.data["root-cert.pem"], "cm"), bundleFingerprints(v4.data["root-cert.pem"], "cacerts"));

        // 5. Zero-downtime root rotation 2 -> 3, one `up` per phase.
        //    Without ISTIO_MULTIROOT_MESH on istiod, phase 1 is refused before anything changes.
        await applyTrustState(stack, { keyVersion: 2, trustedKeyVersions: [2, 3], intermediateVersion: 2 });
        await assert.rejects(stack.preview(), /ISTIO_MULTIROOT_MESH=true/);
        await assert.rejects(stack.up(), /ISTIO_MULTIROOT_MESH=true/);
        assert.equal((await readSecret(cluster, "cacerts"))!.resourceVersion, v4.resourceVersion, "nothing was applied");
        const stateAfterRefusal = JSON.stringify(await stack.exportStack());
        for (const kept of ["root-v2-cert", "intermediate-cert", "cacerts-secret", "mesh-restart-workloads"]) {
            assert.ok(stateAfterRefusal.includes(`::${kept}"`), `a refused up keeps ${kept} in the state`);
        }
        await cluster.kubectl(["set", "env", "deployment/istiod", "-n", "istio-system", "ISTIO_MULTIROOT_MESH=true"]);
        await cluster.kubectl(["rollout", "status", "deployment/istiod", "-n", "istio-system", "--timeout=120s"]);
        const roots = (d: SecretView) => bundleFingerprints(d.data["root-cert.pem"], "root-cert.pem");
        const root2 = roots(v4)[0];

        // phase 1 "trust": root 3 added; signing (ca-cert.pem, cert-chain.pem) unchanged.
        const phase1 = new OpRecorder();
        await stack.preview({ onEvent: phase1.onEvent });
        assert.deepEqual(phase1.with("create"), ["root-v3", "root-v3-cert", "root-v3-key"]);
        assert.ok(phase1.only("same").includes("root-v2-cert") && phase1.only("same").includes("intermediate-cert"));
        await stack.up({ onOutput: log });
        const p1 = (await readSecret(cluster, "cacerts"))!;
        assert.equal(roots(p1).length, 2);
        assert.equal(roots(p1)[0], root2);
        assert.equal(p1.data["ca-cert.pem"], v4.data["ca-cert.pem"], "phase 1 does not change the signer");
        const root3 = roots(p1)[1];

        // phase 2 "sign": the intermediate under root 3 signs; both roots still trusted, other bytes.
        await applyTrustState(stack, { keyVersion: 3, trustedKeyVersions: [2, 3], intermediateVersion: 2 });
        const phase2 = new OpRecorder();
        await stack.preview({ onEvent: phase2.onEvent });
        assert.ok(phase2.with("replace").includes("intermediate-cert"));
        assert.ok(phase2.only("same").includes("root-v2-cert") && phase2.only("same").includes("root-v3-cert"), "both roots survive phase 2");
        await stack.up({ onOutput: log });
        const p2 = (await readSecret(cluster, "cacerts"))!;
        assert.deepEqual(roots(p2), [root2, root3]);
        assert.notEqual(p2.data["root-cert.pem"], p1.data["root-cert.pem"], "phase 2 changes the bundle's bytes (A+B+B) so workloads re-sign");
        assert.equal(bundleFingerprints(p2.data["cert-chain.pem"], "chain")[1], root3, "the chain ends at root 3");

        // phase 3 "complete": root 2 removed.
        await applyTrustState(stack, { keyVersion: 3, trustedKeyVersions: [3], intermediateVersion: 2 });
        const phase3 = new OpRecorder();
        await stack.preview({ onEvent: phase3.onEvent });
        assert.deepEqual(phase3.with("delete"), ["root-v2", "root-v2-cert", "root-v2-key"]);
        assert.equal(phase3.with("replace").filter((n) => n.startsWith("intermediate")).length, 0, "phase 3 keeps the signer");
        await stack.up({ onOutput: log });
        const p3 = (await readSecret(cluster, "cacerts"))!;
        assert.deepEqual(roots(p3), [root3]);
        assert.equal(p3.data["ca-cert.pem"], p2.data["ca-cert.pem"]);
        assert.equal(p3.uid, v1.uid, "one Secret object through every rotation");

        // 5. No private key in plaintext: not in the exported state, not in any output.
        //    (The Automation API's exportStack() decrypts: read what `pulumi stack export` and the
        //    backend really hold instead.)
        const exported = JSON.parse(execFileSync("pulumi", ["stack", "export", "--stack", ts.name], {
            cwd: PROJECT_ROOT, encoding: "utf8", maxBuffer: 64 << 20, env: { ...process.env, ...ts.envVars },
        }));
        const stateFiles = execFileSync("find", [ts.backendDir, "-name", "*.json"], { encoding: "utf8" }).trim().split("\n");
        assert.ok(stateFiles.length > 0);
        for (const [what, doc] of [["pulumi stack export", exported], ...stateFiles.map((f) => [f, JSON.parse(fs.readFileSync(f, "utf8"))])]) {
            const resources = ((doc as any).deployment ?? (doc as any).checkpoint?.latest ?? {}).resources ?? [];
            const leaks = resources.flatMap((r: { urn: string }) => findMatches(r, /PRIVATE KEY/).map((p) => `${r.urn}: ${p}`));
            assert.deepEqual(leaks, [], `no plaintext private key in ${what}`);
        }
        assert.match(JSON.stringify(exported), /4dabf18193072939515e22adb298388d/, "secrets are stored as encrypted secret values");
        assert.match(JSON.stringify(exported), /"ciphertext"/, "key material is kept as ciphertext");
        assert.deepEqual(findMatches(await stack.outputs(), /PRIVATE KEY/), []);

        // 6. destroy: the stack's resources go; cacerts stays (retainOnDelete), as after the manual procedure.
        await stack.destroy({ onOutput: log });
        const after = (await readSecret(cluster, "cacerts"))!;
        assert.equal(after.uid, v1.uid, "cacerts is left in place for istiod");
    } finally {
        await istio?.stop();
        await ts?.dispose();
        const dir = cluster.dir;
        await cluster.stop();
        assert.deepEqual(processesMentioning(dir), [], "no process of the cluster is left");
        fs.rmSync(scratch, { recursive: true, force: true });
    }
});
