// What a deployment records about its roots, and what the next run compares with it (#12).
// A root generation is its certificate, not its number: the same generation numbers over other
// certificates is a root swap (mTLS between old and new workloads breaks), however it came about
// (a new key spec, another rootCertPem, a recreated root stack, istiod's regenerated CA). Pure
// functions: the program reads the record (stack output `recordedRoots`), compares before it
// registers anything and refuses, or warns when the swap was asked for.
import { X509Certificate } from "node:crypto";
import type { KeySpec } from "./config";
import { fingerprint, formatFingerprint } from "../common/pem";
import { generationKey } from "./generations";

/** One generation as a deployment recorded it. */
export interface RecordedRoot {
    /** SHA-256 of the certificate's DER, colon-separated upper-case hex (as the summaries print it). */
    sha256Fingerprint: string;
    /** The key spec of the root, read from its certificate. */
    key: KeySpec;
    /** validityPeriodHours the root was created with (roots this stack generates): kept for existing generations. */
    validityHours?: number;
}

/** Stack output `recordedRoots`: by generation, `v<N>`. */
export type RootRecord = Record<string, RecordedRoot>;

export const SWAP_OPTION = "istio-ca:allowImmediateRootSwap";

/** RSA bits or ECDSA curve of a certificate's public key (only what KeySpec can express). */
export function keySpecOfCert(certPem: string): KeySpec {
    const key = new X509Certificate(certPem).publicKey;
    const details = key.asymmetricKeyDetails ?? {};
    if (key.asymmetricKeyType === "ec") {
        return { algorithm: "ECDSA", ecdsaCurve: details.namedCurve === "secp384r1" ? "P384" : "P256" };
    }
    return { algorithm: "RSA", rsaBits: details.modulusLength as KeySpec["rsaBits"] };
}

export function recordedRoot(certPem: string, validityHours?: number): RecordedRoot {
    const root: RecordedRoot = { sha256Fingerprint: formatFingerprint(fingerprint(new X509Certificate(certPem))), key: keySpecOfCert(certPem) };
    return validityHours === undefined ? root : { ...root, validityHours };
}

export function formatKeySpec(key: KeySpec): string {
    return key.algorithm === "RSA" ? `RSA ${key.rsaBits}` : `ECDSA ${key.ecdsaCurve}`;
}

export const sameKeySpec = (a: KeySpec, b: KeySpec): boolean => formatKeySpec(a) === formatKeySpec(b);

/** A root this run would serve under a generation number the record holds with another certificate. */
export interface RootChange {
    generation: number;
    recorded: RecordedRoot;
    next: RecordedRoot;
    /** Where the new root comes from, for the message. */
    source: string;
}

/** The roots (known before anything is applied) whose certificate differs from the record for the same generation. */
export function changedRoots(record: RootRecord | undefined, next: { generation: number; certPem: string; source: string }[]): RootChange[] {
    return next.flatMap(({ generation, certPem, source }) => {
        const recorded = record?.[generationKey(generation)];
        const now = recordedRoot(certPem);
        return recorded && recorded.sha256Fingerprint !== now.sha256Fingerprint ? [{ generation, recorded, next: now, source }] : [];
    });
}

function describe(c: RootChange): string {
    return `root generation ${c.generation} would change: recorded SHA-256 ${c.recorded.sha256Fingerprint} (${formatKeySpec(c.recorded.key)}), ` +
        `new SHA-256 ${c.next.sha256Fingerprint} (${formatKeySpec(c.next.key)}) from ${c.source}`;
}

/**
 * The refusal: a root changes only by a new generation. `newGeneration` is the number a rotation
 * would give it; `phased` whether the source can hold two roots at once (an external root cannot).
 */
export function rootChangeRefusal(changes: RootChange[], newGeneration: number, phased: boolean): string {
    const how = phased
        ? `give the new root a new generation and rotate without an outage: \`npm run rotate -- --stack <stack> --to ${newGeneration}\` ` +
          `(phase 1 istio-ca:trustedKeyVersions [.., ${newGeneration}], phase 2 istio-ca:keyVersion ${newGeneration}, phase 3), ` +
          "with the old root still served under its own generation"
        : `give the new root a new generation: \`pulumi config set istio-ca:keyVersion ${newGeneration}\` with the new istio-ca:rootCertPem/rootKeyPem`;
    return `refusing a root change under the same generation number (the mesh would swap roots at once and mTLS between old and new workloads would break, with no phase in between):\n  - ` +
        changes.map(describe).join("\n  - ") +
        `\nA root changes only by a new generation: ${how}. To swap at once anyway (an outage until every workload restarted), set ` +
        `\`pulumi config set ${SWAP_OPTION} true\` for this up.`;
}

/** The loud warning when the swap was asked for. */
export function rootChangeWarning(changes: RootChange[]): string {
    return `ROOT SWAP UNDER THE SAME GENERATION (${SWAP_OPTION}: true): ${changes.map(describe).join("; ")}. mTLS between workloads still ` +
        "holding certificates under the old root and workloads re-issued under the new one FAILS until every Istio-enabled workload has restarted. " +
        `Remove ${SWAP_OPTION} after this up.`;
}
