import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import { createHash } from "node:crypto";
import { CacertsFormat, publicKeysOf } from "../../common/cacertsFormat";
import { APPLIED_HASH_ANNOTATION } from "../../plan/takeover";

export interface CacertsSecretArgs {
    namespace: string;
    /** ca-cert.pem: the signing intermediate. */
    caCertPem: pulumi.Input<string>;
    /** ca-key.pem: the intermediate's key (secret). */
    caKeyPem: pulumi.Input<string>;
    /** root-cert.pem: the trust bundle (one or several roots). */
    rootCertPem: pulumi.Input<string>;
    /** cert-chain.pem: intermediate, then its root. */
    certChainPem: pulumi.Input<string>;
    /** sha256 over the public parts as istiod reads them once written (servedContentHash): the backup step gets the same. */
    contentHash: pulumi.Input<string>;
    /** Content hash of a changed cacerts this up overwrites (istio-ca:overwriteChangedCacerts). */
    overwrites?: string;
    /** The layout written (common/cacertsFormat formatToWrite: the one istiod reads from the existing cacerts). */
    format: CacertsFormat;
    /** The existing Secret's type (immutable): kept. Default Opaque. */
    secretType?: string;
}

/** The Secret's data in the layout: the four files, or tls.crt / tls.key / ca.crt (the key wrapped secret). */
function secretData(args: CacertsSecretArgs): Record<string, pulumi.Input<string>> {
    const key = pulumi.secret(args.caKeyPem);
    if (args.format === "istio") {
        return { "ca-cert.pem": args.caCertPem, "ca-key.pem": key, "root-cert.pem": args.rootCertPem, "cert-chain.pem": args.certChainPem };
    }
    const tlsCrt = pulumi.all([args.caCertPem, args.rootCertPem, args.certChainPem])
        .apply(([caCertPem, rootCertPem, certChainPem]) => publicKeysOf("tls", { caCertPem, rootCertPem, certChainPem })["tls.crt"]);
    return { "tls.crt": tlsCrt, "tls.key": key, "ca.crt": args.rootCertPem };
}


/** sha256 of one public value, for triggers that follow only part of cacerts. */
export function sha256(value: string): string {
    return createHash("sha256").update(value).digest("hex");
}

/** The `cacerts` Secret istiod reads, updated in place on every rotation. */
export class CacertsSecret extends pulumi.ComponentResource {
    public readonly secret: k8s.core.v1.Secret;
    /** sha256 over the public parts as istiod reads them once written (see writtenContentHash). */
    public readonly contentHash: pulumi.Output<string>;
    /** sha256 of root-cert.pem: changes when the trust bundle does. */
    public readonly trustBundleHash: pulumi.Output<string>;
    /** sha256 of ca-cert.pem + cert-chain.pem: changes when the signing intermediate does. */
    public readonly signerHash: pulumi.Output<string>;

    constructor(name: string, args: CacertsSecretArgs, opts?: pulumi.ComponentResourceOptions) {
        super("istio-ca:k8s:CacertsSecret", name, {}, opts);
        this.contentHash = pulumi.output(args.contentHash);

        this.secret = new k8s.core.v1.Secret(`${name}-secret`, {
            metadata: {
                name: "cacerts",
                namespace: args.namespace,
                labels: { "app.kubernetes.io/managed-by": "istio-ca" },
                // A cacerts made by hand (kubectl create) owns its data fields: server-side apply
                // refuses to take them over without force. The stack owns cacerts' content (the
                // backup step keeps a copy of whatever was there before).
                // What this apply wrote: the next run tells a hand edit from an up whose gates failed.
                // `overwrites` changes an input, so a changed cacerts is written again.
                annotations: {
                    "pulumi.com/patchForce": "true",
                    [APPLIED_HASH_ANNOTATION]: this.contentHash,
                    ...(args.overwrites ? { "istio-ca/overwrote-content-hash": args.overwrites } : {}),
                },
            },
            // A Secret's type is immutable: a kubernetes.io/tls cacerts (cert-manager's) stays one.
            type: args.secretType ?? "Opaque",
            stringData: secretData(args),
        }, {
            parent: this,
            // A component's dependsOn does not reach its children: the Secret itself waits (for
            // the backup of the current cacerts).
            dependsOn: opts?.dependsOn,
            // `pulumi destroy` leaves cacerts in the cluster: istiod keeps signing with it, as after
            // the manual procedure. Deleting it would make istiod fall back to (or, since 1.27,
            // fail on) its own CA: an outage nobody asked for by tearing down a stack.
            retainOnDelete: true,
        });

        this.trustBundleHash = pulumi.output(args.rootCertPem).apply(sha256);
        this.signerHash = pulumi.all([args.caCertPem, args.certChainPem]).apply(([ca, chain]) => sha256(`${ca}\0${chain}`));
        this.registerOutputs({ contentHash: this.contentHash, trustBundleHash: this.trustBundleHash, signerHash: this.signerHash });
    }
}
