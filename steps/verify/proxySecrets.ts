// Parses `istioctl proxy-config secret <pod> -n <ns> -o json` and judges one workload during a CA
// change: was its certificate re-issued under the current signing intermediate, and does its proxy
// trust the current root-cert.pem?
//
// What istioctl prints (istio/istio `istioctl/pkg/writer/envoy/configdump/configdump.go`,
// `PrintSecretDump`): the Envoy admin `SecretsConfigDump` taken from the sidecar's config dump,
// marshalled with `protomarshal.ToJSONWithIndent` (golang/protobuf jsonpb, default options), i.e.
// protojson field names in lowerCamelCase and the Secret as an `Any` with `@type`:
//
//   { "dynamicActiveSecrets": [
//       { "name": "default", "versionInfo": "...", "lastUpdated": "2023-05-15T01:32:52.262Z",
//         "secret": { "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
//                     "name": "default",
//                     "tlsCertificate": { "certificateChain": { "inlineBytes": "<base64 PEM chain>" },
//                                         "privateKey": { "inlineBytes": "W3JlZGFjdGVkXQ==" } } } },
//       { "name": "ROOTCA", "lastUpdated": "...",
//         "secret": { "@type": "...Secret", "name": "ROOTCA",
//                     "validationContext": { "trustedCa": { "inlineBytes": "<base64 PEM bundle>" } } } } ],
//     "dynamicWarmingSecrets": [ ... same shape, not yet in use ... ] }
//
// Envoy itself redacts the private key ("[redacted]"); it is never read here. Also accepted: the
// same message with proto field names (snake_case, as in Envoy's own /config_dump and istio's
// testdata `testdata/secret/istio/config_dump.json`), and a whole config dump (`{"configs": [...]}`)
// from which the SecretsConfigDump is taken. Istio's rotation e2e test
// (`tests/integration/security/cacert_rotation/main_test.go`) reads `lastUpdated` of the `default`
// secret from exactly this output to see that a workload re-signed.
import { X509Certificate } from "node:crypto";

import { bundleFingerprints, fingerprint, formatFingerprint, splitCertificates } from "../../common/pem";
import { field, isObject, Json, JsonObject, str } from "./protoJson";

/** Envoy resource names Istio's agent uses (istio/istio `pkg/security`: WorkloadKeyCertResourceName, RootCertReqResourceName). */
export const WORKLOAD_SECRET = "default";
export const ROOT_SECRET = "ROOTCA";

const SECRETS_DUMP_TYPE = "type.googleapis.com/envoy.admin.v3.SecretsConfigDump";

export type SecretState = "active" | "warming" | "static";

export interface ProxySecret {
    name: string;
    state: SecretState;
    versionInfo?: string;
    /** `lastUpdated` as printed (RFC 3339). */
    lastUpdated?: string;
    /** `lastUpdated` parsed; undefined when absent or not a timestamp. */
    lastUpdatedAt?: Date;
    /** `certificate`: a tlsCertificate (chain); `validation`: a validationContext (trusted CAs); `none`: neither. */
    type: "certificate" | "validation" | "none";
    /** The certificates of the chain / bundle, in order. */
    certificates: X509Certificate[];
    /** Why the certificates could not be read (a file reference, bad base64, ...). */
    problem?: string;
}

export interface ProxySecrets {
    secrets: ProxySecret[];
}

