import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { KeySpec } from "../../plan/config";
import { privateKey } from "./keys";
import type { RootGeneration } from "./roots";
import { certificateSummary, CertificateSummary } from "./summary";

export interface IntermediateCaArgs {
    /** The root generation that signs this intermediate. */
    root: RootGeneration;
    /** istio-ca:intermediateVersion: a new value replaces key and certificate. */
    version: number;
    clusterName: string;
    istioNamespace: string;
    key: KeySpec;
    validityHours: number;
    /** istio-ca:earlyRenewalHours: the tls provider plans a replacement this close to notAfter. */
    earlyRenewalHours: number;
}

/**
 * The cluster's signing CA: key, CSR and a certificate issued by the root, profiled like Istio's
 * Makefile: O=Istio, CN=Intermediate CA, L=<cluster>, SAN DNS:istiod.<ns>.svc, CA:true.
 */
export class IntermediateCa extends pulumi.ComponentResource {
    public readonly certPem: pulumi.Output<string>;
    /** Secret output. */
    public readonly privateKeyPem: pulumi.Output<string>;
    public readonly summary: pulumi.Output<CertificateSummary>;

    constructor(name: string, args: IntermediateCaArgs, opts?: pulumi.ComponentResourceOptions) {
        super("istio-ca:pki:IntermediateCa", name, {}, opts);
        const parent = { parent: this };

        // The key is replaced by a new intermediate version or a new signing root generation.
        const key = privateKey(`${name}-key`, args.key, `root-v${args.root.generation}/intermediate-v${args.version}`, parent);
        const csr = new tls.CertRequest(`${name}-csr`, {
            privateKeyPem: key.privateKeyPem,
            subject: { organization: "Istio", commonName: "Intermediate CA", locality: args.clusterName },
            dnsNames: [`istiod.${args.istioNamespace}.svc`],
        }, parent);
        const cert = new tls.LocallySignedCert(`${name}-cert`, {
            certRequestPem: csr.certRequestPem,
            caCertPem: args.root.certPem,
            caPrivateKeyPem: args.root.privateKeyPem,
            isCaCertificate: true,
            allowedUses: ["cert_signing", "crl_signing", "digital_signature", "key_encipherment"],
            validityPeriodHours: args.validityHours,
            // Checked by the provider when it plans (preview/up, no refresh needed): from
            // notAfter - earlyRenewalHours on, the certificate is replaced (see docs/rotation.md, Expiry).
            earlyRenewalHours: args.earlyRenewalHours,
        }, parent);

        this.certPem = cert.certPem;
        this.privateKeyPem = key.privateKeyPem;
        this.summary = certificateSummary(cert.certPem);
        this.registerOutputs({ certPem: this.certPem, summary: this.summary });
    }
}
