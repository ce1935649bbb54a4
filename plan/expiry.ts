// Expiry warnings: which certificate of the CA expires within istio-ca:expiryWarningDays, when, and
// the exact change that renews it. Pure functions of the certificate facts and the clock; the
// program (components/expiry.ts) emits them with pulumi.log.warn in preview and up.

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** Which certificate, and where it comes from: decides what renews it. */
export type WatchedCertificate =
    | { kind: "intermediate"; intermediateVersion: number; earlyRenewalHours: number }
    /** A root this stack makes (RootCa), a cluster stack's own or a root stack's. */
    | { kind: "root"; generation: number; signing: boolean; source: "generate" | "root-stack-role" }
    /** A generation read from a root stack (istio-ca:rootStack). */
    | { kind: "root"; generation: number; signing: boolean; source: "stack"; rootStack: string }
    /** istio-ca:rootCertPem. */
    | { kind: "root"; generation: number; signing: boolean; source: "external" }
    /** Generation 0: istiod's own self-signed CA (istio-ca-secret), kept while moving off it. */
    | { kind: "root"; generation: number; signing: boolean; source: "istiod" };

export interface ExpiryContext {
    /** istio-ca:expiryWarningDays; 0 disables the warnings. */
    windowDays: number;
    /** The stack the advice names (`npm run rotate -- --stack <stack>`). */
    stack: string;
    now?: number;
}

/** `signing root v2`, `trusted root v1`, `intermediate v3`. */
export function certificateLabel(cert: WatchedCertificate): string {
    if (cert.kind === "intermediate") {
        return `intermediate v${cert.intermediateVersion}`;
    }
    if (cert.source === "istiod") {
        return `istiod's self-signed CA (generation ${cert.generation}, istio-ca-secret)`;
    }
    const role = cert.source === "root-stack-role" ? "root" : cert.signing ? "signing root" : "trusted root";
    return `${role} v${cert.generation}`;
}

/** The config change (and command) that replaces this certificate. */
export function renewalAdvice(cert: WatchedCertificate, stack: string, notAfterMs: number): string {
    if (cert.kind === "intermediate") {
        const bump = `\`pulumi config set istio-ca:intermediateVersion ${cert.intermediateVersion + 1} -s ${stack}\` then \`pulumi up\` ` +
            "(a new intermediate under the same root; workloads re-sign, no outage)";
        if (cert.earlyRenewalHours === 0) {
            return `renew it: ${bump}; istio-ca:earlyRenewalHours is 0, so nothing renews it automatically`;
        }
        const from = new Date(notAfterMs - cert.earlyRenewalHours * HOUR_MS).toISOString();
        return `renew it now: ${bump}; otherwise istio-ca:earlyRenewalHours (${cert.earlyRenewalHours}) renews it on the first \`pulumi up\` from ${from}`;
    }
    const next = cert.generation + 1;
    switch (cert.source) {
        case "generate":
            return cert.signing
                ? `rotate the root without an outage: \`npm run rotate -- --stack ${stack}\` (phases trust, sign, complete: istio-ca:keyVersion ${next})`
                : `it is only trusted (istio-ca:trustedKeyVersions): finish the rotation with \`npm run rotate -- --stack ${stack}\`, whose last phase removes it`;
        case "root-stack-role":
            return `add generation ${next} here (istio-ca:trustedKeyVersions [${cert.generation}, ${next}], \`pulumi up -s ${stack}\`), ` +
                "then rotate every cluster stack to it (docs/multicluster.md)";
        case "stack":
            return cert.signing
                ? `rotate the shared root: add generation ${next} to the root stack ${cert.rootStack} and \`pulumi up\` it, ` +
                  `then \`npm run rotate -- --stack ${stack} --to ${next}\` on every cluster stack (docs/multicluster.md)`
                : `it is only trusted (istio-ca:trustedKeyVersions): finish the rotation with \`npm run rotate -- --stack ${stack}\`, whose last phase removes it`;
        case "istiod":
            return `move the mesh to a root of this stack without an outage: \`npm run rotate -- --stack ${stack}\``;
        case "external":
            return `issue a new root, then set istio-ca:rootCertPem and istio-ca:rootKeyPem (--secret) to it and istio-ca:keyVersion to ${next} ` +
                "(an immediate swap: docs/rotation.md)";
    }
}

/** "3 day(s) 4 hour(s)" or "5 hour(s)". */
function remaining(ms: number): string {
    const days = Math.floor(ms / DAY_MS);
    const hours = Math.floor((ms % DAY_MS) / HOUR_MS);
    return days > 0 ? `${days} day(s) ${hours} hour(s)` : `${hours} hour(s)`;
}

/**
 * The warning for one certificate, or undefined when it is valid beyond the window (or the window
 * is 0). `notAfter` is ISO 8601, as in the stack outputs.
 */
export function expiryWarning(cert: WatchedCertificate, notAfter: string, ctx: ExpiryContext): string | undefined {
    if (ctx.windowDays <= 0) {
        return undefined;
    }
    const now = ctx.now ?? Date.now();
    const end = new Date(notAfter).getTime();
    const left = end - now;
    if (left >= ctx.windowDays * DAY_MS) {
        return undefined;
    }
    const when = left <= 0
        ? `EXPIRED on ${notAfter}`
        : `expires in ${remaining(left)}, on ${notAfter}`;
    return `${certificateLabel(cert)} ${when} (within istio-ca:expiryWarningDays ${ctx.windowDays}): ${renewalAdvice(cert, ctx.stack, end)}`;
}
