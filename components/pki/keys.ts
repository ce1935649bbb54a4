import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { KeySpec } from "../../plan/config";

/**
 * A tls.PrivateKey of the configured algorithm. `generation` goes into replacementTrigger, so a new
 * generation number replaces the key (and, through the CSR/cert inputs, everything signed with it).
 */
export function privateKey(name: string, key: KeySpec, generation: string, opts: pulumi.CustomResourceOptions): tls.PrivateKey {
    return new tls.PrivateKey(
        name,
        key.algorithm === "RSA" ? { algorithm: "RSA", rsaBits: key.rsaBits } : { algorithm: "ECDSA", ecdsaCurve: key.ecdsaCurve },
        { ...opts, replacementTrigger: generation },
    );
}
