// Meshes whose cacerts cert-manager issued: a Secret of type kubernetes.io/tls (tls.crt, tls.key,
// ca.crt), made here with openssl as cert-manager lays it out. Real istiod starts on it, the
// program takes it over in place (same Secret, same type, no moment without a CA, nothing deleted
// by hand), rotates the intermediate and the root in phases, and `pulumi destroy` leaves a cacerts
// istiod keeps serving. The trap: an Opaque cacerts with another tool's tls.* keys, where istiod
// reads tls.crt and ignores ca-cert.pem & co. Real istiod judges every step (tests/support/realMesh).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Cluster, seedMesh, startCluster } from "../harness/cluster";
import { RealIstio } from "../harness/realIstio";
import type { WorkloadCertificate } from "../harness/meshAgents";
import { createTestStack, TestStack } from "../support/engine";
import { enableMultiRoot, localClusterConfig, readSecret } from "../support/localCluster";
import { workloadsNotIssuedBy } from "../support/meshChecks";
import { assertMeshTook, liveCertificates } from "../support/realMesh";
import { certManagerCacerts, handMadeCacerts, writeTemp } from "../support/testCerts";
import { backupNameOf } from "../../common/cacertsFiles";
import { bundleFingerprints } from "../../common/pem";
import { tolerateRefusalEchoes } from "../../plan/refusal";
import { applyTrustState } from "../../cli/stackTrustState";
import { inlineProgram } from "../../program/inline";

const BACKUPS = "istio-ca-backups";
const TLS_KEYS = ["ca.crt", "tls.crt", "tls.key"];

/** Creates cacerts from a manifest file (the key goes through a temp file, never a command line). */
async function createCacerts(cluster: Cluster, type: string, files: Record<string, string>, annotations: Record<string, string> = {}): Promise<void> {
    const manifest = {
        apiVersion: "v1", kind: "Secret", type,
        metadata: { name: "cacerts", namespace: "istio-system", annotations },
        data: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, Buffer.from(v).toString("base64")])),
    };
    await cluster.kubectl(["create", "-f", writeTemp("cacerts.json", JSON.stringify(manifest))]);
}

const secretType = async (cluster: Cluster, name: string, ns = "istio-system"): Promise<string> =>
    (await cluster.kubectl(["get", "secret", name, "-n", ns, "-o", "jsonpath={.type}"])).stdout;

/** One `up` of the stack, judged by real istiod; returns the live certificates. */
async function judgedUp(t: { diagnostic: (m: string) => void }, cluster: Cluster, istio: RealIstio, stack: TestStack["stack"], what: string, before?: WorkloadCertificate[]): Promise<WorkloadCertificate[]> {
    before ??= await liveCertificates(cluster, istio);
    const res = await stack.up({ onOutput: (l) => t.diagnostic(l.trimEnd()) });
    assert.equal(res.summary.result, "succeeded", what);
    const live = await assertMeshTook(cluster, istio, what, before);
    const cacerts = (await readSecret(cluster, "cacerts"))!;
    assert.deepEqual(Object.keys(cacerts.data).sort(), TLS_KEYS, `${what}: cacerts holds the kubernetes.io/tls keys only`);
    assert.deepEqual(workloadsNotIssuedBy(live, cacerts.data["tls.crt"]), [], `${what}: every workload certificate comes from tls.crt`);
    return live;
}

/** What a test runs on: a seeded local mesh, real istiod started on the given cacerts, a stack. */
interface Rig {
    cluster: Cluster;
    istio: RealIstio;
    stack: TestStack["stack"];
    /** cacerts as made, before the stack ran. */
    original: NonNullable<Awaited<ReturnType<typeof readSecret>>>;
    log: (m: string) => void;
}

