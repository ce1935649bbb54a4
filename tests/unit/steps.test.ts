import { test } from "node:test";
import assert from "node:assert/strict";
import { parseConfig } from "../../components/config";
import { publicContentHash } from "../../components/cacerts";
import { readStepSettings, stepEnvironment } from "../../lib/stepEnv";
import { meshNamespaces, StepFailure } from "../../lib/steps";
import { certChain, trustBundle } from "../../lib/trustBundle";
import { bundleFingerprints, splitCertificates } from "../../lib/pem";
import { selfSignedCa } from "../support/testCerts";

test("step settings survive the trip through the command environment", () => {
    const config = parseConfig((k) => ({
        clusterName: "c", kubeconfig: "/k/config", kubeContext: "ctx", workloadNamespaces: '["a","b"]',
        restartConcurrency: "3", rootCertTimeoutSeconds: "7",
    } as Record<string, string>)[k]);
    const a = selfSignedCa("Root A").certPem;
    const b = selfSignedCa("Root B").certPem;
    const expected = { signingCertPem: "S", trustBundlePem: a + b };
    const env = stepEnvironment(config, expected, "restart-workloads");
    assert.equal(env.ISTIO_CA_SIGNING_CERT_PEM, undefined, "certificates travel only to the step that compares them");
    assert.equal(env.ISTIO_CA_ROOT_CERT_TIMEOUT_SECONDS, undefined, "a step's environment holds only what it uses");
    const s = readStepSettings(env);
    const wait = readStepSettings(stepEnvironment(config, expected, "wait-root-cert"));
    assert.equal(s.kubeconfig, "/k/config");
    assert.equal(s.context, "ctx");
    assert.deepEqual(s.workloadNamespaces, ["a", "b"]);
    assert.deepEqual(wait.trustFingerprints, [...bundleFingerprints(a, "a"), ...bundleFingerprints(b, "b")]);
    assert.equal(readStepSettings(env).concurrency, 3);
    assert.equal(wait.rootCertTimeoutMs, 7000);
    assert.equal(s.istioNamespace, "istio-system");
    const gate = readStepSettings(stepEnvironment(config, expected, "verify-workload-certs"));
    assert.equal(gate.signingCertPem, "S");
    assert.equal(gate.trustBundlePem, a + b);
});

test("a step run outside the program says which variable is missing", () => {
    assert.throws(() => readStepSettings({}), /ISTIO_CA_ISTIO_NAMESPACE is not set/);
});

const ns = (name: string, labels: Record<string, string> = {}, phase = "Active") => ({ metadata: { name, labels }, status: { phase } });

test("mesh namespaces: injection label or revision label, never the Istio namespace or a terminating one", () => {
    const all = [
        ns("istio-system", { "istio-injection": "enabled" }),
        ns("bookinfo", { "istio-injection": "enabled" }),
        ns("canary", { "istio.io/rev": "1-24" }),
        ns("optout", { "istio-injection": "disabled", "istio.io/rev": "1-24" }),
        ns("plain"),
        ns("leaving", { "istio-injection": "enabled" }, "Terminating"),
    ];
    assert.deepEqual(meshNamespaces(all, "istio-system"), ["bookinfo", "canary"]);
    assert.deepEqual(meshNamespaces(all, "istio-system", ["plain"]), ["plain"]);
    assert.throws(() => meshNamespaces(all, "istio-system", ["plain", "ghost"]), (e: unknown) => e instanceof StepFailure && /ghost/.test(e.message));
});

test("trust bundle: one root; phase 1 A+B; phase 2 A+B+B (same set, other bytes); phase 3 B", () => {
    const a = { generation: 1, certPem: selfSignedCa("Root CA 1").certPem };
    const b = { generation: 2, certPem: selfSignedCa("Root CA 2").certPem };
    const phase0 = trustBundle([a], 1);
    const phase1 = trustBundle([b, a], 1);
    const phase2 = trustBundle([a, b], 2);
    const phase3 = trustBundle([b], 2);
    assert.equal(splitCertificates(phase0).length, 1);
    assert.deepEqual(splitCertificates(phase1).map((p) => p.trim()), [a.certPem.trim(), b.certPem.trim()]);
    assert.deepEqual(splitCertificates(phase2).map((p) => p.trim()), [a.certPem.trim(), b.certPem.trim(), b.certPem.trim()]);
    assert.deepEqual(bundleFingerprints(phase1, "p1"), bundleFingerprints(phase2, "p2"));
    assert.notEqual(phase1, phase2);
    assert.deepEqual(bundleFingerprints(phase3, "p3"), bundleFingerprints(b.certPem, "b"));
    assert.throws(() => trustBundle([a], 2), /generation 2 signs but is not among the trusted generations 1/);
});

test("cert chain is intermediate then root", () => {
    const root = selfSignedCa();
    const chain = certChain("-----BEGIN CERTIFICATE-----\nI\n-----END CERTIFICATE-----", root.certPem);
    assert.deepEqual(splitCertificates(chain).length, 2);
    assert.ok(chain.startsWith("-----BEGIN CERTIFICATE-----\nI\n"));
});

test("the content hash follows every public part and is a plain sha256", () => {
    const base = { caCertPem: "I", rootCertPem: "R", certChainPem: "C" };
    const h = publicContentHash(base);
    assert.match(h, /^[0-9a-f]{64}$/);
    assert.notEqual(publicContentHash({ ...base, caCertPem: "I2" }), h);
    assert.notEqual(publicContentHash({ ...base, rootCertPem: "R2" }), h);
    assert.notEqual(publicContentHash({ ...base, certChainPem: "C2" }), h);
    // Boundaries are explicit: moving bytes between parts changes the hash.
    assert.notEqual(publicContentHash({ caCertPem: "IR", rootCertPem: "", certChainPem: "C" }), h);
});
