// The two layouts istiod reads cacerts in (common/cacertsFormat): which one it reads, which keys are
// stale, how this program's content maps onto tls.crt / tls.key / ca.crt in every rotation phase,
// and how takeover, drift, backup and restore judge a kubernetes.io/tls cacerts. The mapping is
// checked the way istiod checks it (pki/util.Verify: tls.crt verified against ca.crt with
// tls.crt + ca.crt as intermediates), here with openssl verify.
import { test } from "node:test";
import assert from "node:assert/strict";
import { formatIstiodReads, formatToWrite, istiodView, staleKeys, tlsKeysOf, publicKeysOf, filesOf } from "../../common/cacertsFormat";
import { backupNameOf, cacertsFingerprint, incompleteCacerts, publicContentHash, servedContentHashOf, writtenContentHash } from "../../common/cacertsFiles";
import { backupCacerts, backupManifest, SecretObject } from "../../steps/backupCacerts";
import { cacertsContentProblems, restoreSource } from "../../plan/restore";
import { planServedDrift, planTakeover } from "../../plan/takeover";
import type { Kubectl } from "../../kube/kubectl";
import { bundleFingerprints, fingerprint, parseCertificates } from "../../common/pem";
import { certChain, trustBundle } from "../../plan/trustBundle";
import { certManagerCacerts, handMadeCacerts, issuedBy, openssl, selfSignedCa, writeTemp } from "../support/testCerts";

const KEY_MARKER = ["PRIVATE", "KEY"].join(" ");
const b64 = (s: string): string => Buffer.from(s, "utf8").toString("base64");

/** What istiod's pki/util.Verify does with a TLS-layout content, by openssl: true when it verifies. */
function istiodAccepts(keys: Record<string, string>): boolean {
    const caCrt = writeTemp("ca.crt", keys["ca.crt"]);
    const chain = writeTemp("chain.pem", keys["tls.crt"] + keys["ca.crt"]); // CertChainFiles: tls.crt, ca.crt
    const signing = writeTemp("tls.crt", parseCertificates(keys["tls.crt"], "tls.crt")[0].toString());
    try {
        return /: OK/.test(openssl(["verify", "-CAfile", caCrt, "-untrusted", chain, signing]));
    } catch {
        return false;
    }
}

test("the layout istiod reads: tls.crt decides, whatever the Secret's type", () => {
    assert.equal(formatIstiodReads(["ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem"]), "istio");
    assert.equal(formatIstiodReads(["tls.crt", "tls.key", "ca.crt"]), "tls");
    assert.equal(formatIstiodReads(["ca-cert.pem", "tls.crt"]), "tls", "tls.crt next to ca-cert.pem wins (detectSigningCABundleAndCRL)");
    assert.equal(formatIstiodReads(["ca-cert.pem", "tls.key", "ca.crt"]), "istio", "tls.key / ca.crt alone do not switch it");
    assert.equal(formatToWrite(undefined), "istio", "no cacerts: Istio's layout");
    assert.equal(formatToWrite({ type: "kubernetes.io/tls", data: { "tls.crt": "", "tls.key": "" } }), "tls");
    assert.equal(formatToWrite({ type: "Opaque", data: { "ca-cert.pem": "", "tls.crt": "" } }), "tls");
    assert.equal(formatToWrite({ type: "Opaque", data: { "ca-cert.pem": "" } }), "istio");
});

test("stale keys: those of the layout istiod does not read", () => {
    assert.deepEqual(staleKeys("tls", ["tls.crt", "tls.key", "ca.crt", "root-cert.pem", "ca-cert.pem", "other"]), ["ca-cert.pem", "root-cert.pem"]);
    assert.deepEqual(staleKeys("istio", ["ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem", "tls.key", "ca.crt"]), ["ca.crt", "tls.key"]);
    assert.deepEqual(staleKeys("tls", ["tls.crt", "tls.key", "ca.crt"]), []);
});

