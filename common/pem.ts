// PEM helpers shared by the program (outputs) and the verification steps. Certificates are
// compared by SHA-256 fingerprint of their DER bytes, never as strings: the same certificate can
// be re-encoded with other line breaks or headers.
import { X509Certificate, createHash } from "node:crypto";

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Splits a PEM bundle into its CERTIFICATE blocks, in order; other blocks are ignored. */
export function splitCertificates(bundle: string): string[] {
    return bundle.match(CERT_BLOCK) ?? [];
}

/** Parses every certificate of a bundle; throws naming `what` when a block is not a certificate. */
export function parseCertificates(bundle: string, what: string): X509Certificate[] {
    const blocks = splitCertificates(bundle);
    if (blocks.length === 0) {
        throw new Error(`${what}: no PEM CERTIFICATE block found`);
    }
    return blocks.map((block, i) => {
        try {
            return new X509Certificate(block);
        } catch (err) {
            throw new Error(`${what}: certificate #${i + 1} does not parse: ${(err as Error).message}`);
        }
    });
}

/** SHA-256 fingerprint, lower-case hex without separators (like `openssl x509 -fingerprint -sha256` minus colons). */
export function fingerprint(cert: X509Certificate): string {
    return createHash("sha256").update(cert.raw).digest("hex");
}

/** The distinct fingerprints of a bundle, in first-seen order. */
export function bundleFingerprints(bundle: string, what: string): string[] {
    return [...new Set(parseCertificates(bundle, what).map(fingerprint))];
}

/** Colon-separated upper-case form, the way openssl prints fingerprints: easier to compare by eye. */
export function formatFingerprint(hex: string): string {
    return hex.toUpperCase().match(/../g)?.join(":") ?? hex;
}
