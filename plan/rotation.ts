// Which kind of CA change one `pulumi up` makes, whether it is safe, and which configs a driver
// applies to rotate the root without an outage. Pure functions on the three config values that
// decide what `cacerts` holds; the program compares the previous deployment's values (stack state)
// with the new config, prints the texts in `pulumi preview`/`up` and refuses errors.
//
// The facts these rules rest on (from /work/shared/DESIGN.md, "Facts about Istio"):
//
//   F1 istiod checks that the chain verifies against root-cert.pem: the signing root must be trusted.
//   F2 A changed root-cert.pem is accepted live only with ISTIO_MULTIROOT_MESH=true and when the old
//      and new bundles are a subset or superset of each other.
//   F3 Zero-downtime root rotation is Istio's own four-state protocol, one change per step:
//        0 sign A / trust A  ->  1 sign A / trust A+B  ->  2 sign B / trust A+B(+B)  ->  3 sign B / trust B
//   F4 Between phases, wait until every workload's certificate was re-issued (and each proxy holds
//      the new bundle) before going on: the gate after step k is what makes step k+1 safe.
//   F5 The manual procedure (the seed) swaps the root at once and restarts everything; mTLS between
//      old and new workloads breaks until every workload restarted ("Root, with an outage").
//   F6 istiod reloads a changed intermediate without a restart since 1.19 ("Intermediate only").
//
// The model behind "safe": during a step from state P to state N, the live workload certificates
// are those issued under P's signing root (every workload, once the gate after P passed: F4) and
// those issued under N's signing root; the live trust bundles are root-cert.pem of P and of N
// (proxies pick the new one up one by one). A step is safe when every live certificate verifies
// against every live bundle. tests/unit/rotationCrypto.test.ts checks exactly that with openssl for
// every transition between the states over three root generations.

// Generation 0 is istiod's own self-signed CA (istio-ca-secret): a mesh that never had cacerts is
// in state {sign 0, trust [0]}, and moving it to a plugged-in root is the rotation 0 -> 1.

import { isGeneration, sameSet, sorted } from "./generations";
import { describe, immediateSwapWarning, INTERMEDIATE, KEY, refusal, StepFacts, TRUSTED } from "./rotationText";

export { configCommands, formatTrustState, MULTIROOT_REQUIREMENTS } from "./rotationText";

/** The config values that decide what `cacerts` holds. */
export interface TrustState {
    /** `istio-ca:keyVersion`: the root generation whose intermediate signs. */
    keyVersion: number;
    /** `istio-ca:trustedKeyVersions`: the root generations root-cert.pem carries (default [keyVersion]). */
    trustedKeyVersions: number[];
    /** `istio-ca:intermediateVersion`. */
    intermediateVersion: number;
}

export type TransitionKind =
    /** No previous deployment. */
    | "initial"
    /** Nothing that `cacerts` depends on changed. */
    | "unchanged"
    /** Only istio-ca:intermediateVersion changed: a new intermediate under the same root (F6). */
    | "intermediate"
    /** Phase 1: roots added to root-cert.pem, signing unchanged. */
    | "trust"
    /** Phase 2: signing moves to a newer root that was already trusted; the old signer stays trusted. */
    | "sign"
    /** Phase 3: roots older than the (unchanged) signer dropped from root-cert.pem. */
    | "complete"
    /** Undo of phase 2: signing moves back to an older root that is still trusted; the newer stays trusted. */
    | "rollback-sign"
    /** Undo of phase 1: roots newer than the (unchanged) signer dropped from root-cert.pem. */
    | "rollback-trust"
    /** A bare keyVersion bump to a root nobody trusted before (the seed's swap, F5): allowed, warned. */
    | "immediate-swap"
    /** Refused: see `errors`. */
    | "invalid";