function firstLine(output: string): string {
    const line = output.split(/\r?\n/).find((l) => l.trim() !== "") ?? "";
    return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

function formatError(output: string, why: string): Error {
    return new Error(
        `unrecognised istioctl proxy-config secret output (${why}); expected the JSON of ` +
            "`istioctl proxy-config secret <pod> -n <ns> -o json` (an Envoy SecretsConfigDump with " +
            `dynamicActiveSecrets); first line was: ${JSON.stringify(firstLine(output))}`,
    );
}

/** Reads an Envoy DataSource (`inlineBytes` base64, or `inlineString`) as text. */
function dataSource(ds: Json | undefined, what: string): { text?: string; problem?: string } {
    if (!isObject(ds)) {
        return { problem: `${what} is missing` };
    }
    const bytes = str(field(ds, "inlineBytes"));
    if (bytes !== undefined) {
        if (!/^[A-Za-z0-9+/=\s_-]*$/.test(bytes)) {
            return { problem: `${what}.inlineBytes is not base64` };
        }
        return { text: Buffer.from(bytes, "base64").toString("utf8") };
    }
    const inline = str(field(ds, "inlineString"));
    if (inline !== undefined) {
        return { text: inline };
    }
    const file = str(field(ds, "filename"));
    if (file !== undefined) {
        return { problem: `${what} refers to file ${file} inside the proxy; istioctl cannot show its certificates` };
    }
    return { problem: `${what} has no inline data` };
}

function readCertificates(text: string, what: string): { certificates: X509Certificate[]; problem?: string } {
    const blocks = splitCertificates(text);
    if (blocks.length === 0) {
        return { certificates: [], problem: `${what} holds no PEM certificate` };
    }
    const certificates: X509Certificate[] = [];
    for (const [i, block] of blocks.entries()) {
        try {
            certificates.push(new X509Certificate(block));
        } catch (err) {
            return { certificates, problem: `${what}: certificate #${i + 1} does not parse: ${(err as Error).message}` };
        }
    }
    return { certificates };
}

function parseSecret(entry: JsonObject, state: SecretState): ProxySecret {
    const secret = field(entry, "secret");
    const name = str(entry.name) ?? (isObject(secret) ? str(secret.name) : undefined) ?? "";
    const lastUpdated = str(field(entry, "lastUpdated"));
    const at = lastUpdated !== undefined ? new Date(lastUpdated) : undefined;
    const out: ProxySecret = {
        name,
        state,
        versionInfo: str(field(entry, "versionInfo")),
        lastUpdated,
        lastUpdatedAt: at && !Number.isNaN(at.getTime()) ? at : undefined,
        type: "none",
        certificates: [],
    };
    if (!isObject(secret)) {
        return out;
    }
    const tls = field(secret, "tlsCertificate");
    const validation = field(secret, "validationContext");
    let read: { text?: string; problem?: string } | undefined;
    if (isObject(tls)) {
        out.type = "certificate";
        read = dataSource(field(tls, "certificateChain"), `${name} certificateChain`);
    } else if (isObject(validation)) {
        out.type = "validation";
        read = dataSource(field(validation, "trustedCa"), `${name} trustedCa`);
    }
    if (read?.problem) {
        out.problem = read.problem;
    } else if (read?.text !== undefined) {
        const certs = readCertificates(read.text, `${name} ${out.type === "certificate" ? "certificateChain" : "trustedCa"}`);
        out.certificates = certs.certificates;
        out.problem = certs.problem;
    }
    return out;
}

function isSecretsDump(o: JsonObject): boolean {
    return ["dynamicActiveSecrets", "dynamicWarmingSecrets", "staticSecrets"].some((k) => field(o, k) !== undefined) ||
        str(o["@type"]) === SECRETS_DUMP_TYPE;
}

/** Parses the JSON of `istioctl proxy-config secret -o json` (see the top of this file). Throws a descriptive Error. */
export function parseProxySecrets(output: string): ProxySecrets {
    if (typeof output !== "string" || output.trim() === "") {
        throw new Error("empty istioctl proxy-config secret output: expected the JSON of `-o json`");
    }
    let doc: Json;
    try {
        doc = JSON.parse(output) as Json;
    } catch (err) {
        throw formatError(output, `JSON does not parse: ${(err as Error).message}`);
    }
    if (Array.isArray(doc)) {
        // A ztunnel prints its own certificate list (an array), not an Envoy SecretsConfigDump.
        throw formatError(output, "a JSON array (ztunnel's certificate list?), not an Envoy SecretsConfigDump");
    }
    if (!isObject(doc)) {
        throw formatError(output, "not a JSON object");
    }
    let dump: JsonObject | undefined = doc;
    const configs = field(doc, "configs");
    if (!isSecretsDump(doc) && Array.isArray(configs)) {
        dump = configs.find((c): c is JsonObject => isObject(c) && str(c["@type"]) === SECRETS_DUMP_TYPE);
        if (!dump) {
            throw formatError(output, "a config dump without a SecretsConfigDump (does this proxy use SDS?)");
        }
    }
    if (!isSecretsDump(dump) && Object.keys(dump).length > 0) {
        throw formatError(output, "no dynamicActiveSecrets/dynamicWarmingSecrets/staticSecrets");
    }
    const secrets: ProxySecret[] = [];
    const lists: [string, SecretState][] = [
        ["dynamicActiveSecrets", "active"],
        ["dynamicWarmingSecrets", "warming"],
        ["staticSecrets", "static"],
    ];
    for (const [key, state] of lists) {
        const entries = field(dump, key);
        if (entries === undefined) {
            continue;
        }
        if (!Array.isArray(entries)) {
            throw formatError(output, `${key} is not a list`);
        }
        for (const e of entries) {
            if (isObject(e)) {
                secrets.push(parseSecret(e, state));
            }
        }
    }
    return { secrets };
}

/** The secret named `name` in the given state (default: active). */
export function findSecret(secrets: ProxySecrets, name: string, state: SecretState = "active"): ProxySecret | undefined {
    return secrets.secrets.find((s) => s.name === name && s.state === state);
}

// ---------------------------------------------------------------------------------------------
// Evaluation of one workload

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
