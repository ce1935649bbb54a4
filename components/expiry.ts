import * as pulumi from "@pulumi/pulumi";
import { ExpiryContext, expiryWarning, WatchedCertificate } from "../plan/expiry";
import { IstioCaConfig, SELF_SIGNED_GENERATION } from "../plan/config";
import { CertificateSummary } from "./pki/summary";

/**
 * The summary, unchanged, that warns (once, when it resolves) if its certificate expires within
 * istio-ca:expiryWarningDays. Chained into the stack outputs so the warning is always emitted
 * before the run ends. A certificate being replaced in this run has no known value in preview
 * (nothing to warn about: the preview shows its replacement); in up it resolves to the new one.
 */
export function warnOnExpiry(summary: pulumi.Output<CertificateSummary>, cert: WatchedCertificate, ctx: ExpiryContext): pulumi.Output<CertificateSummary> {
    return summary.apply((s) => {
        const warning = expiryWarning(cert, s.notAfter, ctx);
        if (warning) {
            pulumi.log.warn(warning);
        }
        return s;
    });
}

/** A root generation as the expiry warning describes it (where it comes from decides what renews it). */
export function watchedRoot(config: IstioCaConfig, generation: number): WatchedCertificate {
    const signing = generation === config.keyVersion;
    if (generation === SELF_SIGNED_GENERATION) {
        return { kind: "root", generation, signing, source: "istiod" };
    }
    if (config.role === "root") {
        return { kind: "root", generation, signing, source: "root-stack-role" };
    }
    switch (config.rootSource.kind) {
        case "stack":
            return { kind: "root", generation, signing, source: "stack", rootStack: config.rootSource.stack };
        case "external":
            return { kind: "root", generation, signing, source: "external" };
        default:
            return { kind: "root", generation, signing, source: "generate" };
    }
}

export function expiryContext(config: IstioCaConfig): ExpiryContext {
    return { windowDays: config.expiryWarningDays, stack: pulumi.getStack() };
}
