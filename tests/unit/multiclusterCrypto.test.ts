// The multicluster proof ("One mesh, several clusters") with real X.509 material and real chain
// verification (openssl verify): clusters whose intermediates chain to one common root accept
// each other's workloads, clusters with different roots do not, and during a root rotation two
// clusters accept each other only while they are at most one phase apart, which is why the driver
// walks ALL clusters through a phase before any cluster starts the next one.
//
// Material is generated at test time (keys live only in the temp dir). Every `cacerts` is built the
// way the program builds it: root-cert.pem by trustBundle(), cert-chain.pem by certChain(). A
// workload presents its leaf plus its cluster's cert-chain.pem (what Istio's agent sends); the
// peer in the other cluster verifies it against its OWN root-cert.pem. That is the cross-cluster
// mTLS condition checked here:
//   openssl verify -CAfile <peer cluster>/root-cert.pem -untrusted <own cluster>/cert-chain.pem leaf
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { X509Certificate, createPrivateKey, createPublicKey } from "node:crypto";
import * as fs from "node:fs";

import { bundleFingerprints, fingerprint, splitCertificates } from "../../common/pem";
import { nextPhases, type TrustState } from "../../plan/rotation";
import { validateRootMaterial } from "../../plan/rootMaterial";
import { certChain, trustBundle, type RootPem } from "../../plan/trustBundle";
import { issuedBy, selfSignedCa, writeTemp, type TestCa } from "../support/testCerts";

const SPIFFE = "spiffe://cluster.local/ns/a/sa/b";

interface Cacerts {
    "ca-cert.pem": string;
    "ca-key.pem": string;
    "root-cert.pem": string;
    "cert-chain.pem": string;
}

interface Cluster {
    name: string;
    intermediate: TestCa;
    cacerts: Cacerts;
    /** cert-chain.pem and root-cert.pem on disk, for openssl. */
    chainPath: string;
    bundlePath: string;
    /** A workload certificate issued by this cluster's intermediate (SAN = SPIFFE id). */
    leafPath: string;
}

/**
 * A cluster's `cacerts` as the program assembles it: its own intermediate (L=<cluster>) under
 * the signing root, root-cert.pem of the trusted roots, cert-chain.pem = intermediate + signing root.
 */
function cluster(name: string, signing: RootPem, trusted: RootPem[], intermediate?: TestCa): Cluster {
    const inter = intermediate ?? issuedBy(
        { certPem: signing.certPem, ...pathsOf(signing) },
        `/O=Istio/CN=Intermediate CA/L=${name}`,
        { ca: true, san: "DNS:istiod.istio-system.svc" },
    );
    const cacerts: Cacerts = {
        "ca-cert.pem": inter.certPem,
        "ca-key.pem": inter.keyPem,
        "root-cert.pem": trustBundle(trusted, signing.generation),
        "cert-chain.pem": certChain(inter.certPem, signing.certPem),
    };
    const leaf = issuedBy(inter, "/O=cluster.local", { ca: false, san: `URI:${SPIFFE}` });
    return {
        name,
        intermediate: inter,
        cacerts,
        chainPath: writeTemp(`${name}-cert-chain.pem`, cacerts["cert-chain.pem"]),
        bundlePath: writeTemp(`${name}-root-cert.pem`, cacerts["root-cert.pem"]),
        leafPath: leaf.certPath,
    };
}

// Roots by generation, with their TestCa (key paths) kept for issuing.
const rootCas = new Map<string, TestCa>();
function root(label: string, generation: number): RootPem {
    const ca = selfSignedCa("Root CA"); // same subject for every root: they differ only by key
    rootCas.set(`${generation}:${ca.certPem}`, ca);
    return { generation, certPem: ca.certPem };
}
function pathsOf(r: RootPem): Pick<TestCa, "keyPem" | "certPath" | "keyPath"> {
    const ca = rootCas.get(`${r.generation}:${r.certPem}`);
    assert.ok(ca, "unknown root");
    return ca;
}