test("a cert-manager cacerts is read as istiod reads it: complete, restorable, named by tls.crt", () => {
    const { root, intermediate, files } = certManagerCacerts();
    const view = istiodView(files);
    assert.equal(view.format, "tls");
    assert.equal(view.files["ca-cert.pem"], intermediate.certPem);
    assert.equal(view.files["ca-key.pem"], intermediate.keyPem);
    assert.equal(view.files["root-cert.pem"], root.certPem);
    assert.deepEqual(bundleFingerprints(view.files["cert-chain.pem"], "chain"), bundleFingerprints(intermediate.certPem + root.certPem, "x"), "the chain ends with the root that issued tls.crt");
    assert.deepEqual(incompleteCacerts(files), []);
    assert.deepEqual(cacertsContentProblems(files), []);
    assert.ok(istiodAccepts(files));
    const restored = restoreSource("b", "istio-ca-backups", { name: "b", data: files }, "here");
    assert.equal(restored.caKeyPem, intermediate.keyPem);
    assert.equal(restored.rootCertPem, root.certPem);
    // Named like the same content in Istio's layout: by the signing certificate.
    const asBuffers = Object.fromEntries(Object.entries(files).map(([k, v]) => [k, Buffer.from(v)]));
    assert.equal(cacertsFingerprint(asBuffers), fingerprint(parseCertificates(intermediate.certPem, "i")[0]));
    assert.equal(backupNameOf(files), backupNameOf({ "ca-cert.pem": intermediate.certPem }));
});

test("tls.crt holding a chain (intermediate, then root): the first certificate signs, nothing appended twice", () => {
    const { root, intermediate } = certManagerCacerts();
    const files = { "tls.crt": intermediate.certPem + root.certPem, "tls.key": intermediate.keyPem, "ca.crt": root.certPem };
    assert.deepEqual(cacertsContentProblems(files), []);
    assert.equal(bundleFingerprints(istiodView(files).files["cert-chain.pem"], "chain").length, 2);
    assert.ok(istiodAccepts(files));
});

test("an incomplete TLS layout is judged by its own keys, even next to a complete Istio layout", () => {
    const { files: istio } = handMadeCacerts();
    const { files: tls } = certManagerCacerts();
    assert.deepEqual(incompleteCacerts({ ...istio, "tls.crt": tls["tls.crt"] }), ["missing tls.key, ca.crt"]);
    const broken = incompleteCacerts({ ...tls, "tls.key": "not a key" });
    assert.equal(broken.length, 1);
    assert.match(broken[0], /^tls\.key does not parse as an unencrypted PEM private key/);
    assert.match(cacertsContentProblems({ ...tls, "ca.crt": selfSignedCa("Other").certPem }).join("\n"), /does not verify to a root/);
});

test("the mapping: every rotation phase in tls.crt / ca.crt verifies as istiod verifies it, and reads back as written", () => {
    const r1 = selfSignedCa("Root v1");
    const r2 = selfSignedCa("Root v2");
    const i1 = issuedBy(r1, "/O=Istio/CN=Intermediate v1");
    const i2 = issuedBy(r2, "/O=Istio/CN=Intermediate v2");
    const phases = {
        single: { signing: i1, chain: certChain(i1.certPem, r1.certPem), bundle: trustBundle([{ generation: 1, certPem: r1.certPem }], 1) },
        trust: { signing: i1, chain: certChain(i1.certPem, r1.certPem), bundle: trustBundle([{ generation: 1, certPem: r1.certPem }, { generation: 2, certPem: r2.certPem }], 1) },
        sign: { signing: i2, chain: certChain(i2.certPem, r2.certPem), bundle: trustBundle([{ generation: 1, certPem: r1.certPem }, { generation: 2, certPem: r2.certPem }], 2) },
        complete: { signing: i2, chain: certChain(i2.certPem, r2.certPem), bundle: trustBundle([{ generation: 2, certPem: r2.certPem }], 2) },
    };
    for (const [phase, p] of Object.entries(phases)) {
        const files = { caCertPem: p.signing.certPem, caKeyPem: p.signing.keyPem, rootCertPem: p.bundle, certChainPem: p.chain };
        const keys = tlsKeysOf(files);
        assert.deepEqual(bundleFingerprints(keys["tls.crt"], "tls.crt"), bundleFingerprints(p.signing.certPem, "i"), `${phase}: tls.crt is the intermediate alone (istiod appends ca.crt)`);
        assert.equal(keys["ca.crt"], p.bundle, `${phase}: ca.crt is the whole bundle, published as istio-ca-root-cert`);
        assert.equal(keys["tls.key"], p.signing.keyPem);
        assert.ok(istiodAccepts(keys), `${phase}: istiod's verification accepts it`);
        assert.deepEqual(cacertsContentProblems(keys), [], `${phase}: a complete CA`);
        const back = filesOf(istiodView(keys).files);
        assert.deepEqual(bundleFingerprints(back.certChainPem, "c"), bundleFingerprints(p.chain, "c"), `${phase}: reads back as cert-chain.pem`);
        assert.equal(back.rootCertPem, p.bundle);
        // The hash the stack records is the one the drift check reads back.
        assert.equal(writtenContentHash("tls", files), servedContentHashOf(keys), `${phase}: written and read-back hashes agree`);
        assert.equal(writtenContentHash("istio", files), publicContentHash(files), `${phase}: Istio's layout keeps its hash`);
        assert.deepEqual(Object.keys(publicKeysOf("tls", files)).sort(), ["ca.crt", "tls.crt"], "no key in what is hashed");
    }
    const stranger = selfSignedCa("Stranger");
    const wrongRoot = tlsKeysOf({ caCertPem: i1.certPem, caKeyPem: i1.keyPem, rootCertPem: stranger.certPem, certChainPem: certChain(i1.certPem, r1.certPem) });
    assert.equal(istiodAccepts(wrongRoot), false, "a ca.crt that did not issue tls.crt is refused, as istiod would");
    // A multi-level chain keeps its intermediates in tls.crt; the root goes to ca.crt only.
    const sub = issuedBy(i1, "/O=Istio/CN=Sub CA");
    const deep = tlsKeysOf({ caCertPem: sub.certPem, caKeyPem: sub.keyPem, rootCertPem: r1.certPem, certChainPem: sub.certPem + i1.certPem + r1.certPem });
    assert.equal(bundleFingerprints(deep["tls.crt"], "t").length, 2);
    assert.ok(istiodAccepts(deep));
});

