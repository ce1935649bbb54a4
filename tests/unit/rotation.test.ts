// Unit tests for plan/rotation.ts: classification rules, texts and nextPhases. The crypto proof that
// the rules are right is tests/unit/rotationCrypto.test.ts.
import { describe, it } from "node:test";
import assert from "node:assert/strict";

import {
    classifyTransition,
    configCommands,
    formatTrustState,
    nextPhases,
    validateTrustState,
    type Transition,
    type TransitionKind,
    type TrustState,
} from "../../plan/rotation";

const S = (keyVersion: number, trustedKeyVersions: number[], intermediateVersion = 1): TrustState => ({
    keyVersion,
    trustedKeyVersions,
    intermediateVersion,
});

const QUIET: TransitionKind[] = ["unchanged", "intermediate", "trust", "sign", "complete", "rollback-sign", "rollback-trust"];

function assertQuiet(t: Transition, where: string): void {
    assert.ok(QUIET.includes(t.kind), `${where}: ${t.kind}: ${t.description}`);
    assert.deepEqual(t.errors, [], where);
    assert.deepEqual(t.warnings, [], where);
}

/** Applies a suggested sequence from `from` and checks that every step is a quiet one. */
function assertQuietSequence(from: TrustState, steps: TrustState[], where: string): TrustState {
    let prev = from;
    for (const s of steps) {
        assertQuiet(classifyTransition(prev, s), `${where}: ${formatTrustState(prev)} -> ${formatTrustState(s)}`);
        prev = s;
    }
    return prev;
}

describe("validateTrustState", () => {
    it("accepts a valid state and names the keys in every problem", () => {
        assert.deepEqual(validateTrustState(S(2, [1, 2])), []);
        assert.match(validateTrustState(S(3, [1, 2])).join(), /istio-ca:keyVersion 3 is not in istio-ca:trustedKeyVersions \[1,2\]/);
        assert.match(validateTrustState(S(1, [])).join(), /istio-ca:trustedKeyVersions must be a non-empty list/);
        assert.match(validateTrustState(S(1, [1, 1])).join(), /must not repeat/);
        assert.deepEqual(validateTrustState(S(0, [0, 1])), [], "generation 0 is istiod's own CA");
        assert.match(validateTrustState(S(-1, [-1])).join(), /istio-ca:keyVersion must be an integer >= 0/);
        assert.match(validateTrustState(S(1, [1.5, 1])).join(), /integers >= 0/);
        assert.match(validateTrustState(S(1, [1], 0)).join(), /istio-ca:intermediateVersion/);
    });
});

describe("formatTrustState / configCommands", () => {
    it("reads a lone trusted signer as 'unset' and lists several roots", () => {
        assert.equal(formatTrustState(S(2, [2])), "istio-ca:keyVersion: 2, istio-ca:trustedKeyVersions unset");
        assert.equal(formatTrustState(S(1, [2, 1])), "istio-ca:keyVersion: 1, istio-ca:trustedKeyVersions: [1, 2]");
    });

    it("emits only the commands for what differs", () => {
        assert.deepEqual(configCommands(S(1, [1]), S(1, [1, 2])), ["pulumi config set istio-ca:trustedKeyVersions '[1,2]'"]);
        assert.deepEqual(configCommands(S(1, [1, 2]), S(2, [1, 2])), ["pulumi config set istio-ca:keyVersion 2"]);
        assert.deepEqual(configCommands(S(2, [1, 2]), S(2, [2])), ["pulumi config rm istio-ca:trustedKeyVersions"]);
        assert.deepEqual(configCommands(S(1, [1]), S(1, [1], 3)), ["pulumi config set istio-ca:intermediateVersion 3"]);
        assert.deepEqual(configCommands(S(1, [2, 1]), S(1, [1, 2])), []);
    });
});