interface Verdict {
    ok: boolean;
    output: string;
}

/** Real chain verification with openssl; `untrusted` is what the peer presents besides its leaf. */
function verify(certPath: string, caFilePath: string, untrustedPath?: string): Verdict {
    const args = ["verify", "-no-CApath", "-x509_strict", "-CAfile", caFilePath];
    if (untrustedPath) {
        args.push("-untrusted", untrustedPath);
    }
    args.push(certPath);
    const res = spawnSync("openssl", args, { encoding: "utf8" });
    if (res.error) {
        throw res.error;
    }
    const output = `${res.stdout}${res.stderr}`.trim();
    return { ok: res.status === 0 && /: OK\s*$/.test(res.stdout), output };
}

/** Does a workload of `from` pass mTLS verification by a peer in `to`? */
function accepts(to: Cluster, from: Cluster): Verdict {
    return verify(from.leafPath, to.bundlePath, from.chainPath);
}

describe("one mesh, two clusters, one root", () => {
    const R = root("R", 1);
    const east = cluster("east", R, [R]);
    const west = cluster("west", R, [R]);

    it("the shared root is valid root material (what a root stack would export)", () => {
        const report = validateRootMaterial(R.certPem, pathsOf(R).keyPem, "root stack org/istio-ca/root output root");
        assert.deepEqual(report.problems, []);
        assert.equal(report.summary?.isSelfSigned, true);
    });

    it("each cluster has its own intermediate, marked L=<cluster>, CA:true, whose key matches", () => {
        for (const c of [east, west]) {
            const cert = new X509Certificate(c.cacerts["ca-cert.pem"]);
            assert.match(cert.subject, new RegExp(`^L=${c.name}$`, "m"), cert.subject);
            assert.match(cert.subject, /^CN=Intermediate CA$/m);
            assert.equal(cert.ca, true, `${c.name}: intermediate must be a CA`);
            const fromKey = createPublicKey(createPrivateKey(c.cacerts["ca-key.pem"])).export({ type: "spki", format: "der" });
            assert.ok(fromKey.equals(cert.publicKey.export({ type: "spki", format: "der" })), `${c.name}: ca-key.pem does not match ca-cert.pem`);
        }
        assert.notEqual(fingerprint(new X509Certificate(east.cacerts["ca-cert.pem"])), fingerprint(new X509Certificate(west.cacerts["ca-cert.pem"])));
    });

    it("cacerts is assembled by the program's certChain()/trustBundle(): chain = intermediate then root, bundle = the root", () => {
        for (const c of [east, west]) {
            const chain = splitCertificates(c.cacerts["cert-chain.pem"]).map((p) => fingerprint(new X509Certificate(p)));
            assert.deepEqual(chain, [fingerprint(new X509Certificate(c.cacerts["ca-cert.pem"])), fingerprint(new X509Certificate(R.certPem))]);
            assert.deepEqual(bundleFingerprints(c.cacerts["root-cert.pem"], `${c.name} root-cert.pem`), [fingerprint(new X509Certificate(R.certPem))]);
        }
        assert.equal(east.cacerts["root-cert.pem"], west.cacerts["root-cert.pem"], "both clusters trust the same bundle");
    });

    it("openssl verify -CAfile root-cert.pem cert-chain.pem passes in both clusters (what istiod checks at start)", () => {
        for (const c of [east, west]) {
            const v = verify(c.chainPath, c.bundlePath);
            assert.ok(v.ok, `${c.name}: ${v.output}`);
        }
    });

    it("the workload leaf carries the SPIFFE identity and verifies in its own cluster", () => {
        for (const c of [east, west]) {
            const leaf = new X509Certificate(fs.readFileSync(c.leafPath, "utf8"));
            assert.match(leaf.subjectAltName ?? "", new RegExp(`URI:${SPIFFE.replace(/[/.]/g, "\\$&")}`));
            assert.equal(leaf.ca, false);
            const v = accepts(c, c);
            assert.ok(v.ok, `${c.name}: ${v.output}`);
        }
    });

    it("cross-cluster mTLS: a workload of east verifies against west's root-cert.pem, and vice versa", () => {
        const eastInWest = accepts(west, east);
        assert.ok(eastInWest.ok, `east leaf + east cert-chain.pem vs west root-cert.pem: ${eastInWest.output}`);
        const westInEast = accepts(east, west);
        assert.ok(westInEast.ok, `west leaf + west cert-chain.pem vs east root-cert.pem: ${westInEast.output}`);
    });

    it("the intermediate matters: east's leaf without its chain, or with west's chain, does not verify", () => {
        // Sanity of the verifier: the positive results above depend on the presented chain.
        assert.equal(verify(east.leafPath, west.bundlePath).ok, false, "leaf alone must not verify against the root");
        assert.equal(verify(east.leafPath, west.bundlePath, west.chainPath).ok, false, "leaf with another cluster's intermediate must not verify");
    });
});

