import * as pulumi from "@pulumi/pulumi";
import { X509Certificate } from "node:crypto";
import { fingerprint, formatFingerprint } from "../../common/pem";

/** What a person reads about a certificate: never key material. */
export interface CertificateSummary {
    subject: string;
    /** SHA-256 of the DER, colon-separated upper-case hex (as openssl prints it). */
    sha256Fingerprint: string;
    notAfter: string;
    daysLeft: number;
}

export function summarize(pem: string, now = Date.now()): CertificateSummary {
    const cert = new X509Certificate(pem);
    const notAfter = new Date(cert.validTo);
    return {
        subject: cert.subject.replace(/\n/g, ", "),
        sha256Fingerprint: formatFingerprint(fingerprint(cert)),
        notAfter: notAfter.toISOString(),
        daysLeft: Math.floor((notAfter.getTime() - now) / 86_400_000),
    };
}

export function certificateSummary(certPem: pulumi.Input<string>): pulumi.Output<CertificateSummary> {
    return pulumi.output(certPem).apply((pem) => summarize(pem));
}