/** Runs `body` on a rig whose cacerts is `cacerts`; everything is stopped after it. */
async function onMesh(t: { diagnostic: (m: string) => void }, name: string, cacerts: { type: string; files: Record<string, string>; annotations?: Record<string, string>; multiRoot: boolean },
    body: (rig: Rig) => Promise<void>): Promise<void> {
    tolerateRefusalEchoes();
    const log = (m: string): void => t.diagnostic(m.trimEnd());
    const cluster = await startCluster({ log });
    let istio: RealIstio | undefined;
    let ts: TestStack | undefined;
    try {
        await seedMesh(cluster);
        if (cacerts.multiRoot) await enableMultiRoot(cluster);
        await createCacerts(cluster, cacerts.type, cacerts.files, cacerts.annotations);
        const original = (await readSecret(cluster, "cacerts"))!;
        // The agents run without PROXY_CONFIG_XDS_AGENT (no PCDS stream), as in driver.test.ts: an
        // Envoy-less agent once left its PCDS STALE for 5 minutes here too (CI) and verify-proxies
        // failed. The phases with PCDS are judged by realIstio, migration and multicluster.
        istio = await RealIstio.start(cluster, { log });
        // Room for the restarted istiod to publish istio-ca-root-cert (20 s once proved short on a loaded machine).
        ts = await createTestStack(name, inlineProgram, localClusterConfig(cluster, name, { ...istio.stackConfig, rootCertTimeoutSeconds: "120" }));
        await body({ cluster, istio, stack: ts.stack, original, log });
    } finally {
        await istio?.stop();
        await ts?.dispose();
        await cluster.stop();
    }
}

const cm = certManagerCacerts();

test("a cert-manager (kubernetes.io/tls) cacerts is taken over in place, rotated (intermediate, root phases), and left working by destroy", { timeout: 20 * 60_000 }, (t) =>
    onMesh(t, "tls", { type: "kubernetes.io/tls", files: cm.files, annotations: { "cert-manager.io/certificate-name": "cacerts" }, multiRoot: true }, async ({ cluster, istio, stack, original, log }) => {
        assert.match(istio.istiod.log(), /Using kubernetes.io\/tls secret type for signing ca files/, "real istiod reads the TLS layout");
        const before = await liveCertificates(cluster, istio);
        assert.deepEqual(workloadsNotIssuedBy(before, cm.intermediate.certPem), [], "the mesh runs on cert-manager's intermediate");

        // 1. Preview: taken over in its own layout (not "incomplete"), cert-manager named; nothing changes.
        let previewText = "";
        await stack.preview({ onOutput: (l) => { previewText += l; } });
        assert.match(previewText, /TAKEOVER: Secret istio-system\/cacerts exists/);
        assert.match(previewText, /LAYOUT: Secret istio-system\/cacerts is of type kubernetes\.io\/tls/);
        assert.match(previewText, /CERT-MANAGER: .*Certificate cacerts/);
        assert.doesNotMatch(previewText, /not a complete|STALE KEYS/);
        assert.equal((await readSecret(cluster, "cacerts"))!.resourceVersion, original.resourceVersion, "preview changes nothing");

        // 2. up: backed up as found (type and keys), then the same Secret gets the program's material in tls.*.
        await judgedUp(t, cluster, istio, stack, "takeover", []);
        const taken = (await readSecret(cluster, "cacerts"))!;
        assert.equal(taken.uid, original.uid, "the same Secret, updated in place");
        assert.equal(await secretType(cluster, "cacerts"), "kubernetes.io/tls", "its type is kept");
        assert.notEqual(taken.data["tls.crt"], original.data["tls.crt"], "tls.crt holds the program's intermediate");
        const backupName = backupNameOf(original.data);
        assert.deepEqual((await readSecret(cluster, backupName, BACKUPS))?.data, original.data, "the backup holds cert-manager's content");
        assert.equal(await secretType(cluster, backupName, BACKUPS), "kubernetes.io/tls", "the backup keeps the type");

        // 3. No-op: what the stack recorded is what it reads back (no drift, no change).
        await stack.preview({ expectNoChanges: true });

        // 4. Intermediate rotation.
        await stack.setConfig("istio-ca:intermediateVersion", { value: "2" });
        await judgedUp(t, cluster, istio, stack, "intermediate rotation");
        assert.notEqual((await readSecret(cluster, "cacerts"))!.data["tls.crt"], taken.data["tls.crt"]);

        // 5. Root rotation in phases: ca.crt carries both roots while it must.
        for (const [phase, state, roots] of [
            ["phase 1 (trust)", { keyVersion: 1, trustedKeyVersions: [1, 2], intermediateVersion: 2 }, 2],
            ["phase 2 (sign)", { keyVersion: 2, trustedKeyVersions: [1, 2], intermediateVersion: 2 }, 2],
            ["phase 3 (complete)", { keyVersion: 2, trustedKeyVersions: [2], intermediateVersion: 2 }, 1],
        ] as const) {
            await applyTrustState(stack, { ...state, trustedKeyVersions: [...state.trustedKeyVersions] });
            await judgedUp(t, cluster, istio, stack, phase);
            const caCrt = (await readSecret(cluster, "cacerts"))!.data["ca.crt"];
            assert.equal(bundleFingerprints(caCrt, "ca.crt").length, roots, `${phase}: ca.crt holds ${roots} root(s)`);
        }
        await stack.preview({ expectNoChanges: true });

        // 6. destroy leaves cacerts (type, content) and istiod serving it.
        const last = (await readSecret(cluster, "cacerts"))!;
        await stack.destroy({ onOutput: log });
        const after = (await readSecret(cluster, "cacerts"))!;
        assert.equal(after.uid, original.uid);
        assert.deepEqual(after.data, last.data, "pulumi destroy leaves cacerts as the last up wrote it");
        assert.equal(await secretType(cluster, "cacerts"), "kubernetes.io/tls");
        istio.istiod.assertHealthy();
        assert.deepEqual(istio.istiod.currentRefusals(), []);
    }));

