// Judges one workload during a CA change from what its proxy holds (steps/verify/proxySecrets.ts
// parses it): was its certificate re-issued under the current signing intermediate, and does its
// proxy trust the current root-cert.pem? And the report over all workloads.
import { X509Certificate } from "node:crypto";
import { bundleFingerprints, fingerprint, formatFingerprint, splitCertificates } from "../../common/pem";
import { findSecret, parseProxySecrets, ProxySecrets, ROOT_SECRET, WORKLOAD_SECRET } from "./proxySecrets";

export interface ExpectedProxyTrust {
    /** ca-cert.pem: the current signing intermediate, which must have issued the workload certificate. */
    signingCertPem: string;
    /** root-cert.pem: the bundle the proxy's ROOTCA must hold (compared as a set of certificates). */
    trustBundlePem: string;
    /** The workload certificate's `lastUpdated` must be later than this (the time `cacerts` changed). */
    issuedAfter?: Date;
    /** Instant at which the workload certificate must be valid; default now. */
    now?: Date;
}

export interface WorkloadCertInfo {
    lastUpdated?: string;
    serial: string;
    subjectAltName?: string;
    issuer: string;
    notAfter: string;
    /** SHA-256 of the certificate after the leaf in the presented chain (the intermediate), if any. */
    chainIssuerFingerprint?: string;
    issuedByExpected: boolean;
}

export interface WorkloadRootInfo {
    lastUpdated?: string;
    /** Distinct SHA-256 fingerprints of the proxy's ROOTCA bundle. */
    fingerprints: string[];
    /** In root-cert.pem but not in the proxy's ROOTCA. */
    missing: string[];
    /** In the proxy's ROOTCA but not in root-cert.pem (a root that should be gone). */
    unexpected: string[];
}

export interface WorkloadSecretStatus {
    /** The workload as the caller names it, e.g. `pod.namespace`. */
    workload: string;
    ok: boolean;
    problems: string[];
    cert?: WorkloadCertInfo;
    rootCa?: WorkloadRootInfo;
}

function short(hex: string): string {
    return formatFingerprint(hex).slice(0, 23);
}

function signedBy(leaf: X509Certificate, issuer: X509Certificate): boolean {
    try {
        return leaf.checkIssued(issuer) && leaf.verify(issuer.publicKey);
    } catch {
        return false;
    }
}

/**
 * Judges one workload's `istioctl proxy-config secret -o json` output against the expected CA:
 *  - the active `default` certificate was signed by the expected intermediate (name match and a
 *    real signature check with its public key), is within its validity at `now`, and its
 *    `lastUpdated` is later than `issuedAfter`;
 *  - the active `ROOTCA` holds exactly the certificates of root-cert.pem (as a set: a bundle with
 *    the signing root listed twice, phase 2, equals the same roots listed once).
 * Parse failures become a problem of the workload, so a report can still list every workload.
 */
