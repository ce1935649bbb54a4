// How root-cert.pem and cert-chain.pem are assembled from root generations. Pure functions on PEM
// strings, shared by the program and the phase tests.

export interface RootPem {
    generation: number;
    certPem: string;
}

function normalize(pem: string): string {
    return pem.trim() + "\n";
}

/**
 * root-cert.pem: every trusted root, oldest generation first. When several roots are trusted and
 * the signing root is not the first one (phase 2 of a zero-downtime rotation: "sign with the new
 * root, still trust both"), the signing root is appended once more. The set of trusted roots is
 * the same as in phase 1, but the bytes differ, and a changed root-cert.pem is what makes Istio's
 * agents fetch fresh certificates (Istio's own rotation test uses A+B+B the same way).
 */
export function trustBundle(trusted: readonly RootPem[], signingGeneration: number): string {
    const ordered = [...trusted].sort((a, b) => a.generation - b.generation);
    const signing = ordered.find((r) => r.generation === signingGeneration);
    if (!signing) {
        throw new Error(`root generation ${signingGeneration} signs but is not among the trusted generations ${ordered.map((r) => r.generation).join(", ")}`);
    }
    const parts = ordered.map((r) => normalize(r.certPem));
    if (ordered.length > 1 && ordered[0].generation !== signingGeneration) {
        parts.push(normalize(signing.certPem));
    }
    return parts.join("");
}

/** cert-chain.pem: the intermediate, then the root that issued it. */
export function certChain(intermediateCertPem: string, signingRootCertPem: string): string {
    return normalize(intermediateCertPem) + normalize(signingRootCertPem);
}
