// The proof that the phased root rotation keeps mTLS working, with real X.509 material and real
// chain verification (openssl verify), and that the seed's immediate swap does not.
//
// Material (generated at test time, keys thrown away with the temp dir): roots of generations 1, 2
// and 3, all with Istio's subject `O=Istio, CN=Root CA` (so verification has to tell them apart by
// key, as in a real rotation); for each root an intermediate (and for root 1 a second one, for the
// intermediate rotation); for each intermediate a workload leaf. A workload presents
// leaf + cert-chain.pem (= intermediate + root, as Istio's agent does); root-cert.pem is built by
// the real trustBundle().
//
// The model (see plan/rotation.ts): during a step P -> N the live workload certificates are those
// issued under P's signer (all workloads, after the gate) and under N's signer; the live trust
// bundles are root-cert.pem of P and of N. A step breaks mTLS when one live certificate does not
// verify against one live bundle.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";

import { classifyTransition, nextPhases, type TransitionKind, type TrustState } from "../../plan/rotation";
import { certChain, trustBundle } from "../../plan/trustBundle";
import { bundleFingerprints } from "../../common/pem";
import { issuedBy, istiodSelfSignedCa, selfSignedCa, writeTemp, type TestCa } from "../support/testCerts";

const GENERATIONS = [1, 2, 3];

const roots = new Map<number, TestCa>();
const intermediates = new Map<string, TestCa>();
const leaves = new Map<string, { leafPath: string; chainPath: string }>();

const key = (generation: number, intermediateVersion: number): string => `${generation}/${intermediateVersion}`;

function root(g: number): TestCa {
    let r = roots.get(g);
    if (!r) {
        // Generation 0: istiod's own self-signed CA, made as istiod makes it (istio-ca-secret).
        r = g === 0 ? istiodSelfSignedCa() : selfSignedCa("Root CA");
        roots.set(g, r);
    }
    return r;
}

function intermediate(g: number, iv: number): TestCa {
    if (g === 0) {
        // istiod's self-signed CA signs workloads directly, before and after it moves into cacerts.
        return root(0);
    }
    let i = intermediates.get(key(g, iv));
    if (!i) {
        i = issuedBy(root(g), "/O=Istio/CN=Intermediate CA/L=test-cluster", { ca: true, san: "DNS:istiod.istio-system.svc" });
        intermediates.set(key(g, iv), i);
    }
    return i;
}

/** A workload certificate issued by the intermediate of (generation, intermediateVersion). */
function workload(g: number, iv: number): { leafPath: string; chainPath: string } {
    let w = leaves.get(key(g, iv));
    if (!w) {
        const inter = intermediate(g, iv);
        const leaf = issuedBy(inter, "/O=cluster.local", { ca: false, san: "URI:spiffe://cluster.local/ns/default/sa/workload" });
        // What the workload presents after its leaf: cert-chain.pem of the CA that signed it.
        const chainPath = writeTemp(`chain-${g}-${iv}.pem`, g === 0 ? inter.certPem : certChain(inter.certPem, root(g).certPem));
        w = { leafPath: leaf.certPath, chainPath };
        leaves.set(key(g, iv), w);
    }
    return w;
}

/** root-cert.pem of a state, by the program's own trustBundle(). */
function bundle(s: TrustState): string {
    return trustBundle(
        s.trustedKeyVersions.map((g) => ({ generation: g, certPem: root(g).certPem })),
        s.keyVersion,
    );
}

const bundlePaths = new Map<string, string>();
const verified = new Map<string, boolean>();

/** Real chain verification: does the workload of (g, iv) verify against this root-cert.pem? */
function verifies(g: number, iv: number, rootCertPem: string): boolean {
    const digest = createHash("sha256").update(rootCertPem).digest("hex");
    const cacheKey = `${key(g, iv)}@${digest}`;
    const cached = verified.get(cacheKey);
    if (cached !== undefined) {
        return cached;
    }
    let bundlePath = bundlePaths.get(digest);
    if (!bundlePath) {
        bundlePath = writeTemp(`root-cert-${digest.slice(0, 12)}.pem`, rootCertPem);
        bundlePaths.set(digest, bundlePath);
    }
    const w = workload(g, iv);
    const res = spawnSync("openssl", ["verify", "-no-CApath", "-x509_strict", "-CAfile", bundlePath, "-untrusted", w.chainPath, w.leafPath], {
        encoding: "utf8",
    });
    if (res.error) {
        throw res.error;
    }
    const ok = res.status === 0 && /: OK\s*$/.test(res.stdout);
    verified.set(cacheKey, ok);
    return ok;
}