export interface Transition {
    kind: TransitionKind;
    /** Loud texts for preview and up; the step is allowed. */
    warnings: string[];
    /** Reasons to refuse the step; non-empty exactly when kind is "invalid". */
    errors: string[];
    /** One paragraph for the user: what this step does and what to do next. */
    description: string;
    /** The zero-downtime phase this step is (1 trust, 2 sign, 3 complete). */
    phase?: 1 | 2 | 3;
    /** Root generations root-cert.pem gains / loses. */
    addedTrust: number[];
    droppedTrust: number[];
    signerChanged: boolean;
    intermediateChanged: boolean;
    /** The config to apply next to finish what this step started, if any. */
    next?: TrustState;
    /** For "invalid" and "immediate-swap": the zero-downtime way from the previous state to this signer. */
    phasedAlternative?: TrustState[];
}

export interface TransitionContext {
    /**
     * Root generations that live workload certificates are known to chain to (e.g. what the last
     * verification saw in `istioctl proxy-config secret`). Dropping trust in one of them is an error.
     */
    workloadRootGenerations?: number[];
}

/** Problems of one state on its own (F1 and the shape config.ts guarantees). */
export function validateTrustState(s: TrustState, what = "config"): string[] {
    const errors: string[] = [];
    if (!isGeneration(s.keyVersion)) {
        errors.push(`${what}: ${KEY} must be an integer >= 0, got ${JSON.stringify(s.keyVersion)}`);
    }
    if (!isGeneration(s.intermediateVersion) || s.intermediateVersion < 1) {
        errors.push(`${what}: ${INTERMEDIATE} must be an integer >= 1, got ${JSON.stringify(s.intermediateVersion)}`);
    }
    const t = s.trustedKeyVersions;
    if (!Array.isArray(t) || t.length === 0 || !t.every(isGeneration)) {
        errors.push(`${what}: ${TRUSTED} must be a non-empty list of integers >= 0, got ${JSON.stringify(t)}`);
    } else if (new Set(t).size !== t.length) {
        errors.push(`${what}: ${TRUSTED} must not repeat a version, got ${JSON.stringify(t)}`);
    } else if (isGeneration(s.keyVersion) && !t.includes(s.keyVersion)) {
        // F1: istiod refuses a chain that does not verify against root-cert.pem.
        errors.push(
            `${what}: ${KEY} ${s.keyVersion} is not in ${TRUSTED} ${JSON.stringify(t)}: root-cert.pem must trust the root that signs. ` +
                `Add ${s.keyVersion} to ${TRUSTED} (or unset it to trust only ${s.keyVersion}).`,
        );
    }
    return errors;
}

function normalize(s: TrustState): TrustState {
    return { keyVersion: s.keyVersion, trustedKeyVersions: sorted(s.trustedKeyVersions), intermediateVersion: s.intermediateVersion };
}

// ---------------------------------------------------------------------------------------------
// nextPhases

/**
 * The configs a driver applies, one `pulumi up` each with the verification gate (F4) between them,
 * to make root `target` the only signing and trusted root without an outage (F3). Resumable: from a
 * state in the middle of a rotation it returns only the remaining steps; from the goal it returns
 * []. Each step changes one thing, and each step is classified without errors or warnings by
 * classifyTransition (see tests). intermediateVersion is kept.
 *
 *  1 "trust":    target not trusted yet   -> add it to root-cert.pem, signer unchanged
 *  2 "sign":     target not signing yet   -> sign with target, keep trusting everything
 *  3 "complete": others still trusted     -> trust only target (trustedKeyVersions unset)
 */
export function nextPhases(current: TrustState, target: number): TrustState[] {
    const problems = validateTrustState(current, "current state");
    if (!isGeneration(target)) {
        problems.push(`target root generation must be an integer >= 0, got ${JSON.stringify(target)}`);
    }
    if (problems.length > 0) {
        throw new Error(problems.join("; "));
    }
    const steps: TrustState[] = [];
    let s = normalize(current);
    if (!s.trustedKeyVersions.includes(target)) {
        s = { ...s, trustedKeyVersions: sorted([...s.trustedKeyVersions, target]) };
        steps.push(s);
    }
    if (s.keyVersion !== target) {
        s = { ...s, keyVersion: target };
        steps.push(s);
    }
    if (!sameSet(s.trustedKeyVersions, [target])) {
        s = { ...s, trustedKeyVersions: [target] };
        steps.push(s);
    }
    return steps;
}

// ---------------------------------------------------------------------------------------------
// classifyTransition