describe("classifyTransition: the phases", () => {
    it("initial: no previous deployment", () => {
        const t = classifyTransition(undefined, S(1, [1]));
        assert.equal(t.kind, "initial");
        assert.deepEqual(t.errors, []);
        const multi = classifyTransition(undefined, S(1, [1, 2]));
        assert.equal(multi.kind, "initial");
        assert.match(multi.description, /ISTIO_MULTIROOT_MESH=true/);
    });

    it("trust (phase 1): new root added, signer unchanged; next is phase 2 with the newest added root", () => {
        const t = classifyTransition(S(1, [1]), S(1, [1, 2]));
        assert.equal(t.kind, "trust");
        assert.equal(t.phase, 1);
        assert.deepEqual(t.addedTrust, [2]);
        assert.deepEqual(t.droppedTrust, []);
        assert.deepEqual(t.next, S(2, [1, 2]));
        assert.match(t.description, /next: set istio-ca:keyVersion: 2 \(phase 2 'sign'\)/);
        assert.match(t.description, /pulumi config set istio-ca:keyVersion 2/);
        const two = classifyTransition(S(1, [1]), S(1, [1, 2, 3]));
        assert.equal(two.kind, "trust");
        assert.equal(two.next?.keyVersion, 3);
    });

    it("sign (phase 2): signer moves to a root already trusted, old signer kept; next is phase 3", () => {
        const t = classifyTransition(S(1, [1, 2]), S(2, [1, 2]));
        assert.equal(t.kind, "sign");
        assert.equal(t.phase, 2);
        assert.equal(t.signerChanged, true);
        assert.deepEqual(t.next, S(2, [2]));
        assert.match(t.description, /pulumi config rm istio-ca:trustedKeyVersions/);
        assert.match(t.description, /phase 3 'complete'/);
    });

    it("complete (phase 3): older roots dropped, signer unchanged", () => {
        const t = classifyTransition(S(2, [1, 2]), S(2, [2]));
        assert.equal(t.kind, "complete");
        assert.equal(t.phase, 3);
        assert.deepEqual(t.droppedTrust, [1]);
        assert.equal(t.next, undefined);
        assert.match(t.description, /only root/);
        const partial = classifyTransition(S(3, [1, 2, 3]), S(3, [2, 3]));
        assert.equal(partial.kind, "complete");
        assert.match(partial.description, /still trusts 2 \+ 3; to finish: `pulumi config rm istio-ca:trustedKeyVersions`/);
    });

    it("rollbacks: sign back to the older root while both are trusted, then drop the newer root", () => {
        const back = classifyTransition(S(2, [1, 2]), S(1, [1, 2]));
        assert.equal(back.kind, "rollback-sign");
        assertQuiet(back, "rollback-sign");
        assert.deepEqual(back.next, S(1, [1]));
        const undo = classifyTransition(S(1, [1, 2]), S(1, [1]));
        assert.equal(undo.kind, "rollback-trust");
        assertQuiet(undo, "rollback-trust");
        assert.deepEqual(undo.droppedTrust, [2]);
    });

    it("intermediate: only intermediateVersion changes", () => {
        const t = classifyTransition(S(1, [1], 1), S(1, [1], 2));
        assert.equal(t.kind, "intermediate");
        assert.equal(t.intermediateChanged, true);
        assert.match(t.description, /1\.19\+/);
        // Combined with a phase: the phase decides the kind, the text mentions the intermediate.
        const both = classifyTransition(S(1, [1], 1), S(1, [1, 2], 2));
        assert.equal(both.kind, "trust");
        assert.equal(both.intermediateChanged, true);
        assert.match(both.description, /istio-ca:intermediateVersion 1 -> 2/);
    });

    it("unchanged, also in the middle of a rotation", () => {
        assert.equal(classifyTransition(S(1, [1]), S(1, [1])).kind, "unchanged");
        const mid = classifyTransition(S(1, [1, 2]), S(1, [2, 1]));
        assert.equal(mid.kind, "unchanged");
        assert.match(mid.description, /in progress/);
    });

    it("reads a previous state without its signer in the trusted list as trusting it (state from before trustedKeyVersions)", () => {
        const legacy = { keyVersion: 1, trustedKeyVersions: [] as number[], intermediateVersion: 1 };
        assert.equal(classifyTransition(legacy, S(1, [1, 2])).kind, "trust");
        assert.equal(classifyTransition(legacy, S(1, [1])).kind, "unchanged");
    });
});

