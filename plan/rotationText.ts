// The texts of rotation decisions (plan/rotation.ts decides; this says it): what each kind of
// change does, why a step is refused, and the exact `pulumi config` commands of the way forward.
import type { TrustState } from "./rotation";
import { sameSet, sorted } from "./generations";

export const KEY = "istio-ca:keyVersion";
export const TRUSTED = "istio-ca:trustedKeyVersions";
export const INTERMEDIATE = "istio-ca:intermediateVersion";

/** Requirements of multi-root trust on the Istio side (F2, Istio's own rotation test). */
export const MULTIROOT_REQUIREMENTS =
    "multi-root trust needs ISTIO_MULTIROOT_MESH=true on istiod and PROXY_CONFIG_XDS_AGENT=true in the proxies' proxyMetadata";

export function list(xs: readonly number[]): string {
    return xs.join(" + ");
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
export function planText(deployed: TrustState, steps: TrustState[], configNow: TrustState = deployed): string {
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
// What classifyTransition says, kind by kind (R-numbers: its rules)

/** previous (p) and new (n) state of a step, and what differs between them. */
export interface StepFacts {
    p: TrustState;
    n: TrustState;
    added: number[];
    dropped: number[];
    intermediateChanged: boolean;
}

export const describe = {
    initial: (n: TrustState): string =>
        `First deployment: root ${n.keyVersion} signs through intermediate ${n.intermediateVersion}; ` +
        `root-cert.pem trusts ${list(n.trustedKeyVersions)}.` +
        (n.trustedKeyVersions.length > 1 ? ` ${MULTIROOT_REQUIREMENTS}.` : ""),

    invalid: (errors: string[]): string => `The new config is not valid: ${errors.join(" ")}`,

    refused: ({ p, n }: StepFacts, errors: string[]): string => `Refused: ${formatTrustState(p)} -> ${formatTrustState(n)}. ${errors.join(" ")}`,

    /** R2: phase 1. */
    trust: (f: StepFacts, target: number, after: TrustState): string =>
        `Phase 1 'trust': root-cert.pem now trusts ${list(f.n.trustedKeyVersions)} (new: ${list(f.added)}); ` +
        `signing stays with root ${f.n.keyVersion}, no workload certificate changes.${interNote(f)} ` +
        `Once every proxy trusts the new bundle, next: set ${KEY}: ${target} (phase 2 'sign'): ` +
        `\`${configCommands(f.n, after).join("`, `")}\`. ${MULTIROOT_REQUIREMENTS}.`,

    /** R3: phase 3, or the undo of phase 1. */
    dropTrust: (f: StepFacts, rollback: boolean): string => {
        const { n, dropped } = f;
        const remaining = n.trustedKeyVersions.length > 1
            ? ` root-cert.pem still trusts ${list(n.trustedKeyVersions)}; to finish: \`${configCommands(n, { ...n, trustedKeyVersions: [n.keyVersion] }).join("`, `")}\`.`
            : ` Root ${n.keyVersion} is now the only root.`;
        return rollback
            ? `Rollback of phase 1: root-cert.pem stops trusting root ${list(dropped)}, which never signed in the ` +
              `previous state; root ${n.keyVersion} keeps signing.${interNote(f)}${remaining}`
            : `Phase 3 'complete': root-cert.pem stops trusting root ${list(dropped)}; root ${n.keyVersion} ` +
              `already signed in the previous state, so every re-issued workload certificate chains to it.${interNote(f)}${remaining}`;
    },

    /** R9. */
    intermediate: ({ p, n }: StepFacts): string =>
        `Intermediate rotation: ${INTERMEDIATE} ${p.intermediateVersion} -> ${n.intermediateVersion}, a new ` +
        `intermediate under the same root ${n.keyVersion}; root-cert.pem is unchanged, so old and new ` +
        `workload certificates stay valid. istiod (1.19+) reloads it without a restart; workloads pick up ` +
        `certificates from it as they re-sign.`,

    unchanged: (n: TrustState): string =>
        `No change of the CA: root ${n.keyVersion} signs, root-cert.pem trusts ${list(n.trustedKeyVersions)}.` +
        (n.trustedKeyVersions.length > 1 ? " (A root rotation is in progress: several roots are trusted.)" : ""),

    /** R6: the seed's swap. */
    immediateSwap: ({ n, dropped }: StepFacts): string =>
        `Immediate root swap: root ${n.keyVersion} signs and is the only trusted root; root ` +
        `${list(dropped)} is no longer trusted. istiod and every Istio-enabled workload restart.`,

    /** R4: phase 2 or its undo. */
    sign: (f: StepFacts, forward: boolean, done: TrustState): string => {
        const { p, n } = f;
        return (forward
            ? `Phase 2 'sign': the intermediate under root ${n.keyVersion} signs; `
            : `Rollback of phase 2: signing moves back to the intermediate under root ${n.keyVersion}; `) +
            `root-cert.pem still trusts ${list(n.trustedKeyVersions)} (its bytes change, so every proxy fetches a new ` +
            `certificate), and certificates under root ${p.keyVersion} stay valid meanwhile.${interNote(f)} Once every ` +
            `workload's certificate was re-issued under root ${n.keyVersion}, next: ` +
            `\`${configCommands(n, done).join("`, `")}\` (${forward ? "phase 3 'complete'" : "'rollback-trust'"}). ` +
            `${MULTIROOT_REQUIREMENTS}.`;
    },
};

function interNote({ p, n, intermediateChanged }: StepFacts): string {
    return intermediateChanged ? ` The intermediate also changes (${INTERMEDIATE} ${p.intermediateVersion} -> ${n.intermediateVersion}).` : "";
}

/** Why a step is refused, and the split that does it safely. */
export const refusal = {
    /** R1. */
    addAndDrop: ({ p, n, added, dropped }: StepFacts, split: TrustState[]): string =>
        `${TRUSTED} adds root ${list(added)} and drops root ${list(dropped)} in one step: istiod takes a new ` +
        `root-cert.pem live only when it is a subset or superset of the old one. Split it: ` +
        `${planText(p, split, n)}.`,

    /** R3 with context: a dropped root still in use. */
    dropsRootInUse: ({ p }: StepFacts, droppedInUse: number[], inUse: number[]): string =>
        `${TRUSTED} drops root ${list(droppedInUse)}, but workloads still hold certificates under it ` +
        `(seen: roots ${list(inUse)}); mTLS with them would fail. Wait until every workload was re-issued under ` +
        `root ${p.keyVersion} (the verification after the previous step), then apply this again.`,

    /** R7. */
    skipsTrust: ({ p, n }: StepFacts, phased: TrustState[]): string =>
        `${KEY} ${n.keyVersion} signs, but root ${n.keyVersion} was not in the previous root-cert.pem ` +
        `(trusted: ${list(p.trustedKeyVersions)}): workloads re-issued under it would be rejected by every proxy that ` +
        `still holds the old bundle. This skips phase 1 'trust'. Zero-downtime order: ${planText(p, phased, n)}.`,

    /** R5. */
    skipsSign: ({ p, n }: StepFacts, phased: TrustState[]): string =>
        `${KEY} moves from ${p.keyVersion} to ${n.keyVersion} and ${TRUSTED} drops root ${p.keyVersion} in the same ` +
        `step: workloads still hold certificates under root ${p.keyVersion} until they are re-issued, and ` +
        `nobody would trust them. Do phase 2 'sign' first and wait for the verification: ${planText(p, phased, n)}. ` +
        `(If root ${p.keyVersion} is compromised and an outage is accepted, swap to a fresh root instead: ` +
        `${KEY}: ${Math.max(...p.trustedKeyVersions, n.keyVersion) + 1} with ${TRUSTED} unset.)`,

    /** R8. */
    signerAndTrust: ({ p, n, added, dropped }: StepFacts, split: TrustState[]): string =>
        `${KEY} moves from ${p.keyVersion} to ${n.keyVersion} and ${TRUSTED} changes (` +
        [added.length ? `adds ${list(added)}` : "", dropped.length ? `drops ${list(dropped)}` : ""].filter(Boolean).join(", ") +
        `) in the same step: each phase changes one thing, with the verification in between. ` +
        `Split it: ${planText(p, split, n)}.`,
};

/** R6's warning: the outage, and the phased way instead. */
export function immediateSwapWarning({ p, n }: StepFacts, phased: TrustState[]): string {
    const midRotation = p.trustedKeyVersions.length > 1
        ? ` It also abandons the rotation in progress (root-cert.pem trusted ${list(p.trustedKeyVersions)}).`
        : "";
    return `ROOT SWAP WITHOUT TRUST OVERLAP: ${KEY} ${p.keyVersion} -> ${n.keyVersion} with ${TRUSTED} unset replaces the ` +
        `trusted root at once (the manual procedure's swap). mTLS between workloads still holding certificates under ` +
        `root ${p.keyVersion} and workloads re-issued under root ${n.keyVersion} FAILS until every Istio-enabled ` +
        `workload has restarted; istiod must restart too (the new root-cert.pem is neither a subset nor a superset ` +
        `of the old one).${midRotation} To rotate without an outage instead, apply one \`pulumi up\` each: ` +
        `${planText(p, phased, n)}.`;
}
