// The contract between the program (which declares the step commands) and the step entry point
// (which runs them): the command's environment for what cacerts is (a change re-runs the step),
// and the stack's settings file for how to run (read at run time: a change re-runs nothing).
// Nothing travels in the command string, so nothing is interpolated into a shell; none of it is secret.
import { bundleFingerprints } from "../common/pem";

/** Relative to the project root, where the command provider runs commands. */
export const STEP_ENTRY_POINT = "dist/lib/cli/main.js";

export type StepName = "restart-istiod" | "wait-root-cert" | "restart-workloads" | "verify-proxies" | "verify-workload-certs";
/** In the order they run. */
export const STEP_NAMES: readonly StepName[] = ["restart-istiod", "wait-root-cert", "restart-workloads", "verify-proxies", "verify-workload-certs"];
/** The commands' `update` (`main.js unchanged <step>`): inputs changed but not cacerts, so nothing runs. */
export const UNCHANGED = "unchanged";
/** Runs before cacerts changes (components/cacerts/cacertsBackup.ts), not after it like the others. */
export const BACKUP_STEP = "backup-cacerts";
export type BackupStepName = typeof BACKUP_STEP;

/** The public parts of cacerts a step compares the mesh with (only the steps that compare get them). */
export interface ExpectedCa {
    /** root-cert.pem (public). */
    trustBundlePem?: string;
    /** ca-cert.pem (public). */
    signingCertPem?: string;
}

/** Which public parts of cacerts each step compares with: its environment depends on nothing else. */
export const STEP_NEEDS: Record<StepName, (keyof ExpectedCa)[]> = {
    "restart-istiod": [],
    "wait-root-cert": ["trustBundlePem"],
    "restart-workloads": [],
    "verify-proxies": [],
    "verify-workload-certs": ["trustBundlePem", "signingCertPem"],
};

function need(expected: ExpectedCa, key: keyof ExpectedCa, step: StepName | BackupStepName): string {
    const value = expected[key];
    if (value === undefined) {
        throw new Error(`step ${step} needs ${key}`);
    }
    return value;
}

export interface StepSettings {
    kubectl: string;
    istioctl: string;
    /** istioctl --xds-address (undefined: istioctl port-forwards to istiod). */
    istioctlXdsAddress?: string;
    kubeconfig?: string;
    context?: string;
    istioNamespace: string;
    istiodSelector: string;
    /** SHA-256 (hex) of each root root-cert.pem must carry. */
    trustFingerprints: string[];
    signingCertPem?: string;
    trustBundlePem?: string;
    workloadNamespaces?: string[];
    concurrency: number;
    rootCertTimeoutMs: number;
    rolloutTimeoutMs: number;
    proxyStatusTimeoutMs: number;
    workloadCertTimeoutMs: number;
    pollIntervalMs: number;
    /** backup-cacerts: where backups live, how many to keep, and the one a restore reads (never pruned). */
    backup?: { namespace: string; keep: number; restoreFrom?: string };
}

/**
 * The part of the stack's config the steps depend on (plan/config.ts IstioCaConfig has these
 * fields): declared here so that the step runtime imports nothing of the program's.
 */
export interface StepConfig {
    istioNamespace: string;
    backupNamespace: string;
    keepBackups: number;
    restoreCacertsFrom?: string;
    kubectlPath: string;
    istioctlPath: string;
    istioctlXdsAddress?: string;
    kubeconfig?: string;
    kubeContext?: string;
    istiodSelector: string;
    workloadNamespaces?: string[];
    restartConcurrency: number;
    verify: { rootCertTimeoutSeconds: number; rolloutTimeoutSeconds: number; proxyStatusTimeoutSeconds: number; workloadCertTimeoutSeconds: number };
}

const E = {
    istioNamespace: "ISTIO_CA_ISTIO_NAMESPACE",
    trustFingerprints: "ISTIO_CA_TRUST_FINGERPRINTS",
    signingCertPem: "ISTIO_CA_SIGNING_CERT_PEM",
    trustBundlePem: "ISTIO_CA_TRUST_BUNDLE_PEM",
    pollInterval: "ISTIO_CA_POLL_INTERVAL_MS",
    backupNamespace: "ISTIO_CA_BACKUP_NAMESPACE",
    keepBackups: "ISTIO_CA_KEEP_BACKUPS",
    restoreFrom: "ISTIO_CA_RESTORE_FROM",
} as const;

/**
 * Program side: the environment of one step command, which the command provider diffs (a change
 * re-runs the command). So it holds only what cacerts is: where it lives and the public parts the
 * step compares with. How the step runs (tools, cluster access, timeouts, concurrency, namespaces)
 * is in the stack's settings file (runSettings), read when the step runs: editing it re-runs nothing.
 */