describe("classifyTransition: the immediate swap (seed behaviour)", () => {
    it("a bare keyVersion bump is allowed with a loud warning that names the keys and the phased way", () => {
        const t = classifyTransition(S(1, [1]), S(2, [2]));
        assert.equal(t.kind, "immediate-swap");
        assert.deepEqual(t.errors, []);
        assert.equal(t.warnings.length, 1);
        const w = t.warnings[0];
        assert.match(w, /ROOT SWAP WITHOUT TRUST OVERLAP/);
        assert.match(w, /mTLS .* FAILS until every Istio-enabled workload has restarted/);
        // From the config as the user has it now (keyVersion 2) back to phase 1.
        assert.match(w, /\(1\) phase 1 'trust': istio-ca:keyVersion: 1, istio-ca:trustedKeyVersions: \[1, 2\] \(`pulumi config set istio-ca:keyVersion 1`, `pulumi config set istio-ca:trustedKeyVersions '\[1,2\]'`\)/);
        assert.match(w, /\(2\) phase 2 'sign'/);
        assert.match(w, /\(3\) phase 3 'complete'.*`pulumi config rm istio-ca:trustedKeyVersions`/);
        assert.deepEqual(t.phasedAlternative, nextPhases(S(1, [1]), 2));
        assert.deepEqual(t.droppedTrust, [1]);
    });

    it("a swap to a fresh root in the middle of a rotation says it abandons the rotation", () => {
        const t = classifyTransition(S(1, [1, 2]), S(3, [3]));
        assert.equal(t.kind, "immediate-swap");
        assert.match(t.warnings[0], /abandons the rotation in progress/);
    });
});

describe("classifyTransition: refused steps", () => {
    it("keyVersion outside trustedKeyVersions", () => {
        const t = classifyTransition(S(1, [1]), S(3, [1, 2]));
        assert.equal(t.kind, "invalid");
        assert.match(t.errors.join(), /istio-ca:keyVersion 3 is not in istio-ca:trustedKeyVersions/);
        assert.equal(classifyTransition(undefined, S(3, [1])).kind, "invalid");
    });

    it("skipping phase 2: trusting only the new root while workloads hold certificates under the old one", () => {
        const t = classifyTransition(S(1, [1, 2]), S(2, [2]));
        assert.equal(t.kind, "invalid");
        const e = t.errors.join(" ");
        assert.match(e, /istio-ca:keyVersion moves from 1 to 2 and istio-ca:trustedKeyVersions drops root 1/);
        assert.match(e, /\(1\) phase 2 'sign': istio-ca:keyVersion: 2, istio-ca:trustedKeyVersions: \[1, 2\]/);
        assert.match(e, /swap to a fresh root instead: istio-ca:keyVersion: 3/);
        assert.deepEqual(t.next, S(2, [1, 2]));
        assertQuietSequence(S(1, [1, 2]), t.phasedAlternative ?? [], "suggested order");
    });

    it("skipping phase 1: signing with a root the old bundle did not trust, with trustedKeyVersions set", () => {
        const t = classifyTransition(S(1, [1]), S(2, [1, 2]));
        assert.equal(t.kind, "invalid");
        assert.match(t.errors.join(), /skips phase 1 'trust'/);
        assert.deepEqual(t.next, S(1, [1, 2]));
    });

    it("adding and dropping roots in one step (not a subset/superset): refused with a split that works", () => {
        const prev = S(2, [1, 2]);
        const next = S(2, [2, 3]);
        const t = classifyTransition(prev, next);
        assert.equal(t.kind, "invalid");
        assert.match(t.errors.join(), /subset or superset/);
        const end = assertQuietSequence(prev, t.phasedAlternative ?? [], "split");
        assert.deepEqual(end, next);
    });

    it("changing the signer and the trust set in one step: refused with a split that works", () => {
        for (const [prev, next] of [
            [S(1, [1, 2, 3]), S(2, [1, 2])],
            [S(1, [1, 2]), S(2, [1, 2, 3])],
            [S(1, [1, 2, 3]), S(3, [1, 3], 2)],
        ] as const) {
            const t = classifyTransition(prev, next);
            assert.equal(t.kind, "invalid", formatTrustState(next));
            assert.match(t.errors.join(), /in the same step: each phase changes one thing/);
            const end = assertQuietSequence(prev, t.phasedAlternative ?? [], "split");
            assert.deepEqual(end, { ...next, trustedKeyVersions: [...next.trustedKeyVersions].sort((a, b) => a - b) });
        }
    });

    it("dropping a root that workloads are known to still use (context from the last verification)", () => {
        const prev = S(2, [1, 2]);
        const next = S(2, [2]);
        assert.equal(classifyTransition(prev, next).kind, "complete");
        const t = classifyTransition(prev, next, { workloadRootGenerations: [1, 2] });
        assert.equal(t.kind, "invalid");
        assert.match(t.errors.join(), /drops root 1, but workloads still hold certificates under it/);
        // Roots workloads use that are not dropped do not matter.
        assert.equal(classifyTransition(prev, next, { workloadRootGenerations: [2] }).kind, "complete");
    });

    it("every suggested order in every refusal over three generations is a sequence of quiet steps", () => {
        const gens = [1, 2, 3];
        const states: TrustState[] = [];
        for (let mask = 1; mask < 8; mask++) {
            const trusted = gens.filter((_, i) => mask & (1 << i));
            trusted.forEach((kv) => states.push(S(kv, trusted)));
        }
        let refusals = 0;
        for (const prev of states) {
            for (const next of states) {
                const t = classifyTransition(prev, next);
                assert.equal(t.errors.length > 0, t.kind === "invalid", `${formatTrustState(prev)} -> ${formatTrustState(next)}`);
                if (t.kind === "invalid") {
                    refusals++;
                    assert.ok(t.phasedAlternative && t.phasedAlternative.length > 0, `no suggestion for ${t.description}`);
                    assertQuietSequence(prev, t.phasedAlternative, t.description);
                }
            }
        }
        assert.ok(refusals > 10, `only ${refusals} refusals: enumeration too small`);
    });
});

