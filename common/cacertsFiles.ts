// What every part of the program agrees on about the content of a `cacerts` Secret: Istio's four
// files, the public hash that stands for the content, and the name of the backup of a content.
// Shared by the program (takeover warnings, restore) and the backup step, so both name a backup
// the same way.
import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import { CacertsFiles, CacertsFormat, filesOf, formatIstiodReads, ISTIO_KEYS, istiodView, publicKeysOf, TLS_KEYS, TLS_SIGNING_KEY } from "./cacertsFormat";
import { parseCertificates, splitCertificates } from "./pem";

/** The Secret istiod reads its plug-in CA from. */
export const CACERTS = "cacerts";

/** The files istiod reads from cacerts in Istio's layout (since Istio 1.27 an incomplete cacerts stops istiod). */
export const CACERTS_FILES = ISTIO_KEYS;

/** Backups are Secrets `cacerts-backup-<first 12 hex of the fingerprint>` in the Istio namespace. */
export const BACKUP_PREFIX = "cacerts-backup-";
export const BACKUP_FINGERPRINT_LENGTH = 12;

/** The labels of every backup: `kubectl get secret -l istio-ca/backup-of=cacerts` lists them. */
export const BACKUP_LABELS: Readonly<Record<string, string>> = {
    "app.kubernetes.io/managed-by": "istio-ca",
    "istio-ca/backup-of": "cacerts",
};
export const BACKUP_SELECTOR = "istio-ca/backup-of=cacerts";

/**
 * Hash that stands for cacerts' content in command triggers, state and backup annotations. It
 * covers only the public parts: every new key comes with a new certificate, so the certificates
 * change whenever the key does, and nothing about the key can be learnt from the hash.
 */
export function publicContentHash(parts: { caCertPem: string; rootCertPem: string; certChainPem: string }): string {
    const h = createHash("sha256");
    for (const [name, value] of [["ca-cert.pem", parts.caCertPem], ["root-cert.pem", parts.rootCertPem], ["cert-chain.pem", parts.certChainPem]]) {
        h.update(`${name}\0${value}\0`);
    }
    return h.digest("hex");
}

/**
 * publicContentHash of what istiod reads from a content, whatever its layout (common/cacertsFormat):
 * the same content in Istio's layout or in kubernetes.io/tls has the same hash.
 */
export function servedContentHashOf(data: Readonly<Record<string, string>>): string {
    return publicContentHash(filesOf(istiodView(data).files));
}

/**
 * The hash of a content once written in a layout: what the drift check will read back
 * (servedContentHashOf); for Istio's layout, publicContentHash of the files themselves.
 */
export function writtenContentHash(format: CacertsFormat, files: Omit<CacertsFiles, "caKeyPem">): string {
    return servedContentHashOf(publicKeysOf(format, files));
}

/**
 * SHA-256 (hex) that names a cacerts content: of the DER of its signing certificate (ca-cert.pem,
 * or tls.crt in the kubernetes.io/tls layout) (the signing certificate,
 * what a person compares with `openssl x509 -fingerprint -sha256`), or, when ca-cert.pem is
 * missing or does not parse, of the raw content (every file, by name).
 */
export function cacertsFingerprint(data: Readonly<Record<string, Buffer>>): string {
    const caCert = data[formatIstiodReads(Object.keys(data)) === "tls" ? TLS_SIGNING_KEY : "ca-cert.pem"];
    const first = caCert ? splitCertificates(caCert.toString("utf8"))[0] : undefined;
    if (first) {
        try {
            return createHash("sha256").update(new X509Certificate(first).raw).digest("hex");
        } catch {
            // not a certificate: named by its raw content below
        }
    }
    const h = createHash("sha256");
    for (const name of Object.keys(data).sort()) {
        h.update(`${name}\0`).update(data[name]).update("\0");
    }
    return h.digest("hex");
}

export function backupName(fingerprint: string): string {
    return BACKUP_PREFIX + fingerprint.slice(0, BACKUP_FINGERPRINT_LENGTH);
}

/** The backup name of a content given as decoded strings (the program's view of a Secret). */
export function backupNameOf(data: Readonly<Record<string, string>>): string {
    return backupName(cacertsFingerprint(Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, "utf8")]))));
}

/**
 * What keeps a cacerts content from being a complete CA in the layout istiod reads from it
 * (common/cacertsFormat: tls.crt, tls.key, ca.crt when tls.crt is there; else Istio's four files): a
 * missing file, or one that does not parse (certificates: every PEM CERTIFICATE block; the key:
 * an unencrypted private key). Parsed in-process; no message quotes key material.
 */
export function incompleteCacerts(data: Readonly<Record<string, string>>): string[] {
    const problems: string[] = [];
    const keys: readonly string[] = formatIstiodReads(Object.keys(data)) === "tls" ? TLS_KEYS : CACERTS_FILES;
    const missing = keys.filter((file) => (data[file] ?? "").trim() === "");
    if (missing.length > 0) {
        problems.push(`missing ${missing.join(", ")}`);
    }
    for (const file of keys.filter((f) => !missing.includes(f))) {
        const isKey = file === "ca-key.pem" || file === "tls.key";
        try {
            if (isKey) {
                createPrivateKey({ key: data[file], format: "pem" });
            } else {
                parseCertificates(data[file], file);
            }
        } catch (err) {
            const reason = (err as Error).message;
            problems.push(isKey ? `${file} does not parse as an unencrypted PEM private key (${reason})` : reason);
        }
    }
    return problems;
}