export function stepEnvironment(config: StepConfig, expected: ExpectedCa, step: StepName | BackupStepName): Record<string, string> {
    const env: Record<string, string> = { [E.istioNamespace]: config.istioNamespace };
    switch (step) {
        case "wait-root-cert":
            env[E.trustFingerprints] = bundleFingerprints(need(expected, "trustBundlePem", step), "root-cert.pem").join(",");
            break;
        case "verify-workload-certs":
            // Only this step compares certificates (public ones: ca-cert.pem and root-cert.pem).
            env[E.signingCertPem] = need(expected, "signingCertPem", step);
            env[E.trustBundlePem] = need(expected, "trustBundlePem", step);
            break;
        case BACKUP_STEP:
            // Reads and copies cacerts, prunes old backups: the namespaces, how many to keep, which
            // backup a restore reads (never pruned).
            env[E.backupNamespace] = config.backupNamespace;
            env[E.keepBackups] = String(config.keepBackups);
            if (config.restoreCacertsFrom) {
                env[E.restoreFrom] = config.restoreCacertsFrom;
            }
            break;
        default:
            break;
    }
    return env;
}

/** How the steps run: written by the program into the stack directory, read by each step at run time. */
export interface RunSettings {
    kubectl: string;
    istioctl: string;
    /** istioctl --xds-address (absent: istioctl port-forwards to istiod). */
    istioctlXdsAddress?: string;
    kubeconfig?: string;
    context?: string;
    istiodSelector: string;
    workloadNamespaces?: string[];
    concurrency: number;
    rootCertTimeoutSeconds: number;
    rolloutTimeoutSeconds: number;
    proxyStatusTimeoutSeconds: number;
    workloadCertTimeoutSeconds: number;
}

export function runSettings(config: StepConfig): RunSettings {
    return {
        kubectl: config.kubectlPath,
        istioctl: config.istioctlPath,
        ...(config.istioctlXdsAddress ? { istioctlXdsAddress: config.istioctlXdsAddress } : {}),
        ...(config.kubeconfig ? { kubeconfig: config.kubeconfig } : {}),
        ...(config.kubeContext ? { context: config.kubeContext } : {}),
        istiodSelector: config.istiodSelector,
        ...(config.workloadNamespaces ? { workloadNamespaces: config.workloadNamespaces } : {}),
        concurrency: config.restartConcurrency,
        rootCertTimeoutSeconds: config.verify.rootCertTimeoutSeconds,
        rolloutTimeoutSeconds: config.verify.rolloutTimeoutSeconds,
        proxyStatusTimeoutSeconds: config.verify.proxyStatusTimeoutSeconds,
        workloadCertTimeoutSeconds: config.verify.workloadCertTimeoutSeconds,
    };
}

function required(env: NodeJS.ProcessEnv, name: string): string {
    const value = env[name];
    if (value === undefined || value === "") {
        throw new Error(`environment variable ${name} is not set: this entry point is run by the istio-ca program's commands`);
    }
    return value;
}

function positiveMs(seconds: number | undefined, name: string, def: number): number {
    const value = Number(seconds ?? def);
    if (!Number.isFinite(value) || value <= 0) {
        throw new Error(`step setting ${name} must be a positive number, got ${JSON.stringify(seconds)}`);
    }
    return value * 1000;
}

const list = (value: string | undefined): string[] | undefined =>
    value === undefined || value === "" ? undefined : value.split(",").map((s) => s.trim()).filter((s) => s !== "");

function backupSettings(env: NodeJS.ProcessEnv): StepSettings["backup"] {
    const namespace = env[E.backupNamespace];
    if (!namespace) {
        return undefined;
    }
    const keep = Number(env[E.keepBackups]);
    if (!Number.isInteger(keep) || keep < 1) {
        throw new Error(`environment variable ${E.keepBackups} must be an integer >= 1 (istio-ca:keepBackups), got ${JSON.stringify(env[E.keepBackups])}`);
    }
    return { namespace, keep, restoreFrom: env[E.restoreFrom] || undefined };
}

/** Step side: settings from the command's environment (cacerts) and the stack's settings file (how to run). */
export function readStepSettings(env: NodeJS.ProcessEnv, run: Partial<RunSettings> = {}): StepSettings {
    return {
        kubectl: run.kubectl || "kubectl",
        istioctl: run.istioctl || "istioctl",
        istioctlXdsAddress: run.istioctlXdsAddress || undefined,
        kubeconfig: run.kubeconfig || undefined,
        context: run.context || undefined,
        istioNamespace: required(env, E.istioNamespace),
        istiodSelector: run.istiodSelector || "app=istiod",
        trustFingerprints: list(env[E.trustFingerprints]) ?? [],
        signingCertPem: env[E.signingCertPem] || undefined,
        trustBundlePem: env[E.trustBundlePem] || undefined,
        workloadNamespaces: run.workloadNamespaces && run.workloadNamespaces.length > 0 ? run.workloadNamespaces : undefined,
        concurrency: Math.max(1, Number(run.concurrency ?? 10) || 10),
        rootCertTimeoutMs: positiveMs(run.rootCertTimeoutSeconds, "rootCertTimeoutSeconds", 300),
        rolloutTimeoutMs: positiveMs(run.rolloutTimeoutSeconds, "rolloutTimeoutSeconds", 600),
        proxyStatusTimeoutMs: positiveMs(run.proxyStatusTimeoutSeconds, "proxyStatusTimeoutSeconds", 300),
        workloadCertTimeoutMs: positiveMs(run.workloadCertTimeoutSeconds, "workloadCertTimeoutSeconds", 300),
        pollIntervalMs: Number(env[E.pollInterval] ?? 1000) || 1000,
        backup: backupSettings(env),
    };
}