const hand = handMadeCacerts();
const other = certManagerCacerts();

test("the trap: an Opaque cacerts with another tool's tls.* keys is taken over through tls.*, and ca-cert.pem & co. are removed", { timeout: 10 * 60_000 }, (t) =>
    onMesh(t, "trap", { type: "Opaque", files: { ...hand.files, ...other.files }, multiRoot: false }, async ({ cluster, istio, stack, original, log }) => {
        // What istiod serves: the tls.* keys, not ca-cert.pem.
        assert.deepEqual(workloadsNotIssuedBy(await liveCertificates(cluster, istio), other.intermediate.certPem), [], "istiod signs with tls.crt");

        let previewText = "";
        await stack.preview({ onOutput: (l) => { previewText += l; } });
        assert.match(previewText, /LAYOUT: Secret istio-system\/cacerts is of type Opaque but holds tls\.crt/);
        assert.match(previewText, /STALE KEYS: Secret istio-system\/cacerts also holds ca-cert\.pem, ca-key\.pem, cert-chain\.pem, root-cert\.pem, which istiod ignores/);
        assert.match(previewText, /REMOVES them from cacerts right after the backup/);

        await judgedUp(t, cluster, istio, stack, "takeover of the trap", []).catch((err) => { log(istio.istiod.logTail(60)); throw err; });
        assert.equal((await readSecret(cluster, "cacerts"))!.uid, original.uid);
        assert.equal(await secretType(cluster, "cacerts"), "Opaque");
        assert.deepEqual((await readSecret(cluster, backupNameOf(original.data), BACKUPS))?.data, original.data, "the backup keeps every key it found");
        await stack.preview({ expectNoChanges: true });

        await stack.setConfig("istio-ca:intermediateVersion", { value: "2" });
        await judgedUp(t, cluster, istio, stack, "intermediate rotation");
    }));