describe("NEGATIVE: two clusters with different roots are two meshes", () => {
    // What happens when each cluster runs the seed procedure on its own: two roots, same subject.
    const R = root("R", 1);
    const Rprime = root("R'", 1);
    const east = cluster("east", R, [R]);
    const west = cluster("west", Rprime, [Rprime]);

    it("each cluster is fine on its own", () => {
        for (const c of [east, west]) {
            const own = verify(c.chainPath, c.bundlePath);
            assert.ok(own.ok, `${c.name} cert-chain.pem: ${own.output}`);
            const self = accepts(c, c);
            assert.ok(self.ok, `${c.name} leaf: ${self.output}`);
        }
    });

    it("but the cross check fails in both directions", () => {
        const eastInWest = accepts(west, east);
        assert.equal(eastInWest.ok, false, `east leaf must NOT verify against west's root R': ${eastInWest.output}`);
        const westInEast = accepts(east, west);
        assert.equal(westInEast.ok, false, `west leaf must NOT verify against east's root R: ${westInEast.output}`);
        // The same subject "O=Istio, CN=Root CA" does not help: verification goes by key.
        assert.equal(new X509Certificate(R.certPem).subject, new X509Certificate(Rprime.certPem).subject);
    });

    it("and the roots are told apart by fingerprint, which is what a cluster stack compares", () => {
        assert.notDeepEqual(
            bundleFingerprints(east.cacerts["root-cert.pem"], "east"),
            bundleFingerprints(west.cacerts["root-cert.pem"], "west"),
        );
    });
});