interface Pair {
    cert: string;
    bundle: "old root-cert.pem" | "new root-cert.pem";
    ok: boolean;
}

/** Every (live certificate, live bundle) pair of the step prev -> next, with the verification result. */
function livePairs(prev: TrustState, next: TrustState): Pair[] {
    const certs = new Map<string, [number, number]>();
    certs.set(key(prev.keyVersion, prev.intermediateVersion), [prev.keyVersion, prev.intermediateVersion]);
    certs.set(key(next.keyVersion, next.intermediateVersion), [next.keyVersion, next.intermediateVersion]);
    const bundles: [Pair["bundle"], string][] = [
        ["old root-cert.pem", bundle(prev)],
        ["new root-cert.pem", bundle(next)],
    ];
    const pairs: Pair[] = [];
    for (const [, [g, iv]] of certs) {
        for (const [name, pem] of bundles) {
            pairs.push({ cert: `workload cert under root ${g} (intermediate ${iv})`, bundle: name, ok: verifies(g, iv, pem) });
        }
    }
    return pairs;
}

function broken(prev: TrustState, next: TrustState): Pair[] {
    return livePairs(prev, next).filter((p) => !p.ok);
}

function show(pairs: Pair[]): string {
    return pairs.map((p) => `${p.cert} vs ${p.bundle}: ${p.ok ? "verifies" : "REJECTED"}`).join("; ");
}

const S = (keyVersion: number, trustedKeyVersions: number[], intermediateVersion = 1): TrustState => ({
    keyVersion,
    trustedKeyVersions,
    intermediateVersion,
});

/** Every state over the generations: a signer and any trusted set that contains it. */
function allStates(): TrustState[] {
    const states: TrustState[] = [];
    for (let mask = 1; mask < 1 << GENERATIONS.length; mask++) {
        const trusted = GENERATIONS.filter((_, i) => mask & (1 << i));
        for (const kv of trusted) {
            states.push(S(kv, trusted));
        }
    }
    return states;
}

const fmt = (s: TrustState): string => `{sign ${s.keyVersion}, trust [${s.trustedKeyVersions.join(",")}]${s.intermediateVersion !== 1 ? `, intermediate ${s.intermediateVersion}` : ""}}`;

describe("the verifier itself", () => {
    it("tells roots with the same subject apart: a certificate verifies only against the root that issued it", () => {
        // Without this, every result below would be meaningless.
        assert.equal(verifies(1, 1, bundle(S(1, [1]))), true, "leaf under root 1 must verify against root 1");
        assert.equal(verifies(1, 1, bundle(S(2, [2]))), false, "leaf under root 1 must NOT verify against root 2 alone");
        assert.equal(verifies(2, 1, bundle(S(1, [1]))), false, "leaf under root 2 must NOT verify against root 1 alone");
        assert.equal(verifies(2, 1, bundle(S(1, [1, 2]))), true, "leaf under root 2 must verify against the bundle 1 + 2");
    });
});