describe("nextPhases", () => {
    it("from the steady state: trust, sign, complete", () => {
        assert.deepEqual(nextPhases(S(1, [1]), 2), [S(1, [1, 2]), S(2, [1, 2]), S(2, [2])]);
    });

    it("is resumable from every intermediate state", () => {
        assert.deepEqual(nextPhases(S(1, [1, 2]), 2), [S(2, [1, 2]), S(2, [2])]);
        assert.deepEqual(nextPhases(S(2, [1, 2]), 2), [S(2, [2])]);
        assert.deepEqual(nextPhases(S(2, [2]), 2), []);
    });

    it("rolls back the same way (target older than the signer)", () => {
        assert.deepEqual(nextPhases(S(2, [1, 2]), 1), [S(1, [1, 2]), S(1, [1])]);
        const kinds = [];
        let prev = S(2, [1, 2]);
        for (const s of nextPhases(prev, 1)) {
            kinds.push(classifyTransition(prev, s).kind);
            prev = s;
        }
        assert.deepEqual(kinds, ["rollback-sign", "rollback-trust"]);
    });

    it("keeps intermediateVersion, sorts, and does not mutate its input", () => {
        const current = S(1, [3, 1], 4);
        const copy = JSON.parse(JSON.stringify(current)) as TrustState;
        const steps = nextPhases(current, 2);
        assert.deepEqual(current, copy);
        assert.deepEqual(steps, [S(1, [1, 2, 3], 4), S(2, [1, 2, 3], 4), S(2, [2], 4)]);
    });

    it("each step of a full rotation classifies as trust, sign, complete", () => {
        let prev = S(5, [5], 2);
        const kinds = nextPhases(prev, 6).map((s) => {
            const k = classifyTransition(prev, s).kind;
            prev = s;
            return k;
        });
        assert.deepEqual(kinds, ["trust", "sign", "complete"]);
    });

    it("rejects an invalid current state or target", () => {
        assert.throws(() => nextPhases(S(3, [1, 2]), 2), /istio-ca:keyVersion 3 is not in istio-ca:trustedKeyVersions/);
        assert.throws(() => nextPhases(S(1, [1]), -1), /target root generation/);
    });
});