describe("root rotation A -> B across two clusters", () => {
    const A = root("A", 1);
    const B = root("B", 2);
    const byGeneration = new Map<number, RootPem>([[1, A], [2, B]]);

    // The phases, from the program's own nextPhases(): 0 = {sign A, trust A}, 1 = {A; A,B}, 2 = {B; A,B}, 3 = {B; B}.
    const start: TrustState = { keyVersion: 1, trustedKeyVersions: [1], intermediateVersion: 1 };
    const phases: TrustState[] = [start, ...nextPhases(start, 2)];

    // One intermediate per (cluster, root generation): a cluster keeps its intermediate under a root
    // while the phase changes only its trust.
    const intermediates = new Map<string, TestCa>();
    function intermediateOf(name: string, generation: number): TestCa {
        const k = `${name}/${generation}`;
        let i = intermediates.get(k);
        if (!i) {
            const r = byGeneration.get(generation)!;
            i = issuedBy({ certPem: r.certPem, ...pathsOf(r) }, `/O=Istio/CN=Intermediate CA/L=${name}`, { ca: true, san: "DNS:istiod.istio-system.svc" });
            intermediates.set(k, i);
        }
        return i;
    }
    const atPhase = new Map<string, Cluster>();
    function clusterAt(name: string, phase: number): Cluster {
        const k = `${name}@${phase}`;
        let c = atPhase.get(k);
        if (!c) {
            const s = phases[phase];
            c = cluster(name, byGeneration.get(s.keyVersion)!, s.trustedKeyVersions.map((g) => byGeneration.get(g)!), intermediateOf(name, s.keyVersion));
            atPhase.set(k, c);
        }
        return c;
    }

    it("nextPhases gives Istio's four phases", () => {
        assert.deepEqual(phases.map((s) => [s.keyVersion, s.trustedKeyVersions]), [[1, [1]], [1, [1, 2]], [2, [1, 2]], [2, [2]]]);
    });

    it("east at phase 2 (signs under B, bundle A+B+B) and west at phase 1 (signs under A, bundle A+B) accept each other", () => {
        const east = clusterAt("east", 2);
        const west = clusterAt("west", 1);
        const fpA = fingerprint(new X509Certificate(A.certPem));
        const fpB = fingerprint(new X509Certificate(B.certPem));
        const all = (pem: string): string[] => splitCertificates(pem).map((p) => fingerprint(new X509Certificate(p)));
        assert.deepEqual(all(east.cacerts["root-cert.pem"]), [fpA, fpB, fpB], "east root-cert.pem = A+B+B");
        assert.deepEqual(all(west.cacerts["root-cert.pem"]), [fpA, fpB], "west root-cert.pem = A+B");
        assert.equal(all(east.cacerts["cert-chain.pem"])[1], fpB, "east signs under B");
        assert.equal(all(west.cacerts["cert-chain.pem"])[1], fpA, "west signs under A");

        for (const c of [east, west]) {
            const v = verify(c.chainPath, c.bundlePath);
            assert.ok(v.ok, `${c.name} cert-chain.pem vs its root-cert.pem: ${v.output}`);
        }
        const eastInWest = accepts(west, east);
        assert.ok(eastInWest.ok, `east (B) leaf vs west A+B: ${eastInWest.output}`);
        const westInEast = accepts(east, west);
        assert.ok(westInEast.ok, `west (A) leaf vs east A+B+B: ${westInEast.output}`);
    });

    it("NEGATIVE: if west were still at phase 0 (bundle A only), east's phase-2 workloads are rejected there", () => {
        const east = clusterAt("east", 2);
        const west = clusterAt("west", 0);
        const eastInWest = accepts(west, east);
        assert.equal(eastInWest.ok, false, `east (B) leaf must NOT verify against west's bundle A: ${eastInWest.output}`);
        // The other direction still works (east trusts A): a one-sided outage, just as bad for mTLS.
        const westInEast = accepts(east, west);
        assert.ok(westInEast.ok, `west (A) leaf vs east A+B+B: ${westInEast.output}`);
    });

    it("every pair of phases: two clusters accept each other exactly when they are at most one phase apart", () => {
        const results: string[] = [];
        const wrong: string[] = [];
        for (let pe = 0; pe < phases.length; pe++) {
            for (let pw = 0; pw < phases.length; pw++) {
                const east = clusterAt("east", pe);
                const west = clusterAt("west", pw);
                const mutual = accepts(west, east).ok && accepts(east, west).ok;
                const expected = Math.abs(pe - pw) <= 1;
                results.push(`east@${pe}/west@${pw}: ${mutual ? "mutual" : "BROKEN"}`);
                if (mutual !== expected) {
                    wrong.push(`east@${pe}/west@${pw}: expected ${expected ? "mutual" : "broken"}, got ${mutual ? "mutual" : "broken"}`);
                }
            }
        }
        assert.deepEqual(wrong, [], results.join("; "));
        // Both outcomes occurred, so the property is not vacuous.
        assert.ok(results.some((r) => r.endsWith("mutual")) && results.some((r) => r.endsWith("BROKEN")));
    });
});