/**
 * Classifies the step from the previous deployment's state to the new config.
 *
 * Rules (F-numbers: the facts at the top of this file):
 *  R0 The new state itself must be valid; keyVersion must be trusted (F1).
 *  R1 A trust change is a pure addition or a pure removal: root-cert.pem must stay a subset or
 *     superset of the previous one, or istiod does not take it live (F2).
 *  R2 Signer unchanged, roots added: "trust" (phase 1). Safe: every live certificate chains to the
 *     unchanged signer, which both bundles trust.
 *  R3 Signer unchanged, roots dropped: "complete" (phase 3) when the dropped roots are older than
 *     the signer, "rollback-trust" when newer. Safe because the dropped roots did not sign in the
 *     previous state, and after the gate (F4) no live certificate chains to them. When the caller
 *     knows better (context.workloadRootGenerations), dropping a root that workloads still use is an error.
 *  R4 Signer changes to a root that was trusted before and the old signer stays trusted, trust set
 *     unchanged: "sign" (phase 2; "rollback-sign" when moving back to an older root). Safe: old and
 *     new certificates chain to roots that both bundles carry.
 *  R5 Signer changes and the old signer is no longer trusted, while the new signer was trusted
 *     before: the phases were mid-way and this skips phase 2 (or does 2 and 3 at once) - workloads
 *     still hold certificates under the old root that nobody trusts any more (F3, F4): error.
 *  R6 Signer changes to a root nobody trusted before with trustedKeyVersions unset (a bare keyVersion
 *     bump): the seed's immediate swap (F5). Allowed, with a loud warning and the phased alternative.
 *  R7 Signer changes to a root nobody trusted before while trustedKeyVersions lists more roots: an
 *     attempt at the phased way that skips phase 1 - certificates under the new root reach proxies
 *     that only trust the old bundle: error.
 *  R8 Signer and trust set change in one step (other than R6): there is no gate between the two
 *     changes (F4), so the step is not one of the phases: error, with the split.
 *  R9 intermediateVersion may change with any step; on its own it is "intermediate" (F6): no
 *     change of trust, no outage, istiod reloads it.
 */
export function classifyTransition(previous: TrustState | undefined, next: TrustState, context: TransitionContext = {}): Transition {
    const nextErrors = validateTrustState(next, "new config");
    if (nextErrors.length > 0) {
        return { ...NO_CHANGE, kind: "invalid", errors: nextErrors, description: describe.invalid(nextErrors) };
    }
    const n = normalize(next);
    if (previous === undefined) {
        return { ...NO_CHANGE, kind: "initial", addedTrust: n.trustedKeyVersions, description: describe.initial(n) };
    }
    // A previous state missing its own signer from the trusted list (e.g. written before
    // trustedKeyVersions existed) is read as trusting it: that is what its root-cert.pem did.
    const p: TrustState = {
        keyVersion: previous.keyVersion,
        trustedKeyVersions: sorted([...(previous.trustedKeyVersions ?? []), previous.keyVersion]),
        intermediateVersion: previous.intermediateVersion,
    };
    const f: StepFacts = {
        p,
        n,
        added: n.trustedKeyVersions.filter((g) => !p.trustedKeyVersions.includes(g)),
        dropped: p.trustedKeyVersions.filter((g) => !n.trustedKeyVersions.includes(g)),
        intermediateChanged: p.intermediateVersion !== n.intermediateVersion,
    };
    // R3 (context): never drop a root that live workload certificates are known to chain to.
    // Not applied to R6, whose whole point is the (warned) swap away from the root workloads use.
    const inUse = sorted(context.workloadRootGenerations ?? []);
    const droppedInUse = f.dropped.filter((g) => inUse.includes(g));
    const inUseError = droppedInUse.length > 0 ? refusal.dropsRootInUse(f, droppedInUse, inUse) : undefined;
    return p.keyVersion === n.keyVersion ? sameSigner(f, inUseError) : newSigner(f, inUseError);
}

const NO_CHANGE = { warnings: [] as string[], errors: [] as string[], addedTrust: [] as number[], droppedTrust: [] as number[], signerChanged: false, intermediateChanged: false };