export function evaluateProxySecrets(workload: string, output: string | ProxySecrets, expected: ExpectedProxyTrust): WorkloadSecretStatus {
    const problems: string[] = [];
    let secrets: ProxySecrets;
    try {
        secrets = typeof output === "string" ? parseProxySecrets(output) : output;
    } catch (err) {
        return { workload, ok: false, problems: [(err as Error).message] };
    }
    const signing = new X509Certificate(splitCertificates(expected.signingCertPem)[0] ?? expected.signingCertPem);
    const signingFp = fingerprint(signing);
    const expectedRoots = bundleFingerprints(expected.trustBundlePem, "expected root-cert.pem");
    const now = expected.now ?? new Date();
    const status: WorkloadSecretStatus = { workload, ok: false, problems };

    // --- the workload certificate
    const def = findSecret(secrets, WORKLOAD_SECRET);
    if (!def) {
        const warming = findSecret(secrets, WORKLOAD_SECRET, "warming");
        problems.push(
            warming
                ? `certificate "${WORKLOAD_SECRET}" is still warming (not yet in use)`
                : `no active "${WORKLOAD_SECRET}" certificate: the proxy has no workload certificate`,
        );
    } else if (def.problem || def.certificates.length === 0) {
        problems.push(def.problem ?? `"${WORKLOAD_SECRET}" holds no certificate chain`);
    } else {
        const leaf = def.certificates[0];
        const next = def.certificates[1];
        const info: WorkloadCertInfo = {
            lastUpdated: def.lastUpdated,
            serial: leaf.serialNumber,
            subjectAltName: leaf.subjectAltName,
            issuer: leaf.issuer,
            notAfter: leaf.validTo,
            chainIssuerFingerprint: next ? fingerprint(next) : undefined,
            issuedByExpected: signedBy(leaf, signing),
        };
        status.cert = info;
        if (!info.issuedByExpected) {
            const presented = info.chainIssuerFingerprint
                ? `; its chain presents issuer ${short(info.chainIssuerFingerprint)}…`
                : "";
            problems.push(
                `certificate (serial ${info.serial}) was not issued by the current intermediate ` +
                    `${short(signingFp)}… (${signing.subject.replace(/\n/g, ", ")})${presented}: not re-issued yet`,
            );
        }
        const from = new Date(leaf.validFrom);
        const to = new Date(leaf.validTo);
        if (now.getTime() > to.getTime()) {
            problems.push(`certificate expired at ${to.toISOString()}`);
        } else if (now.getTime() < from.getTime()) {
            problems.push(`certificate not valid before ${from.toISOString()}`);
        }
        if (expected.issuedAfter) {
            if (!def.lastUpdatedAt) {
                problems.push(`"${WORKLOAD_SECRET}" has no readable lastUpdated (${JSON.stringify(def.lastUpdated ?? null)})`);
            } else if (def.lastUpdatedAt.getTime() <= expected.issuedAfter.getTime()) {
                problems.push(
                    `certificate last updated ${def.lastUpdated}, not after ${expected.issuedAfter.toISOString()}: not re-issued since the CA changed`,
                );
            }
        }
    }

    // --- the trust bundle
    const root = findSecret(secrets, ROOT_SECRET);
    if (!root) {
        problems.push(`no active "${ROOT_SECRET}": the proxy has no trust bundle`);
    } else if (root.problem || root.certificates.length === 0) {
        problems.push(root.problem ?? `"${ROOT_SECRET}" holds no certificate`);
    } else {
        const fps = [...new Set(root.certificates.map(fingerprint))];
        const info: WorkloadRootInfo = {
            lastUpdated: root.lastUpdated,
            fingerprints: fps,
            missing: expectedRoots.filter((f) => !fps.includes(f)),
            unexpected: fps.filter((f) => !expectedRoots.includes(f)),
        };
        status.rootCa = info;
        if (info.missing.length > 0) {
            problems.push(`${ROOT_SECRET} lacks root ${info.missing.map((f) => `${short(f)}…`).join(", ")} of root-cert.pem`);
        }
        if (info.unexpected.length > 0) {
            problems.push(`${ROOT_SECRET} still trusts root ${info.unexpected.map((f) => `${short(f)}…`).join(", ")}, which root-cert.pem no longer holds`);
        }
    }

    status.ok = problems.length === 0;
    return status;
}

export interface ProxySecretsSummary {
    ok: boolean;
    total: number;
    ready: number;
    pending: string[];
}

export function summarizeProxySecrets(statuses: readonly WorkloadSecretStatus[]): ProxySecretsSummary {
    const pending = statuses.filter((s) => !s.ok).map((s) => s.workload);
    return { ok: pending.length === 0, total: statuses.length, ready: statuses.length - pending.length, pending };
}

/**
 * A per-workload report: a header line, then one line per workload (or only the failing ones with
 * `onlyProblems`) with what was seen and what is wrong.
 */
export function formatProxySecretsReport(statuses: readonly WorkloadSecretStatus[], opts: { onlyProblems?: boolean } = {}): string {
    const sum = summarizeProxySecrets(statuses);
    const lines = [
        sum.ok
            ? `all ${sum.total} workload(s) hold a certificate from the current intermediate and trust the current root-cert.pem`
            : `${sum.total - sum.ready} of ${sum.total} workload(s) not yet on the current CA:`,
    ];
    const sortedStatuses = [...statuses].sort((a, b) => (a.workload < b.workload ? -1 : a.workload > b.workload ? 1 : 0));
    for (const s of sortedStatuses) {
        if (opts.onlyProblems && s.ok) {
            continue;
        }
        const seen: string[] = [];
        if (s.cert) {
            seen.push(`cert serial ${s.cert.serial}${s.cert.lastUpdated ? ` updated ${s.cert.lastUpdated}` : ""}`);
        }
        if (s.rootCa) {
            seen.push(`ROOTCA ${s.rootCa.fingerprints.length} root(s)`);
        }
        const head = `  ${s.ok ? "ok  " : "FAIL"} ${s.workload}${seen.length ? ` (${seen.join(", ")})` : ""}`;
        lines.push(s.ok ? head : `${head}:\n${s.problems.map((p) => `         - ${p}`).join("\n")}`);
    }
    return lines.join("\n");
}