test("istiod's self-signed CA (generation 0) in the TLS layout: tls.crt is the root itself", () => {
    const r0 = selfSignedCa("istiod self-signed");
    const r1 = selfSignedCa("Root v1");
    const bundle = trustBundle([{ generation: 0, certPem: r0.certPem }, { generation: 1, certPem: r1.certPem }], 0);
    const keys = tlsKeysOf({ caCertPem: r0.certPem, caKeyPem: r0.keyPem, rootCertPem: bundle, certChainPem: r0.certPem });
    assert.deepEqual(bundleFingerprints(keys["tls.crt"], "t"), bundleFingerprints(r0.certPem, "r0"));
    assert.ok(istiodAccepts(keys));
});

test("takeover of a kubernetes.io/tls cacerts: not refused, its layout and type kept, stale keys and cert-manager said in preview", () => {
    const { files } = certManagerCacerts();
    const { files: old } = handMadeCacerts();
    const base = { namespace: "istio-system", deployedBefore: false, newRootsSource: "a root generated by this stack", replaceInvalid: false };
    const clean = planTakeover({ ...base, existing: { type: "kubernetes.io/tls", data: files } });
    assert.equal(clean.kind, "takeover");
    const text = clean.kind === "takeover" ? clean.warnings.join("\n") : "";
    assert.match(text, /LAYOUT: Secret istio-system\/cacerts is of type kubernetes\.io\/tls/);
    assert.match(text, /jsonpath='\{\.data\.ca\\\.crt\}'/, "the root to adopt is read from ca.crt");
    assert.doesNotMatch(text, /STALE|CERT-MANAGER/);
    const stale = planTakeover({ ...base, existing: { type: "kubernetes.io/tls", data: { ...files, "ca-cert.pem": old["ca-cert.pem"], "root-cert.pem": old["root-cert.pem"] }, annotations: { "cert-manager.io/certificate-name": "istio-ca" } } });
    const staleText = stale.kind === "takeover" ? stale.warnings.join("\n") : "";
    assert.match(staleText, /STALE KEYS: .*holds ca-cert\.pem, root-cert\.pem, which istiod ignores \(tls\.crt is there\).*REMOVES them/);
    assert.match(staleText, /CERT-MANAGER: .*Certificate istio-ca/);
    // The trap: an Opaque cacerts with another tool's tls.crt. istiod serves the tls.* keys; they are what is taken over.
    const trap = planTakeover({ ...base, existing: { type: "Opaque", data: { ...old, ...files } } });
    const trapText = trap.kind === "takeover" ? trap.warnings.join("\n") : "";
    assert.match(trapText, /is of type Opaque but holds tls\.crt, so istiod reads its CA from tls\.crt/);
    assert.match(trapText, /holds ca-cert\.pem, cert-chain\.pem, ca-key\.pem, root-cert\.pem|holds ca-cert\.pem, ca-key\.pem, cert-chain\.pem, root-cert\.pem/);
    // Stray tls.key / ca.crt next to Istio's layout are stale too.
    const stray = planTakeover({ ...base, existing: { type: "Opaque", data: { ...old, "ca.crt": files["ca.crt"] } } });
    assert.match(stray.kind === "takeover" ? stray.warnings.join("\n") : "", /holds ca\.crt, which istiod ignores \(there is no tls\.crt\)/);
    assert.doesNotMatch(stray.kind === "takeover" ? stray.warnings.join("\n") : "", /LAYOUT/);
    // Incomplete in its own layout: refused, naming the keys of that layout.
    const refused = planTakeover({ ...base, existing: { type: "kubernetes.io/tls", data: { "tls.crt": files["tls.crt"], "tls.key": files["tls.key"] } } });
    assert.equal(refused.kind, "refuse");
    assert.match(refused.kind === "refuse" ? refused.message : "", /not a complete CA in the kubernetes\.io\/tls layout istiod reads from it \(tls\.crt, tls\.key, ca\.crt\).*missing ca\.crt/);
});

