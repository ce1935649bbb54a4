// Checks of root CA material that comes from outside this stack: a root stack's outputs
// (StackReference) or external config (`istio-ca:rootCertPem` + secret `istio-ca:rootKeyPem`, e.g.
// an offline root). Every cluster's intermediate is signed with this root, so bad material must be
// refused before anything is applied, with a message that names where it came from.
//
// Everything runs in-process with node:crypto: no process is ever spawned with key material, and
// no message ever quotes key material (only PEM labels, sizes, curves, fingerprints of the
// CERTIFICATE). X509Certificate.ca is not used for the CA check: OpenSSL's X509_check_ca() also
// answers false for a CA:TRUE certificate whose keyUsage lacks keyCertSign, and Node 20 does not
// expose keyUsage at all (its `keyUsage` is the EXTENDED key usage), so basicConstraints and
// keyUsage are parsed with @peculiar/asn1-x509, and each failure gets its own text.
import { AsnConvert } from "@peculiar/asn1-schema";
import { BasicConstraints, Certificate, id_ce_basicConstraints, id_ce_keyUsage, KeyUsage, KeyUsageFlags } from "@peculiar/asn1-x509";
import { KeyObject, X509Certificate, createPrivateKey, createPublicKey } from "node:crypto";
import { fingerprint } from "../common/pem";

export interface RootMaterialOptions {
    /** The time to check validity against; defaults to the current time. */
    now?: Date;
    /** A root expiring within this many days gives a warning; default 30. */
    minValidDays?: number;
}

export interface RootMaterialSummary {
    /** Subject, one line: `O=Istio, CN=Root CA`. */
    subject: string;
    /** SHA-256 of the certificate's DER, lower-case hex (common/pem.ts fingerprint()). */
    sha256: string;
    /** notAfter, ISO 8601. */
    notAfter: string;
    /** `RSA 4096`, `EC P-256`, `Ed25519`, …: the certificate's public key. */
    keyAlgorithm: string;
    /** Issuer equals subject and the certificate's signature verifies with its own key. */
    isSelfSigned: boolean;
}

export interface RootMaterialReport {
    /** Each one makes the material unusable; every text starts with `source`. */
    problems: string[];
    /** Usable, but worth a look (expiring soon, not self-signed); every text starts with `source`. */
    warnings: string[];
    /** Present when the certificate parsed. */
    summary?: RootMaterialSummary;
}

export const DEFAULT_MIN_VALID_DAYS = 30;

