// The two layouts istiod reads its plug-in CA in, and how this program's content maps onto each.
// istiod (istio.io/istio pilot/pkg/bootstrap/istio_ca.go, detectSigningCABundleAndCRL) checks for
// `tls.crt` in the cacerts directory: if it exists, it reads the kubernetes.io/tls layout
// (security/pkg/pki/ca/ca.go TLSSecret*):
//   signing certificate  tls.crt  (the first PEM block signs; pki/ca.NewPluggedCertIstioCAOptions)
//   signing key          tls.key
//   root bundle          ca.crt   (published as istio-ca-root-cert; multi-root like root-cert.pem)
//   certificate chain    tls.crt + ca.crt, concatenated (CertChainFiles), appended to every
//                        workload certificate and verified with x509 pools (pki/util.Verify)
// and ignores ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem. Without tls.crt it reads
// those four and ignores tls.key and ca.crt. So what matters is which keys the Secret holds, not
// its type; but a Secret's type is immutable and kubernetes.io/tls requires tls.crt and tls.key.
import { bundleFingerprints, parseCertificates, splitCertificates, fingerprint } from "./pem";

export type CacertsFormat = "istio" | "tls";

export const TLS_SECRET_TYPE = "kubernetes.io/tls";
export const ISTIO_KEYS = ["ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem"] as const;
export const TLS_KEYS = ["tls.crt", "tls.key", "ca.crt"] as const;
/** The key that makes istiod read the kubernetes.io/tls layout. */
export const TLS_SIGNING_KEY = "tls.crt";

/** The four files of Istio's layout: what every decision of the program is made on. */
export interface CacertsFiles {
    caCertPem: string;
    /** Plain here; the program wraps it in pulumi.secret at once. */
    caKeyPem: string;
    rootCertPem: string;
    certChainPem: string;
}

/** The layout istiod reads from these keys (detectSigningCABundleAndCRL: tls.crt present). */
export function formatIstiodReads(keys: Iterable<string>): CacertsFormat {
    return [...keys].includes(TLS_SIGNING_KEY) ? "tls" : "istio";
}

/**
 * The layout this program writes into an existing Secret: the one istiod reads now (a
 * kubernetes.io/tls Secret always holds tls.crt). Without a Secret: Istio's, in an Opaque one.
 */
export function formatToWrite(existing: { type?: string; data: Readonly<Record<string, unknown>> } | undefined): CacertsFormat {
    if (!existing) {
        return "istio";
    }
    return existing.type === TLS_SECRET_TYPE ? "tls" : formatIstiodReads(Object.keys(existing.data));
}

/** Keys of the other layout: ignored by istiod now, and a trap (they decide or confuse what it reads next). */
export function staleKeys(format: CacertsFormat, keys: Iterable<string>): string[] {
    const other: readonly string[] = format === "tls" ? ISTIO_KEYS : TLS_KEYS;
    return [...keys].filter((k) => other.includes(k)).sort();
}

/** `a` then `b`, with a line break between them when `a` lacks one (istiod concatenates bytes). */
function concat(a: string, b: string): string {
    return a === "" || a.endsWith("\n") ? a + b : `${a}\n${b}`;
}

/**
 * The Istio-layout view of a TLS-layout content, as istiod uses it: ca-cert.pem is tls.crt,
 * root-cert.pem is ca.crt, and cert-chain.pem is tls.crt followed by the root of ca.crt that
 * issued its last certificate (Istio's convention: the chain ends with its root; istiod appends
 * the whole ca.crt, which verifies the same).
 */
