// Tests for steps/verify/proxySecrets.ts: `istioctl proxy-config secret -o json` built at test time in the
// real shape from real openssl certificates, plus a real sample from istio/istio's testdata
// (fixtures/istioctl/secret-config_dump.json, see SOURCES.md).
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";

import { bundleFingerprints } from "../../common/pem";
import { findSecret, parseProxySecrets } from "../../steps/verify/proxySecrets";
import { evaluateProxySecrets, formatProxySecretsReport, summarizeProxySecrets, type ExpectedProxyTrust } from "../../steps/verify/proxySecretsEvaluation";
import { certChain, trustBundle } from "../../plan/trustBundle";
import { issuedBy, selfSignedCa, type TestCa } from "../support/testCerts";

const FIXTURES = path.resolve(__dirname, "../../../tests/unit/fixtures/istioctl");

let rootA: TestCa;
let rootB: TestCa;
let interA: TestCa;
let interB: TestCa;
let interA2: TestCa; // a second intermediate under A with the same subject as interA
let leafA: TestCa;
let leafB: TestCa;

before(() => {
    rootA = selfSignedCa("Root CA");
    rootB = selfSignedCa("Root CA");
    interA = issuedBy(rootA, "/O=Istio/CN=Intermediate CA/L=c1", { ca: true });
    interB = issuedBy(rootB, "/O=Istio/CN=Intermediate CA/L=c1", { ca: true });
    interA2 = issuedBy(rootA, "/O=Istio/CN=Intermediate CA/L=c1", { ca: true });
    const san = "URI:spiffe://cluster.local/ns/default/sa/sleep";
    leafA = issuedBy(interA, "/O=cluster.local", { ca: false, san });
    leafB = issuedBy(interB, "/O=cluster.local", { ca: false, san });
});

const b64 = (s: string): string => Buffer.from(s).toString("base64");

/** Istio's workload chain: leaf, then cert-chain.pem (intermediate, root). */
function workloadChain(leaf: TestCa, inter: TestCa, root: TestCa): string {
    return leaf.certPem.trim() + "\n" + certChain(inter.certPem, root.certPem);
}

interface DumpOpts {
    chain?: string;
    rootCa?: string;
    lastUpdated?: string;
    rootUpdated?: string;
    warmingChain?: string;
}

/** The JSON istioctl prints: jsonpb (lowerCamelCase, 4-space indent) of Envoy's SecretsConfigDump. */
function istioctlJson(o: DumpOpts): string {
    const tlsSecret = (chain: string, lastUpdated?: string): object => ({
        name: "default",
        versionInfo: "2025-01-01 10:00:00.000000000 +0000 UTC m=+1.0",
        ...(lastUpdated ? { lastUpdated } : {}),
        secret: {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
            name: "default",
            tlsCertificate: {
                certificateChain: { inlineBytes: b64(chain) },
                privateKey: { inlineBytes: b64("[redacted]") },
            },
        },
    });
    const active: object[] = [];
    if (o.chain) {
        active.push(tlsSecret(o.chain, o.lastUpdated));
    }
    if (o.rootCa) {
        active.push({
            name: "ROOTCA",
            versionInfo: "2025-01-01 10:00:00.000000000 +0000 UTC m=+1.0",
            lastUpdated: o.rootUpdated ?? "2025-01-01T10:00:00.000Z",
            secret: {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
                name: "ROOTCA",
                validationContext: { trustedCa: { inlineBytes: b64(o.rootCa) } },
            },
        });
    }
    const doc: Record<string, object[]> = {};
    if (active.length) {
        doc.dynamicActiveSecrets = active;
    }
    if (o.warmingChain) {
        doc.dynamicWarmingSecrets = [tlsSecret(o.warmingChain)];
    }
    return JSON.stringify(doc, null, 4);
}

const NOW = new Date();
const phase2 = (): ExpectedProxyTrust => ({
    signingCertPem: interB.certPem,
    trustBundlePem: trustBundle([{ generation: 1, certPem: rootA.certPem }, { generation: 2, certPem: rootB.certPem }], 2),
    issuedAfter: new Date("2025-06-01T00:00:00Z"),
    now: NOW,
});