describe("zero-downtime rotation 1 -> 2: every live certificate verifies against every live bundle", () => {
    const path = [S(1, [1]), ...nextPhases(S(1, [1]), 2)];
    const expectedKinds: TransitionKind[] = ["trust", "sign", "complete"];

    it("nextPhases gives the three phases of Istio's protocol", () => {
        assert.deepEqual(
            path.map(fmt),
            [S(1, [1]), S(1, [1, 2]), S(2, [1, 2]), S(2, [2])].map(fmt),
        );
    });

    for (let i = 1; i < path.length; i++) {
        const prev = path[i - 1];
        const next = path[i];
        it(`phase ${i - 1} -> ${i}: ${fmt(prev)} -> ${fmt(next)} is '${expectedKinds[i - 1]}' and breaks no pair`, () => {
            const t = classifyTransition(prev, next);
            assert.equal(t.kind, expectedKinds[i - 1], t.description);
            assert.deepEqual(t.errors, []);
            assert.deepEqual(t.warnings, []);
            const pairs = livePairs(prev, next);
            assert.ok(pairs.length >= 2, "at least one certificate against two bundles");
            assert.deepEqual(pairs.filter((p) => !p.ok), [], show(pairs));
        });
    }

    it("phase 2's root-cert.pem trusts the same roots as phase 1 but has different bytes (so proxies re-sign)", () => {
        const b1 = bundle(path[1]);
        const b2 = bundle(path[2]);
        assert.notEqual(b1, b2);
        assert.deepEqual(new Set(bundleFingerprints(b1, "phase 1")), new Set(bundleFingerprints(b2, "phase 2")));
    });
});

describe("migration from istiod's self-signed CA (generation 0, istio-ca-secret) to root 1", () => {
    const path = [S(0, [0]), ...nextPhases(S(0, [0]), 1)];

    it("is the same three phases: trust both, sign with root 1, trust only root 1", () => {
        assert.deepEqual(path.map(fmt), [S(0, [0]), S(0, [0, 1]), S(1, [0, 1]), S(1, [1])].map(fmt));
    });

    for (let i = 1; i < path.length; i++) {
        const prev = path[i - 1];
        const next = path[i];
        it(`${fmt(prev)} -> ${fmt(next)}: every live (workload cert, trust bundle) pair verifies`, () => {
            const t = classifyTransition(prev, next);
            assert.deepEqual(t.errors, []);
            assert.deepEqual(t.warnings, []);
            const pairs = livePairs(prev, next);
            assert.deepEqual(pairs.filter((p) => !p.ok), [], show(pairs));
        });
    }

    it("the switch at once (the seed's way) breaks mTLS and is warned", () => {
        const prev = S(0, [0]);
        const next = S(1, [1]);
        const t = classifyTransition(prev, next);
        assert.equal(t.kind, "immediate-swap");
        assert.equal(t.warnings.length, 1);
        assert.ok(broken(prev, next).length > 0, show(livePairs(prev, next)));
    });
});

describe("the seed's immediate swap breaks mTLS", () => {
    it("0 -> {sign 2, trust [2]}: classified 'immediate-swap' with a warning, and at least one live pair is rejected", () => {
        const prev = S(1, [1]);
        const next = S(2, [2]);
        const t = classifyTransition(prev, next);
        assert.equal(t.kind, "immediate-swap");
        assert.equal(t.warnings.length, 1);
        assert.match(t.warnings[0], /istio-ca:trustedKeyVersions/);
        const bad = broken(prev, next);
        assert.ok(bad.length > 0, `expected the swap to break a pair: ${show(livePairs(prev, next))}`);
        // Old workloads are rejected by proxies holding the new bundle, and vice versa.
        assert.ok(bad.some((p) => p.cert.includes("root 1") && p.bundle === "new root-cert.pem"), show(bad));
        assert.ok(bad.some((p) => p.cert.includes("root 2") && p.bundle === "old root-cert.pem"), show(bad));
    });

    it("the steps that skip a phase are refused, and they really break pairs", () => {
        // Skips phase 2 (trust only the new root while workloads hold certificates under the old one).
        const skip2 = [S(1, [1, 2]), S(2, [2])] as const;
        // Skips phase 1 (sign with a root the old bundle does not trust).
        const skip1 = [S(1, [1]), S(2, [1, 2])] as const;
        for (const [prev, next] of [skip2, skip1]) {
            const t = classifyTransition(prev, next);
            assert.equal(t.kind, "invalid", `${fmt(prev)} -> ${fmt(next)}: ${t.description}`);
            assert.ok(broken(prev, next).length > 0, `${fmt(prev)} -> ${fmt(next)} should break a pair: ${show(livePairs(prev, next))}`);
        }
    });
});