function viewOfTls(data: Readonly<Record<string, string>>): Partial<CacertsFiles> {
    const tlsCrt = data["tls.crt"] ?? "";
    const caCrt = data["ca.crt"];
    let chain = tlsCrt;
    try {
        const certs = parseCertificates(tlsCrt, "tls.crt");
        const last = certs[certs.length - 1];
        const roots = parseCertificates(caCrt ?? "", "ca.crt");
        const issuerIndex = roots.findIndex((r) => last.checkIssued(r) && last.verify(r.publicKey));
        if (issuerIndex >= 0 && fingerprint(roots[issuerIndex]) !== fingerprint(last)) {
            chain = concat(tlsCrt, splitCertificates(caCrt!)[issuerIndex] + "\n");
        }
    } catch {
        // unparsable: the completeness check says what is wrong
    }
    return { caCertPem: data["tls.crt"], caKeyPem: data["tls.key"], rootCertPem: caCrt, certChainPem: data["tls.crt"] === undefined ? undefined : chain };
}

/**
 * What istiod reads from a cacerts content, in Istio's four file names (absent files left out):
 * the content itself for Istio's layout, the mapped one for kubernetes.io/tls.
 */
export function istiodView(data: Readonly<Record<string, string>>): { format: CacertsFormat; files: Record<string, string> } {
    const format = formatIstiodReads(Object.keys(data));
    if (format === "istio") {
        return { format, files: Object.fromEntries(ISTIO_KEYS.filter((k) => data[k] !== undefined).map((k) => [k, data[k]])) };
    }
    const v = viewOfTls(data);
    const files: Record<string, string> = {};
    for (const [key, value] of [["ca-cert.pem", v.caCertPem], ["ca-key.pem", v.caKeyPem], ["root-cert.pem", v.rootCertPem], ["cert-chain.pem", v.certChainPem]] as const) {
        if (value !== undefined) files[key] = value;
    }
    return { format, files };
}

/** The four files of a view (missing ones empty). */
export function filesOf(view: Readonly<Record<string, string>>): CacertsFiles {
    return {
        caCertPem: view["ca-cert.pem"] ?? "",
        caKeyPem: view["ca-key.pem"] ?? "",
        rootCertPem: view["root-cert.pem"] ?? "",
        certChainPem: view["cert-chain.pem"] ?? "",
    };
}

/**
 * The kubernetes.io/tls keys of a content: tls.crt is the signing certificate followed by the
 * intermediates of cert-chain.pem that are not roots of root-cert.pem (istiod appends ca.crt to
 * it, so the roots are not repeated); ca.crt is the whole trust bundle, so every phase of a root
 * rotation (one root, old + new, new only) is served and published exactly as root-cert.pem.
 */
export function tlsKeysOf(files: CacertsFiles): { "tls.crt": string; "tls.key": string; "ca.crt": string } {
    const roots = new Set(bundleFingerprints(files.rootCertPem, "root-cert.pem"));
    const [signing, ...rest] = splitCertificates(files.certChainPem);
    const caCert = splitCertificates(files.caCertPem)[0] ?? signing;
    const intermediates = rest.filter((pem) => !roots.has(fingerprint(parseCertificates(pem, "cert-chain.pem")[0])));
    return {
        "tls.crt": [caCert, ...intermediates].map((pem) => `${pem}\n`).join(""),
        "tls.key": files.caKeyPem,
        "ca.crt": files.rootCertPem,
    };
}

/** Human names of a layout's keys, for messages. */
export function layoutKeys(format: CacertsFormat): string {
    return (format === "tls" ? TLS_KEYS : ISTIO_KEYS).join(", ");
}

/** The public keys of a content in a layout (no key: hashes and triggers are computed on these). */
export function publicKeysOf(format: CacertsFormat, files: Omit<CacertsFiles, "caKeyPem">): Record<string, string> {
    if (format === "tls") {
        const { "tls.crt": tlsCrt, "ca.crt": caCrt } = tlsKeysOf({ ...files, caKeyPem: "" });
        return { "tls.crt": tlsCrt, "ca.crt": caCrt };
    }
    return { "ca-cert.pem": files.caCertPem, "root-cert.pem": files.rootCertPem, "cert-chain.pem": files.certChainPem };
}