describe("parseProxySecrets", () => {
    it("reads the istioctl -o json shape: names, lastUpdated, chain and bundle certificates", () => {
        const out = istioctlJson({
            chain: workloadChain(leafA, interA, rootA),
            rootCa: rootA.certPem + rootB.certPem,
            lastUpdated: "2025-06-02T08:00:00.123Z",
        });
        const s = parseProxySecrets(out);
        assert.deepEqual(s.secrets.map((x) => [x.name, x.state, x.type]), [["default", "active", "certificate"], ["ROOTCA", "active", "validation"]]);
        const def = findSecret(s, "default")!;
        assert.equal(def.certificates.length, 3);
        assert.equal(def.certificates[0].subjectAltName, "URI:spiffe://cluster.local/ns/default/sa/sleep");
        assert.equal(def.lastUpdatedAt?.toISOString(), "2025-06-02T08:00:00.123Z");
        assert.equal(findSecret(s, "ROOTCA")!.certificates.length, 2);
    });

    it("reads proto field names and the whole-config-dump wrapper too", () => {
        const camel = JSON.parse(istioctlJson({ chain: workloadChain(leafB, interB, rootB), rootCa: rootB.certPem })) as {
            dynamicActiveSecrets: { name: string; lastUpdated?: string; secret: { name: string; tlsCertificate?: { certificateChain: { inlineBytes: string } }; validationContext?: { trustedCa: { inlineBytes: string } } } }[];
        };
        const snake = {
            configs: [
                { "@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump", bootstrap: {} },
                {
                    "@type": "type.googleapis.com/envoy.admin.v3.SecretsConfigDump",
                    dynamic_active_secrets: camel.dynamicActiveSecrets.map((e) => ({
                        name: e.name,
                        secret: e.secret.tlsCertificate
                            ? { name: e.secret.name, tls_certificate: { certificate_chain: { inline_bytes: e.secret.tlsCertificate.certificateChain.inlineBytes } } }
                            : { name: e.secret.name, validation_context: { trusted_ca: { inline_bytes: e.secret.validationContext!.trustedCa.inlineBytes } } },
                    })),
                },
            ],
        };
        const s = parseProxySecrets(JSON.stringify(snake));
        assert.equal(findSecret(s, "default")!.certificates.length, 3);
        assert.equal(findSecret(s, "ROOTCA")!.certificates.length, 1);
    });

    it("reads inlineString, reports file references, and accepts an empty dump", () => {
        const out = JSON.stringify({
            dynamicActiveSecrets: [
                { name: "ROOTCA", secret: { name: "ROOTCA", validationContext: { trustedCa: { inlineString: rootA.certPem } } } },
                { name: "default", secret: { name: "default", tlsCertificate: { certificateChain: { filename: "/etc/certs/cert-chain.pem" } } } },
            ],
        });
        const s = parseProxySecrets(out);
        assert.equal(findSecret(s, "ROOTCA")!.certificates.length, 1);
        assert.match(findSecret(s, "default")!.problem ?? "", /refers to file \/etc\/certs\/cert-chain\.pem/);
        assert.deepEqual(parseProxySecrets("{}").secrets, []);
    });

    it("rejects what is not a SecretsConfigDump with a readable message", () => {
        assert.throws(() => parseProxySecrets(""), /empty istioctl proxy-config secret output/);
        assert.throws(() => parseProxySecrets("RESOURCE NAME   TYPE   STATUS"), /JSON does not parse.*first line was: "RESOURCE NAME/s);
        assert.throws(() => parseProxySecrets("[]"), /ztunnel/);
        assert.throws(() => parseProxySecrets('{"configs":[{"@type":"x"}]}'), /without a SecretsConfigDump/);
        assert.throws(() => parseProxySecrets('{"foo":1}'), /no dynamicActiveSecrets/);
    });
});

describe("evaluateProxySecrets (real certificates)", () => {
    it("a workload re-issued under the new intermediate and trusting the phase 2 bundle is ok", () => {
        const out = istioctlJson({
            chain: workloadChain(leafB, interB, rootB),
            rootCa: rootA.certPem + rootB.certPem,
            lastUpdated: "2025-06-02T08:00:00.000Z",
        });
        const st = evaluateProxySecrets("sleep-1.default", out, phase2());
        assert.deepEqual(st.problems, []);
        assert.equal(st.ok, true);
        assert.equal(st.cert?.issuedByExpected, true);
        assert.deepEqual(st.rootCa?.missing, []);
        assert.deepEqual(st.rootCa?.unexpected, []);
    });

    it("a workload still under the old intermediate is not ok, and the report says which issuer it presents", () => {
        const out = istioctlJson({
            chain: workloadChain(leafA, interA, rootA),
            rootCa: rootA.certPem + rootB.certPem,
            lastUpdated: "2025-06-02T08:00:00.000Z",
        });
        const st = evaluateProxySecrets("sleep-2.default", out, phase2());
        assert.equal(st.ok, false);
        assert.equal(st.cert?.issuedByExpected, false);
        assert.equal(st.problems.length, 1, st.problems.join("; "));
        assert.match(st.problems[0], /was not issued by the current intermediate .*its chain presents issuer/);
        assert.equal(st.cert?.chainIssuerFingerprint, bundleFingerprints(interA.certPem, "interA")[0]);
    });

    it("an intermediate with the same subject but another key is not accepted (signature, not names)", () => {
        const out = istioctlJson({ chain: workloadChain(leafA, interA, rootA), rootCa: rootA.certPem });
        const expected = { signingCertPem: interA2.certPem, trustBundlePem: rootA.certPem, now: NOW };
        assert.equal(evaluateProxySecrets("w", out, expected).cert?.issuedByExpected, false);
        assert.equal(evaluateProxySecrets("w", out, { ...expected, signingCertPem: interA.certPem }).ok, true);
    });

    it("ROOTCA must equal root-cert.pem as a set: missing and left-over roots are problems", () => {
        const chain = workloadChain(leafB, interB, rootB);
        const lacking = evaluateProxySecrets("w", istioctlJson({ chain, rootCa: rootB.certPem }), { ...phase2(), issuedAfter: undefined });
        assert.equal(lacking.ok, false);
        assert.deepEqual(lacking.rootCa?.missing, bundleFingerprints(rootA.certPem, "A"));
        assert.match(lacking.problems.join(), /ROOTCA lacks root/);

        const phase3: ExpectedProxyTrust = { signingCertPem: interB.certPem, trustBundlePem: rootB.certPem, now: NOW };
        const leftover = evaluateProxySecrets("w", istioctlJson({ chain, rootCa: rootA.certPem + rootB.certPem }), phase3);
        assert.equal(leftover.ok, false);
        assert.deepEqual(leftover.rootCa?.unexpected, bundleFingerprints(rootA.certPem, "A"));
        assert.match(leftover.problems.join(), /still trusts root .* which root-cert.pem no longer holds/);

        // The phase 2 bundle lists B twice; a proxy holding A + B once each is the same set.
        assert.equal(evaluateProxySecrets("w", istioctlJson({ chain, rootCa: rootB.certPem + rootA.certPem }), { ...phase2(), issuedAfter: undefined }).ok, true);
    });

    it("lastUpdated must be after issuedAfter", () => {
        const chain = workloadChain(leafB, interB, rootB);
        const rootCa = rootA.certPem + rootB.certPem;
        const old = evaluateProxySecrets("w", istioctlJson({ chain, rootCa, lastUpdated: "2025-05-31T23:59:59.000Z" }), phase2());
        assert.equal(old.ok, false);
        assert.match(old.problems.join(), /not after 2025-06-01T00:00:00.000Z/);
        const same = evaluateProxySecrets("w", istioctlJson({ chain, rootCa, lastUpdated: "2025-06-01T00:00:00.000Z" }), phase2());
        assert.equal(same.ok, false);
        const none = evaluateProxySecrets("w", istioctlJson({ chain, rootCa }), phase2());
        assert.match(none.problems.join(), /no readable lastUpdated/);
    });

    it("missing or warming certificates, and unparsable output, are per-workload problems", () => {
        const warming = evaluateProxySecrets("w1", istioctlJson({ rootCa: rootB.certPem, warmingChain: workloadChain(leafB, interB, rootB) }), phase2());
        assert.match(warming.problems.join(), /"default" is still warming/);
        const empty = evaluateProxySecrets("w2", "{}", phase2());
        assert.deepEqual(empty.problems.length, 2);
        assert.match(empty.problems.join(), /no active "default"/);
        assert.match(empty.problems.join(), /no active "ROOTCA"/);
        const garbage = evaluateProxySecrets("w3", "Error: pod not found", phase2());
        assert.equal(garbage.ok, false);
        assert.match(garbage.problems[0], /unrecognised istioctl proxy-config secret output/);
    });

    it("an expired certificate is a problem at the given instant", () => {
        const out = istioctlJson({ chain: workloadChain(leafB, interB, rootB), rootCa: rootB.certPem });
        const later = new Date(Date.now() + 400 * 24 * 3600 * 1000); // issuedBy: 365 days
        const st = evaluateProxySecrets("w", out, { signingCertPem: interB.certPem, trustBundlePem: rootB.certPem, now: later });
        assert.match(st.problems.join(), /certificate expired at/);
    });
});

describe("formatProxySecretsReport", () => {
    it("lists every failing workload with its problems; onlyProblems hides the good ones", () => {
        const good = istioctlJson({ chain: workloadChain(leafB, interB, rootB), rootCa: rootA.certPem + rootB.certPem, lastUpdated: "2025-06-02T08:00:00.000Z" });
        const bad = istioctlJson({ chain: workloadChain(leafA, interA, rootA), rootCa: rootA.certPem, lastUpdated: "2025-05-02T08:00:00.000Z" });
        const statuses = [
            evaluateProxySecrets("reviews-v1.bookinfo", bad, phase2()),
            evaluateProxySecrets("productpage-v1.bookinfo", good, phase2()),
        ];
        const sum = summarizeProxySecrets(statuses);
        assert.deepEqual(sum, { ok: false, total: 2, ready: 1, pending: ["reviews-v1.bookinfo"] });
        const report = formatProxySecretsReport(statuses);
        assert.match(report, /^1 of 2 workload\(s\) not yet on the current CA:/);
        assert.match(report, /ok {3}productpage-v1\.bookinfo/);
        assert.match(report, /FAIL reviews-v1\.bookinfo \(cert serial [0-9A-F]+ updated 2025-05-02T08:00:00.000Z, ROOTCA 1 root\(s\)\):\n\s+- certificate \(serial/);
        assert.match(report, /- ROOTCA lacks root/);
        assert.match(report, /not re-issued since the CA changed/);
        const only = formatProxySecretsReport(statuses, { onlyProblems: true });
        assert.doesNotMatch(only, /productpage/);
        assert.match(formatProxySecretsReport([statuses[1]]), /^all 1 workload\(s\) hold a certificate/);
    });
});

describe("real sample: istio/istio testdata secret config dump", () => {
    const sample = (): string => readFileSync(path.join(FIXTURES, "secret-config_dump.json"), "utf8");

    it("parses the active default chain, ROOTCA and the warming secret", () => {
        const s = parseProxySecrets(sample());
        const def = findSecret(s, "default")!;
        assert.equal(def.certificates.length, 2);
        assert.equal(def.certificates[0].serialNumber, "6FBEE254C22900615CB1F74E3D2F1713");
        assert.equal(def.certificates[0].subjectAltName, "URI:spiffe://cluster.local/ns/ambient/sa/namespace-istio-waypoint");
        assert.equal(def.lastUpdated, "2023-05-15T01:32:52.262Z");
        const root = findSecret(s, "ROOTCA")!;
        assert.equal(root.certificates.length, 1);
        assert.equal(root.certificates[0].subject, "O=cluster.local");
        assert.deepEqual(s.secrets.filter((x) => x.state === "warming").map((x) => [x.name, x.type]), [["configmap://some/thing", "none"]]);
    });

    it("evaluates against its own CA (istiod's self-signed root signs directly) and against another", () => {
        const s = parseProxySecrets(sample());
        const rootPem = findSecret(s, "ROOTCA")!.certificates[0].toString();
        const expected: ExpectedProxyTrust = {
            signingCertPem: rootPem,
            trustBundlePem: rootPem,
            issuedAfter: new Date("2023-05-15T00:00:00Z"),
            now: new Date("2023-05-15T12:00:00Z"),
        };
        assert.deepEqual(evaluateProxySecrets("waypoint.ambient", sample(), expected).problems, []);
        assert.match(
            evaluateProxySecrets("waypoint.ambient", sample(), { ...expected, issuedAfter: new Date("2023-05-15T02:00:00Z") }).problems.join(),
            /not re-issued since the CA changed/,
        );
        assert.match(evaluateProxySecrets("waypoint.ambient", sample(), { ...expected, now: new Date("2024-01-01T00:00:00Z") }).problems.join(), /expired/);
        const other = evaluateProxySecrets("waypoint.ambient", sample(), { signingCertPem: interA.certPem, trustBundlePem: rootA.certPem, now: expected.now });
        assert.equal(other.ok, false);
        assert.equal(other.cert?.issuedByExpected, false);
        assert.equal(other.rootCa?.missing.length, 1);
        assert.equal(other.rootCa?.unexpected.length, 1);
    });
});
