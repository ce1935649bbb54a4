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
    workloadKeyVersions?: number[];
}

const KEY = "istio-ca:keyVersion";
const TRUSTED = "istio-ca:trustedKeyVersions";
const INTERMEDIATE = "istio-ca:intermediateVersion";

/** Requirements of multi-root trust on the Istio side (F2, Istio's own rotation test). */
export const MULTIROOT_REQUIREMENTS =
    "multi-root trust needs ISTIO_MULTIROOT_MESH=true on istiod and PROXY_CONFIG_XDS_AGENT=true in the proxies' proxyMetadata";

// ---------------------------------------------------------------------------------------------
// Small helpers

function sorted(xs: Iterable<number>): number[] {
    return [...new Set(xs)].sort((a, b) => a - b);
}

function sameSet(a: readonly number[], b: readonly number[]): boolean {
    const sa = sorted(a);
    const sb = sorted(b);
    return sa.length === sb.length && sa.every((x, i) => x === sb[i]);
}

function list(xs: readonly number[]): string {
    return xs.join(" + ");
}

/** Generation 0 is istiod's own self-signed CA (istio-ca-secret); 1, 2, … are roots this program manages. */
function isGeneration(n: unknown): n is number {
    return typeof n === "number" && Number.isInteger(n) && n >= 0;
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

/** `istio-ca:keyVersion: 2, istio-ca:trustedKeyVersions: [1, 2]`; a lone trusted root reads as "unset". */
export function formatTrustState(s: TrustState): string {
    const t = sorted(s.trustedKeyVersions);
    const trusted = t.length === 1 && t[0] === s.keyVersion ? `${TRUSTED} unset` : `${TRUSTED}: [${t.join(", ")}]`;
    return `${KEY}: ${s.keyVersion}, ${trusted}`;
}

/** The `pulumi config` commands that turn `from` into `to` (only what differs). */
export function configCommands(from: TrustState, to: TrustState): string[] {
    const cmds: string[] = [];
    if (from.keyVersion !== to.keyVersion) {
        cmds.push(`pulumi config set ${KEY} ${to.keyVersion}`);
    }
    const ft = sorted(from.trustedKeyVersions);
    const tt = sorted(to.trustedKeyVersions);
    if (!sameSet(ft, tt)) {
        cmds.push(
            tt.length === 1 && tt[0] === to.keyVersion
                ? `pulumi config rm ${TRUSTED}`
                : `pulumi config set ${TRUSTED} '[${tt.join(",")}]'`,
        );
    }
    if (from.intermediateVersion !== to.intermediateVersion) {
        cmds.push(`pulumi config set ${INTERMEDIATE} ${to.intermediateVersion}`);
    }
    return cmds;
}

function howTo(from: TrustState, to: TrustState): string {
    const cmds = configCommands(from, to);
    return `${formatTrustState(to)}${cmds.length > 0 ? ` (${cmds.map((c) => `\`${c}\``).join(", ")})` : ""}`;
}

function phaseName(from: TrustState, to: TrustState): string {
    if (from.keyVersion !== to.keyVersion) {
        return to.keyVersion > from.keyVersion ? "phase 2 'sign'" : "'rollback-sign'";
    }
    if (to.trustedKeyVersions.some((g) => !from.trustedKeyVersions.includes(g))) {
        return "phase 1 'trust'";
    }
    const dropped = from.trustedKeyVersions.filter((g) => !to.trustedKeyVersions.includes(g));
    if (dropped.length === 0) {
        return "'intermediate'";
    }
    return dropped.every((g) => g > to.keyVersion) ? "'rollback-trust'" : "phase 3 'complete'";
}

/**
 * "(1) phase 1 'trust': <config> (`commands`); then (2) ...". Phase names compare each step with the
 * one before (the first with the deployed state); the commands of the first step start from the
 * config as the user has it now.
 */
function planText(deployed: TrustState, steps: TrustState[], configNow: TrustState = deployed): string {
    let prev = deployed;
    let cfg = configNow;
    const parts = steps.map((s, i) => {
        const text = `(${i + 1}) ${phaseName(prev, s)}: ${howTo(cfg, s)}`;
        prev = s;
        cfg = s;
        return text;
    });
    return parts.join("; then ");
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
 *     knows better (context.workloadKeyVersions), dropping a root that workloads still use is an error.
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
    const base = {
        warnings: [] as string[],
        errors: [] as string[],
        addedTrust: [] as number[],
        droppedTrust: [] as number[],
        signerChanged: false,
        intermediateChanged: false,
    };
    if (nextErrors.length > 0) {
        return { ...base, kind: "invalid", errors: nextErrors, description: `The new config is not valid: ${nextErrors.join(" ")}` };
    }
    const n = normalize(next);

    if (previous === undefined) {
        const multi = n.trustedKeyVersions.length > 1;
        return {
            ...base,
            kind: "initial",
            addedTrust: n.trustedKeyVersions,
            description:
                `First deployment: root ${n.keyVersion} signs through intermediate ${n.intermediateVersion}; ` +
                `root-cert.pem trusts ${list(n.trustedKeyVersions)}.` +
                (multi ? ` ${MULTIROOT_REQUIREMENTS}.` : ""),
        };
    }

    // A previous state missing its own signer from the trusted list (e.g. written before
    // trustedKeyVersions existed) is read as trusting it: that is what its root-cert.pem did.
    const p: TrustState = {
        keyVersion: previous.keyVersion,
        trustedKeyVersions: sorted([...(previous.trustedKeyVersions ?? []), previous.keyVersion]),
        intermediateVersion: previous.intermediateVersion,
    };
    const added = n.trustedKeyVersions.filter((g) => !p.trustedKeyVersions.includes(g));
    const dropped = p.trustedKeyVersions.filter((g) => !n.trustedKeyVersions.includes(g));
    const signerChanged = p.keyVersion !== n.keyVersion;
    const intermediateChanged = p.intermediateVersion !== n.intermediateVersion;
    const facts = { ...base, addedTrust: added, droppedTrust: dropped, signerChanged, intermediateChanged };
    const interNote = intermediateChanged
        ? ` The intermediate also changes (${INTERMEDIATE} ${p.intermediateVersion} -> ${n.intermediateVersion}).`
        : "";
    const from = `${formatTrustState(p)}`;
    const to = `${formatTrustState(n)}`;
    const fail = (errors: string[], phasedAlternative?: TrustState[]): Transition => ({
        ...facts,
        kind: "invalid",
        errors,
        phasedAlternative,
        next: phasedAlternative?.[0],
        description: `Refused: ${from} -> ${to}. ${errors.join(" ")}`,
    });

    // R3 (context): never drop a root that live workload certificates are known to chain to.
    // Not applied to R6, whose whole point is the (warned) swap away from the root workloads use.
    const inUse = sorted(context.workloadKeyVersions ?? []);
    const droppedInUse = dropped.filter((g) => inUse.includes(g));
    const inUseError = (): string =>
        `${TRUSTED} drops root ${list(droppedInUse)}, but workloads still hold certificates under it ` +
        `(seen: roots ${list(inUse)}); mTLS with them would fail. Wait until every workload was re-issued under ` +
        `root ${p.keyVersion} (the verification after the previous step), then apply this again.`;

    if (!signerChanged) {
        // R1: pure addition or pure removal.
        if (added.length > 0 && dropped.length > 0) {
            const split: TrustState[] = [
                { ...p, trustedKeyVersions: p.trustedKeyVersions.filter((g) => !dropped.includes(g)), intermediateVersion: n.intermediateVersion },
                { ...n },
            ];
            return fail(
                [
                    `${TRUSTED} adds root ${list(added)} and drops root ${list(dropped)} in one step: istiod takes a new ` +
                        `root-cert.pem live only when it is a subset or superset of the old one. Split it: ` +
                        `${planText(p, split, n)}.`,
                ],
                split,
            );
        }
        if (added.length > 0) {
            // R2: phase 1.
            const target = Math.max(...added);
            const after = { ...n, keyVersion: target };
            return {
                ...facts,
                kind: "trust",
                phase: 1,
                next: after,
                description:
                    `Phase 1 'trust': root-cert.pem now trusts ${list(n.trustedKeyVersions)} (new: ${list(added)}); ` +
                    `signing stays with root ${n.keyVersion}, no workload certificate changes.${interNote} ` +
                    `Once every proxy trusts the new bundle, next: set ${KEY}: ${target} (phase 2 'sign'): ` +
                    `\`${configCommands(n, after).join("`, `")}\`. ${MULTIROOT_REQUIREMENTS}.`,
            };
        }
        if (dropped.length > 0) {
            if (droppedInUse.length > 0) {
                return fail([inUseError()]);
            }
            // R3: phase 3, or the undo of phase 1.
            const rollback = dropped.every((g) => g > n.keyVersion);
            const remaining = n.trustedKeyVersions.length > 1
                ? ` root-cert.pem still trusts ${list(n.trustedKeyVersions)}; to finish: \`${configCommands(n, { ...n, trustedKeyVersions: [n.keyVersion] }).join("`, `")}\`.`
                : ` Root ${n.keyVersion} is now the only root.`;
            return {
                ...facts,
                kind: rollback ? "rollback-trust" : "complete",
                phase: rollback ? undefined : 3,
                description: rollback
                    ? `Rollback of phase 1: root-cert.pem stops trusting root ${list(dropped)}, which never signed in the ` +
                      `previous state; root ${n.keyVersion} keeps signing.${interNote}${remaining}`
                    : `Phase 3 'complete': root-cert.pem stops trusting root ${list(dropped)}; root ${n.keyVersion} ` +
                      `already signed in the previous state, so every re-issued workload certificate chains to it.${interNote}${remaining}`,
            };
        }
        if (intermediateChanged) {
            // R9.
            return {
                ...facts,
                kind: "intermediate",
                description:
                    `Intermediate rotation: ${INTERMEDIATE} ${p.intermediateVersion} -> ${n.intermediateVersion}, a new ` +
                    `intermediate under the same root ${n.keyVersion}; root-cert.pem is unchanged, so old and new ` +
                    `workload certificates stay valid. istiod (1.19+) reloads it without a restart; workloads pick up ` +
                    `certificates from it as they re-sign.`,
            };
        }
        return {
            ...facts,
            kind: "unchanged",
            description:
                `No change of the CA: root ${n.keyVersion} signs, root-cert.pem trusts ${list(n.trustedKeyVersions)}.` +
                (n.trustedKeyVersions.length > 1 ? " (A root rotation is in progress: several roots are trusted.)" : ""),
        };
    }

    // The signer changes.
    const newSignerWasTrusted = p.trustedKeyVersions.includes(n.keyVersion);
    const oldSignerStillTrusted = n.trustedKeyVersions.includes(p.keyVersion);
    const phased = nextPhases({ ...p, intermediateVersion: n.intermediateVersion }, n.keyVersion);

    if (!newSignerWasTrusted) {
        const bareBump = sameSet(n.trustedKeyVersions, [n.keyVersion]);
        if (!bareBump) {
            // R7: skips phase 1.
            return fail(
                [
                    `${KEY} ${n.keyVersion} signs, but root ${n.keyVersion} was not in the previous root-cert.pem ` +
                        `(trusted: ${list(p.trustedKeyVersions)}): workloads re-issued under it would be rejected by every proxy that ` +
                        `still holds the old bundle. This skips phase 1 'trust'. Zero-downtime order: ${planText(p, phased, n)}.`,
                ],
                phased,
            );
        }
        // R6: the seed's swap, allowed with a loud warning.
        const midRotation = p.trustedKeyVersions.length > 1
            ? ` It also abandons the rotation in progress (root-cert.pem trusted ${list(p.trustedKeyVersions)}).`
            : "";
        const warning =
            `ROOT SWAP WITHOUT TRUST OVERLAP: ${KEY} ${p.keyVersion} -> ${n.keyVersion} with ${TRUSTED} unset replaces the ` +
            `trusted root at once (the manual procedure's swap). mTLS between workloads still holding certificates under ` +
            `root ${p.keyVersion} and workloads re-issued under root ${n.keyVersion} FAILS until every Istio-enabled ` +
            `workload has restarted; istiod must restart too (the new root-cert.pem is neither a subset nor a superset ` +
            `of the old one).${midRotation} To rotate without an outage instead, apply one \`pulumi up\` each: ` +
            `${planText(p, phased, n)}.`;
        return {
            ...facts,
            kind: "immediate-swap",
            warnings: [warning],
            phasedAlternative: phased,
            description:
                `Immediate root swap: root ${n.keyVersion} signs and is the only trusted root; root ` +
                `${list(dropped)} is no longer trusted. istiod and every Istio-enabled workload restart.`,
        };
    }

    if (!oldSignerStillTrusted) {
        // R5: skips phase 2 (or does phases 2 and 3 at once).
        return fail(
            [
                `${KEY} moves from ${p.keyVersion} to ${n.keyVersion} and ${TRUSTED} drops root ${p.keyVersion} in the same ` +
                    `step: workloads still hold certificates under root ${p.keyVersion} until they are re-issued, and ` +
                    `nobody would trust them. Do phase 2 'sign' first and wait for the verification: ${planText(p, phased, n)}. ` +
                    `(If root ${p.keyVersion} is compromised and an outage is accepted, swap to a fresh root instead: ` +
                    `${KEY}: ${Math.max(...p.trustedKeyVersions, n.keyVersion) + 1} with ${TRUSTED} unset.)`,
            ],
            phased,
        );
    }

    if (added.length > 0 || dropped.length > 0) {
        // R8: signer and trust set together.
        if (droppedInUse.length > 0) {
            return fail([inUseError()], phased);
        }
        // Additions first (phase 1), then the signer (phase 2), then drops (phase 3): each a valid step.
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
        return fail(
            [
                `${KEY} moves from ${p.keyVersion} to ${n.keyVersion} and ${TRUSTED} changes (` +
                    [added.length ? `adds ${list(added)}` : "", dropped.length ? `drops ${list(dropped)}` : ""].filter(Boolean).join(", ") +
                    `) in the same step: each phase changes one thing, with the verification in between. ` +
                    `Split it: ${planText(p, split, n)}.`,
            ],
            split,
        );
    }

    // R4: phase 2 or its undo.
    const forward = n.keyVersion > p.keyVersion;
    const done: TrustState = { ...n, trustedKeyVersions: [n.keyVersion] };
    return {
        ...facts,
        kind: forward ? "sign" : "rollback-sign",
        phase: forward ? 2 : undefined,
        next: done,
        description:
            (forward
                ? `Phase 2 'sign': the intermediate under root ${n.keyVersion} signs; `
                : `Rollback of phase 2: signing moves back to the intermediate under root ${n.keyVersion}; `) +
            `root-cert.pem still trusts ${list(n.trustedKeyVersions)} (its bytes change, so every proxy fetches a new ` +
            `certificate), and certificates under root ${p.keyVersion} stay valid meanwhile.${interNote} Once every ` +
            `workload's certificate was re-issued under root ${n.keyVersion}, next: ` +
            `\`${configCommands(n, done).join("`, `")}\` (${forward ? "phase 3 'complete'" : "'rollback-trust'"}). ` +
            `${MULTIROOT_REQUIREMENTS}.`,
    };
}