const DAY_MS = 24 * 60 * 60 * 1000;
const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
/** PEM labels of unencrypted private keys Istio reads: PKCS#1 (RSA), PKCS#8, SEC1 (EC). */
const SUPPORTED_KEY_LABELS = new Set(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY"]);
const KEY_FORMATS = "an unencrypted PEM private key (PKCS#1 `RSA PRIVATE KEY`, PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`)";
const SUPPORTED_KEYS = "Istio's CA supports RSA (2048 bits or more) and ECDSA P-256 / P-384";

interface PemBlock {
    label: string;
    text: string;
    encryptedHeader: boolean;
}

function pemBlocks(pem: string): PemBlock[] {
    const blocks: PemBlock[] = [];
    for (const m of pem.matchAll(PEM_BLOCK)) {
        blocks.push({ label: m[1], text: m[0], encryptedHeader: /Proc-Type:\s*4\s*,\s*ENCRYPTED/i.test(m[2]) });
    }
    return blocks;
}

const isKeyLabel = (label: string): boolean => /PRIVATE KEY$/.test(label);
const isCertLabel = (label: string): boolean => label === "CERTIFICATE" || label === "TRUSTED CERTIFICATE" || label === "X509 CERTIFICATE";
const plural = (n: number, what: string): string => `${n} ${what}${n === 1 ? "" : "s"}`;
const labels = (blocks: PemBlock[]): string => [...new Set(blocks.map((b) => b.label))].join(", ");

// ---------------------------------------------------------------------------------------------
// basicConstraints and keyUsage, parsed by @peculiar/asn1-x509 (the ASN.1 layer of @peculiar/x509,
// without its dependency-injection container, which needs a global reflect-metadata polyfill).

export interface CaExtensions {
    basicConstraints?: { ca: boolean; pathLen?: number };
    /** Undefined when the certificate has no keyUsage extension (RFC 5280: no restriction). */
    keyUsage?: { keyCertSign: boolean; cRLSign: boolean; digitalSignature: boolean };
}

/** Parses one extension's value, naming the extension when it is malformed. */
function extensionValue<T>(value: ArrayBuffer | ArrayBufferView, schema: new () => T, name: string): T {
    try {
        return AsnConvert.parse(value, schema);
    } catch (err) {
        throw new Error(`the ${name} extension is malformed: ${(err as Error).message}`);
    }
}

/** Reads basicConstraints and keyUsage from a certificate's DER. Throws on malformed DER. */
export function caExtensions(der: Uint8Array): CaExtensions {
    const cert = AsnConvert.parse(der, Certificate);
    const result: CaExtensions = {};
    for (const ext of cert.tbsCertificate.extensions ?? []) {
        if (ext.extnID === id_ce_basicConstraints) {
            const bc = extensionValue(ext.extnValue, BasicConstraints, "basicConstraints");
            result.basicConstraints = { ca: bc.cA, pathLen: bc.pathLenConstraint };
        } else if (ext.extnID === id_ce_keyUsage) {
            const bits = extensionValue(ext.extnValue, KeyUsage, "keyUsage").toNumber();
            result.keyUsage = {
                digitalSignature: (bits & KeyUsageFlags.digitalSignature) !== 0,
                keyCertSign: (bits & KeyUsageFlags.keyCertSign) !== 0,
                cRLSign: (bits & KeyUsageFlags.cRLSign) !== 0,
            };
        }
    }
    return result;
}

// ---------------------------------------------------------------------------------------------

function describeKey(key: KeyObject): string {
    const d = key.asymmetricKeyDetails ?? {};
    switch (key.asymmetricKeyType) {
        case "rsa":
            return `RSA ${d.modulusLength ?? "?"}`;
        case "rsa-pss":
            return `RSA-PSS ${d.modulusLength ?? "?"}`;
        case "ec": {
            const curve = d.namedCurve === "prime256v1" ? "P-256" : d.namedCurve === "secp384r1" ? "P-384" : d.namedCurve === "secp521r1" ? "P-521" : d.namedCurve;
            return `EC ${curve ?? "?"}`;
        }
        case "ed25519":
            return "Ed25519";
        case "ed448":
            return "Ed448";
        default:
            return String(key.asymmetricKeyType ?? "unknown");
    }
}

/** Why Istio cannot use this key type, or undefined when it can. */
function unsupportedKey(key: KeyObject): string | undefined {
    const d = key.asymmetricKeyDetails ?? {};
    if (key.asymmetricKeyType === "rsa") {
        return (d.modulusLength ?? 0) >= 2048 ? undefined : `${describeKey(key)} is too short`;
    }
    if (key.asymmetricKeyType === "ec") {
        return d.namedCurve === "prime256v1" || d.namedCurve === "secp384r1" ? undefined : `curve ${describeKey(key)} is not supported`;
    }
    return `${describeKey(key)} is not supported`;
}

const spki = (key: KeyObject): Buffer => key.export({ type: "spki", format: "der" });
const oneLine = (dn: string | undefined): string => (dn ?? "").split("\n").filter(Boolean).join(", ") || "(empty subject)";

/**
 * Checks a root CA certificate and its private key before any intermediate is signed with them.
 * `source` names where the material came from (e.g. `istio-ca:rootCertPem`, `root stack
 * org/istio-ca/root output roots.v2`); every problem and warning starts with it. Key material is
 * never quoted and never leaves the process.
 */
export function validateRootMaterial(
    certPem: string | undefined,
    keyPem: string | undefined,
    source: string,
    opts: RootMaterialOptions = {},
): RootMaterialReport {
    const problems: string[] = [];
    const warnings: string[] = [];
    const c: Checks = {
        problem: (text) => void problems.push(`${source}: ${text}`),
        warn: (text) => void warnings.push(`${source}: ${text}`),
        now: opts.now ?? new Date(),
        minValidDays: opts.minValidDays ?? DEFAULT_MIN_VALID_DAYS,
    };
    const certBlocks = certPem?.trim() ? pemBlocks(certPem) : undefined;
    const keyBlocks = keyPem?.trim() ? pemBlocks(keyPem) : undefined;
    const certHoldsKey = !!certBlocks?.some((b) => isKeyLabel(b.label));
    const keyHoldsCert = !!keyBlocks?.some((b) => isCertLabel(b.label));
    if (certHoldsKey && keyHoldsCert) {
        c.problem("the root certificate and the root private key look swapped: the certificate field holds a private key and the key field holds a certificate");
    }
    const cert = readRootCertificate(certBlocks, certHoldsKey, keyHoldsCert, c);
    const key = readRootKey(keyBlocks, certHoldsKey, keyHoldsCert, c);
    const summary = cert ? checkRootCertificate(cert, c) : undefined;
    if (key) {
        checkKeyPair(key, cert, c);
    }
    return summary ? { problems, warnings, summary } : { problems, warnings };
}

/** Where validateRootMaterial's checks report, and their clock. */
interface Checks {
    problem: (text: string) => void;
    warn: (text: string) => void;
    now: Date;
    minValidDays: number;
}

/** The one root certificate of the certificate field, parsed (undefined: a problem was reported). */
function readRootCertificate(certBlocks: PemBlock[] | undefined, certHoldsKey: boolean, keyHoldsCert: boolean, { problem }: Checks): X509Certificate | undefined {
    let cert: X509Certificate | undefined;
    if (!certBlocks) {
        problem("the root certificate is missing (empty or not set)");
    } else if (certBlocks.length === 0) {
        problem("the root certificate is not PEM: no -----BEGIN CERTIFICATE----- block found");
    } else {
        const certs = certBlocks.filter((b) => isCertLabel(b.label));
        if (certHoldsKey && !keyHoldsCert) {
            problem("the root certificate field contains a PRIVATE KEY block where only the public certificate belongs (if this is the real root key, it has been stored as plain, unencrypted config: treat it as exposed)");
        }
        if (certs.length === 0) {
            if (!certHoldsKey) {
                problem(`the root certificate holds no CERTIFICATE block (found: ${labels(certBlocks)})`);
            }
        } else if (certs.length > 1) {
            problem(`the root certificate field holds ${plural(certs.length, "certificate")} where exactly one root certificate is expected (a chain or a bundle? give only the root: its key is the one that signs the cluster intermediates)`);
        } else {
            try {
                cert = new X509Certificate(certs[0].text);
            } catch (err) {
                problem(`the root certificate does not parse as X.509: ${(err as Error).message}`);
            }
        }
    }
    return cert;
}

/** The one private key of the key field, parsed (undefined: a problem was reported). */
function readRootKey(keyBlocks: PemBlock[] | undefined, certHoldsKey: boolean, keyHoldsCert: boolean, { problem }: Checks): KeyObject | undefined {
    let key: KeyObject | undefined;
    if (!keyBlocks) {
        problem("the root private key is missing (empty or not set)");
    } else if (keyBlocks.length === 0) {
        problem(`the root private key is not PEM: no -----BEGIN … PRIVATE KEY----- block found; it must be ${KEY_FORMATS}`);
    } else {
        const keys = keyBlocks.filter((b) => isKeyLabel(b.label));
        if (keyHoldsCert && !certHoldsKey) {
            problem("the root private key field contains a CERTIFICATE block where the private key belongs");
        }
        if (keys.length === 0) {
            if (!keyHoldsCert) {
                problem(`the root private key holds no PRIVATE KEY block (found: ${labels(keyBlocks)}); it must be ${KEY_FORMATS}`);
            }
        } else if (keys.length > 1) {
            problem(`the root private key field holds ${plural(keys.length, "private key")} where exactly one is expected`);
        } else {
            const block = keys[0];
            if (block.label === "ENCRYPTED PRIVATE KEY" || block.encryptedHeader) {
                problem(`the root private key is encrypted (${block.encryptedHeader ? "Proc-Type: 4,ENCRYPTED" : "ENCRYPTED PRIVATE KEY"}); it must be ${KEY_FORMATS}. ` +
                    "Decrypt it locally, e.g. `openssl pkey -in key.pem -out plain.pem`, and store the result as a secret (`pulumi config set --secret`)");
            } else if (!SUPPORTED_KEY_LABELS.has(block.label)) {
                problem(`the root private key is a ${block.label} block, which this program does not read; it must be ${KEY_FORMATS} (convert with \`openssl pkey -in key.pem -out plain.pem\`)`);
            } else {
                try {
                    key = createPrivateKey({ key: block.text, format: "pem" });
                } catch (err) {
                    // OpenSSL's decoder errors name the routine, never the input.
                    problem(`the root private key (${block.label}) does not parse: ${(err as Error).message}`);
                }
            }
        }
    }
    return key;
}

/** What the certificate says: a CA that may sign intermediates, valid now, a supported key. */
function checkRootCertificate(cert: X509Certificate, { problem, warn, now, minValidDays }: Checks): RootMaterialSummary {
    const pub = cert.publicKey;
    const isSelfSigned = cert.checkIssued(cert) && cert.verify(pub);
    const notBefore = new Date(cert.validFrom);
    const notAfter = new Date(cert.validTo);
    const summary: RootMaterialSummary = {
        subject: oneLine(cert.subject),
        sha256: fingerprint(cert),
        notAfter: notAfter.toISOString(),
        keyAlgorithm: describeKey(pub),
        isSelfSigned,
    };
    const who = `the root certificate (${summary.subject}, SHA-256 ${summary.sha256.slice(0, 16)}…)`;

    let ext: CaExtensions | undefined;
    try {
        ext = caExtensions(cert.raw);
    } catch (err) {
        problem(`${who}: its extensions cannot be read: ${(err as Error).message}`);
    }
    if (ext) {
        const bc = ext.basicConstraints;
        if (!bc) {
            problem(`${who} is not a CA: it has no basicConstraints extension (a leaf or X.509 v1 certificate); a root needs basicConstraints CA:TRUE to sign the cluster intermediates`);
        } else if (!bc.ca) {
            problem(`${who} is not a CA: basicConstraints says CA:FALSE (a leaf certificate?); a root needs CA:TRUE, otherwise istiod fails with "not authorized to sign other certificates"`);
        } else if (bc.pathLen === 0) {
            problem(`${who} has basicConstraints pathlen:0, which forbids any CA below it, but each cluster's intermediate is a CA (pathlen must be at least 1, or absent)`);
        }
        if (bc?.ca && ext.keyUsage && !ext.keyUsage.keyCertSign) {
            problem(`${who} has a keyUsage extension without keyCertSign, so it may not sign certificates; a root needs keyUsage keyCertSign (Istio's own roots: digitalSignature, keyEncipherment, keyCertSign)`);
        }
    }

    if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) {
        problem(`${who}: its validity period cannot be read (notBefore ${cert.validFrom}, notAfter ${cert.validTo})`);
    } else if (now.getTime() < notBefore.getTime()) {
        problem(`${who} is not valid yet: notBefore is ${notBefore.toISOString()} (now ${now.toISOString()}); check the clock of the machine that made it`);
    } else if (now.getTime() > notAfter.getTime()) {
        problem(`${who} expired on ${notAfter.toISOString()} (now ${now.toISOString()}); issue a new root and rotate to it`);
    } else {
        const daysLeft = (notAfter.getTime() - now.getTime()) / DAY_MS;
        if (daysLeft < minValidDays) {
            warn(`${who} expires in ${Math.floor(daysLeft)} day(s), on ${notAfter.toISOString()} (less than ${minValidDays}): plan a root rotation now; intermediates signed with it cannot outlive it`);
        }
    }

    const unsupported = unsupportedKey(pub);
    if (unsupported) {
        problem(`${who}: its key ${unsupported}; ${SUPPORTED_KEYS}`);
    }

    if (!isSelfSigned) {
        warn(`${who} is not self-signed (issuer: ${oneLine(cert.issuer)}): it can sign the cluster intermediates, but Istio's root-cert.pem must then contain the real trust anchor, and cert-chain.pem only reaches this certificate`);
    }
    return summary;
}

/** The key belongs to the certificate (or, without one, is at least a supported key). */
function checkKeyPair(key: KeyObject, cert: X509Certificate | undefined, { problem }: Checks): void {
    if (cert) {
        if (!spki(createPublicKey(key)).equals(spki(cert.publicKey))) {
            problem(`the root private key (${describeKey(key)}) does not match the root certificate (${describeKey(cert.publicKey)}, SHA-256 ${fingerprint(cert).slice(0, 16)}…): their public keys differ`);
        }
    } else {
        const unsupported = unsupportedKey(key);
        if (unsupported) {
            problem(`the root private key: ${unsupported}; ${SUPPORTED_KEYS}`);
        }
    }
}