describe("intermediate-only rotation", () => {
    it("old and new intermediate under the same root: 'intermediate', every pair verifies", () => {
        const prev = S(1, [1], 1);
        const next = S(1, [1], 2);
        assert.equal(classifyTransition(prev, next).kind, "intermediate");
        const pairs = livePairs(prev, next);
        assert.equal(pairs.length, 4, "two certificates (intermediate 1 and 2) against two bundles");
        assert.deepEqual(pairs.filter((p) => !p.ok), [], show(pairs));
    });
});

describe("every transition between all states over three root generations", () => {
    const states = allStates();
    const quiet: TransitionKind[] = ["unchanged", "trust", "sign", "complete", "rollback-sign", "rollback-trust"];

    it("enumerates 12 states", () => {
        assert.equal(states.length, 12);
    });

    it("a step allowed without warning never breaks a pair; a warned or refused step is justified", () => {
        const seen = new Set<TransitionKind>();
        const failures: string[] = [];
        for (const prev of states) {
            for (const next of states) {
                const t = classifyTransition(prev, next);
                seen.add(t.kind);
                const bad = broken(prev, next);
                const where = `${fmt(prev)} -> ${fmt(next)} (${t.kind})`;
                if (quiet.includes(t.kind)) {
                    if (t.errors.length || t.warnings.length) {
                        failures.push(`${where}: quiet kind with texts ${JSON.stringify([...t.errors, ...t.warnings])}`);
                    }
                    if (bad.length > 0) {
                        failures.push(`${where}: allowed but breaks ${show(bad)}`);
                    }
                } else if (t.kind === "immediate-swap") {
                    if (t.warnings.length === 0) {
                        failures.push(`${where}: no warning`);
                    }
                    if (bad.length === 0) {
                        failures.push(`${where}: warned as an outage but breaks nothing`);
                    }
                } else if (t.kind === "invalid") {
                    // Refused either because it breaks a pair, or because of a stated Istio fact:
                    // root-cert.pem must stay a subset/superset (live reload), one change per gate.
                    const subsetOrSuperset =
                        prev.trustedKeyVersions.every((g) => next.trustedKeyVersions.includes(g)) ||
                        next.trustedKeyVersions.every((g) => prev.trustedKeyVersions.includes(g));
                    const trustChanged = t.addedTrust.length + t.droppedTrust.length > 0;
                    const twoChanges = t.signerChanged && trustChanged;
                    if (bad.length === 0 && subsetOrSuperset && !twoChanges) {
                        failures.push(`${where}: refused without reason: ${t.errors.join(" ")}`);
                    }
                    if (t.errors.length === 0) {
                        failures.push(`${where}: invalid without an error text`);
                    }
                } else {
                    failures.push(`${where}: unexpected kind`);
                }
            }
        }
        assert.deepEqual(failures, []);
        for (const k of [...quiet, "immediate-swap", "invalid"] as TransitionKind[]) {
            assert.ok(seen.has(k), `kind ${k} never occurred: the enumeration would not test it`);
        }
    });

    it("nextPhases from every state to every root is quiet and breaks no pair at any step", () => {
        const failures: string[] = [];
        for (const start of states) {
            for (const target of GENERATIONS) {
                let prev = start;
                for (const step of nextPhases(start, target)) {
                    const t = classifyTransition(prev, step);
                    if (!quiet.includes(t.kind) || t.kind === "unchanged") {
                        failures.push(`${fmt(start)} => ${target}: step ${fmt(prev)} -> ${fmt(step)} is ${t.kind}: ${t.description}`);
                    }
                    const bad = broken(prev, step);
                    if (bad.length > 0) {
                        failures.push(`${fmt(start)} => ${target}: step ${fmt(prev)} -> ${fmt(step)} breaks ${show(bad)}`);
                    }
                    prev = step;
                }
                if (fmt(prev) !== fmt(S(target, [target]))) {
                    failures.push(`${fmt(start)} => ${target}: ends at ${fmt(prev)}`);
                }
            }
        }
        assert.deepEqual(failures, []);
    });
});
