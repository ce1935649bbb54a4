import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { KeySpec } from "../../plan/config";
import { privateKey } from "./keys";
import { certificateSummary, CertificateSummary } from "./summary";

export interface RootCaArgs {
    /** Root key generation (istio-ca:keyVersion); part of the resource names. */
    generation: number;
    key: KeySpec;
    validityHours: number;
}

/**
 * One root generation: a key and a self-signed CA certificate, profiled like Istio's own
 * tools/certs Makefile (O=Istio, CN=Root CA, critical CA:true, keyCertSign).
 *
 * Each generation is its own component (`root-v<N>`), so generation N stays untouched while N+1
 * is added next to it during a zero-downtime rotation.
 */
export class RootCa extends pulumi.ComponentResource {
    public readonly generation: number;
    /** PEM of the self-signed root certificate (public). */
    public readonly certPem: pulumi.Output<string>;
    /** PEM of the root private key (secret output). */
    public readonly privateKeyPem: pulumi.Output<string>;
    /** SHA-256 fingerprint and validity of the root certificate. */
    public readonly summary: pulumi.Output<CertificateSummary>;
    public readonly validityHours: number;

    constructor(name: string, args: RootCaArgs, opts?: pulumi.ComponentResourceOptions) {
        super("istio-ca:pki:RootCa", name, {}, opts);
        const parent = { parent: this };

        const key = privateKey(`${name}-key`, args.key, `root-v${args.generation}`, parent);
        const cert = new tls.SelfSignedCert(`${name}-cert`, {
            privateKeyPem: key.privateKeyPem,
            subject: { organization: "Istio", commonName: "Root CA" },
            isCaCertificate: true,
            // The tls provider drops `maxPathLength: 0` (it never sets Go's MaxPathLenZero), so the
            // intermediate cannot carry pathlen:0 itself. pathlen:1 here gives the same guarantee:
            // nothing below the intermediate may act as a CA.
            maxPathLength: 1,
            allowedUses: ["cert_signing", "crl_signing", "digital_signature", "key_encipherment"],
            validityPeriodHours: args.validityHours,
        }, parent);

        this.generation = args.generation;
        this.validityHours = args.validityHours;
        this.certPem = cert.certPem;
        this.privateKeyPem = key.privateKeyPem;
        this.summary = certificateSummary(cert.certPem);
        this.registerOutputs({ certPem: this.certPem, summary: this.summary });
    }
}