test("a tls.crt added to a deployed stack's Opaque cacerts is a change (istiod would read it), not ignored", () => {
    const { files } = handMadeCacerts();
    const recorded = publicContentHash({ caCertPem: files["ca-cert.pem"], rootCertPem: files["root-cert.pem"], certChainPem: files["cert-chain.pem"] });
    const input = { namespace: "istio-system", recordedHash: recorded, overwrite: false };
    assert.equal(planServedDrift({ ...input, existing: { type: "Opaque", data: files } }).kind, "none");
    const other = certManagerCacerts().files;
    const drift = planServedDrift({ ...input, existing: { type: "Opaque", data: { ...files, ...other } } });
    assert.equal(drift.kind, "refuse");
    assert.match(drift.kind === "refuse" ? drift.message : "", /changed outside this stack[\s\S]*LAYOUT: .*Opaque but holds tls\.crt/);
});

test("the backup keeps the TLS layout and type; stale keys are removed after it, by name, never with key material", async () => {
    const { files } = certManagerCacerts();
    const { files: old } = handMadeCacerts();
    const source: SecretObject = {
        metadata: { name: "cacerts", namespace: "istio-system", uid: "u-1", resourceVersion: "42" },
        type: "kubernetes.io/tls",
        data: Object.fromEntries(Object.entries({ ...files, "ca-cert.pem": old["ca-cert.pem"], "ca-key.pem": old["ca-key.pem"] }).map(([k, v]) => [k, b64(v)])),
    };
    const m = backupManifest(source, "istio-ca-backups", new Date(0)) as { type: string; data: Record<string, string>; metadata: { name: string } };
    assert.equal(m.type, "kubernetes.io/tls");
    assert.deepEqual(m.data, source.data);
    assert.equal(m.metadata.name, backupNameOf(files));
    const calls: string[][] = [];
    const answers = [JSON.stringify(source), "secret/x\n", "secret/cacerts\n", JSON.stringify({ items: [] })];
    const kubectl = { async run(args: string[]) { calls.push(args); return answers[calls.length - 1]; } } as unknown as Kubectl;
    const r = await backupCacerts({ kubectl, namespace: "istio-system", backupNamespace: "istio-ca-backups", keep: 3, log: () => undefined });
    assert.equal(calls[1][0], "create", "the backup first");
    const patch = calls[2];
    assert.deepEqual(patch.slice(0, 5), ["patch", "secret", "cacerts", "-n", "istio-system"]);
    assert.deepEqual(JSON.parse(patch[patch.indexOf("-p") + 1]), [
        { op: "test", path: "/metadata/resourceVersion", value: "42" },
        { op: "remove", path: "/data/ca-cert.pem" },
        { op: "remove", path: "/data/ca-key.pem" },
    ]);
    assert.ok(!calls.flat().join(" ").includes(KEY_MARKER), "no key on a command line");
    assert.deepEqual(r.removedKeys, ["ca-cert.pem", "ca-key.pem"]);
    assert.match(r.summary, /removed ca-cert\.pem, ca-key\.pem from istio-system\/cacerts: istiod reads tls\.crt, tls\.key, ca\.crt from it and ignores them/);
});