/** What every transition of the step p -> n carries, whatever its kind. */
function factsOf(f: StepFacts): Omit<Transition, "kind" | "description"> {
    return { ...NO_CHANGE, addedTrust: f.added, droppedTrust: f.dropped, signerChanged: f.p.keyVersion !== f.n.keyVersion, intermediateChanged: f.intermediateChanged };
}

function refuse(f: StepFacts, errors: string[], phasedAlternative?: TrustState[]): Transition {
    return { ...factsOf(f), kind: "invalid", errors, phasedAlternative, next: phasedAlternative?.[0], description: describe.refused(f, errors) };
}

/** R1, R2, R3, R9: the signer stays; roots are added, or dropped, or only the intermediate changes. */
function sameSigner(f: StepFacts, inUseError: string | undefined): Transition {
    const { p, n, added, dropped } = f;
    if (added.length > 0 && dropped.length > 0) {
        const split: TrustState[] = [
            { ...p, trustedKeyVersions: p.trustedKeyVersions.filter((g) => !dropped.includes(g)), intermediateVersion: n.intermediateVersion },
            { ...n },
        ];
        return refuse(f, [refusal.addAndDrop(f, split)], split);
    }
    if (added.length > 0) {
        const target = Math.max(...added);
        const after = { ...n, keyVersion: target };
        return { ...factsOf(f), kind: "trust", phase: 1, next: after, description: describe.trust(f, target, after) };
    }
    if (dropped.length > 0) {
        if (inUseError) {
            return refuse(f, [inUseError]);
        }
        const rollback = dropped.every((g) => g > n.keyVersion);
        return { ...factsOf(f), kind: rollback ? "rollback-trust" : "complete", phase: rollback ? undefined : 3, description: describe.dropTrust(f, rollback) };
    }
    if (f.intermediateChanged) {
        return { ...factsOf(f), kind: "intermediate", description: describe.intermediate(f) };
    }
    return { ...factsOf(f), kind: "unchanged", description: describe.unchanged(n) };
}

/** R4 to R8: the signer changes. */
function newSigner(f: StepFacts, inUseError: string | undefined): Transition {
    const { p, n, added, dropped } = f;
    const phased = nextPhases({ ...p, intermediateVersion: n.intermediateVersion }, n.keyVersion);
    if (!p.trustedKeyVersions.includes(n.keyVersion)) {
        if (!sameSet(n.trustedKeyVersions, [n.keyVersion])) {
            return refuse(f, [refusal.skipsTrust(f, phased)], phased);
        }
        return { ...factsOf(f), kind: "immediate-swap", warnings: [immediateSwapWarning(f, phased)], phasedAlternative: phased, description: describe.immediateSwap(f) };
    }
    if (!n.trustedKeyVersions.includes(p.keyVersion)) {
        return refuse(f, [refusal.skipsSign(f, phased)], phased);
    }
    if (added.length > 0 || dropped.length > 0) {
        if (inUseError) {
            return refuse(f, [inUseError], phased);
        }
        return refuse(f, [refusal.signerAndTrust(f, signerAndTrustSplit(f))], signerAndTrustSplit(f));
    }
    const forward = n.keyVersion > p.keyVersion;
    const done: TrustState = { ...n, trustedKeyVersions: [n.keyVersion] };
    return { ...factsOf(f), kind: forward ? "sign" : "rollback-sign", phase: forward ? 2 : undefined, next: done, description: describe.sign(f, forward, done) };
}

/** R8's split: additions first (phase 1), then the signer (phase 2), then drops (phase 3), each a valid step. */
function signerAndTrustSplit({ p, n, added, dropped }: StepFacts): TrustState[] {
    const split: TrustState[] = [];
    let cur: TrustState = { ...p, intermediateVersion: n.intermediateVersion };
    if (added.length > 0) {
        cur = { ...cur, trustedKeyVersions: sorted([...cur.trustedKeyVersions, ...added]) };
        split.push(cur);
    }
    cur = { ...cur, keyVersion: n.keyVersion };
    split.push(cur);
    if (dropped.length > 0) {
        split.push({ ...n });
    }
    return split;
}
