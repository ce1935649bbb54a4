// The contract between the program (which declares the step commands) and the step entry point
// (which runs them): environment variables only. Values travel in the environment, never in the
// command string, so nothing is interpolated into a shell; none of them is secret.
import type { IstioCaConfig } from "../components/config";
import { bundleFingerprints } from "./pem";

/** Relative to the project root, where the command provider runs commands. */
export const STEP_ENTRY_POINT = "dist/lib/cli/main.js";

export type StepName = "restart-istiod" | "wait-root-cert" | "restart-workloads" | "verify-proxies" | "verify-workload-certs";
/** In the order they run. */
export const STEP_NAMES: readonly StepName[] = ["restart-istiod", "wait-root-cert", "restart-workloads", "verify-proxies", "verify-workload-certs"];
/** Runs before cacerts changes (components/cacertsBackup.ts), not after it like the others. */
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

const E = {
    kubectl: "ISTIO_CA_KUBECTL",
    istioctl: "ISTIO_CA_ISTIOCTL",
    kubeconfig: "ISTIO_CA_KUBECONFIG",
    context: "ISTIO_CA_CONTEXT",
    istioNamespace: "ISTIO_CA_ISTIO_NAMESPACE",
    istiodSelector: "ISTIO_CA_ISTIOD_SELECTOR",
    trustFingerprints: "ISTIO_CA_TRUST_FINGERPRINTS",
    signingCertPem: "ISTIO_CA_SIGNING_CERT_PEM",
    trustBundlePem: "ISTIO_CA_TRUST_BUNDLE_PEM",
    workloadNamespaces: "ISTIO_CA_WORKLOAD_NAMESPACES",
    concurrency: "ISTIO_CA_CONCURRENCY",
    rootCertTimeout: "ISTIO_CA_ROOT_CERT_TIMEOUT_SECONDS",
    rolloutTimeout: "ISTIO_CA_ROLLOUT_TIMEOUT_SECONDS",
    proxyStatusTimeout: "ISTIO_CA_PROXY_STATUS_TIMEOUT_SECONDS",
    workloadCertTimeout: "ISTIO_CA_WORKLOAD_CERT_TIMEOUT_SECONDS",
    pollInterval: "ISTIO_CA_POLL_INTERVAL_MS",
    backupNamespace: "ISTIO_CA_BACKUP_NAMESPACE",
    keepBackups: "ISTIO_CA_KEEP_BACKUPS",
    restoreFrom: "ISTIO_CA_RESTORE_FROM",
} as const;

/**
 * Program side: the environment of one step command. Each step gets only what it uses, so that
 * changing, say, the proxy-status timeout does not count as a change of the restart steps (a
 * changed environment re-runs a command).
 */
export function stepEnvironment(config: IstioCaConfig, expected: ExpectedCa, step: StepName | BackupStepName): Record<string, string> {
    const env: Record<string, string> = {
        [E.kubectl]: config.kubectlPath,
        [E.istioNamespace]: config.istioNamespace,
        [E.istiodSelector]: config.istiodSelector,
    };
    if (config.kubeconfig) {
        env[E.kubeconfig] = config.kubeconfig;
    }
    if (config.kubeContext) {
        env[E.context] = config.kubeContext;
    }
    const workloads = (): void => {
        env[E.concurrency] = String(config.restartConcurrency);
        if (config.workloadNamespaces) {
            env[E.workloadNamespaces] = config.workloadNamespaces.join(",");
        }
    };
    switch (step) {
        case "restart-istiod":
            env[E.rolloutTimeout] = String(config.verify.rolloutTimeoutSeconds);
            break;
        case "wait-root-cert":
            env[E.trustFingerprints] = bundleFingerprints(need(expected, "trustBundlePem", step), "root-cert.pem").join(",");
            env[E.rootCertTimeout] = String(config.verify.rootCertTimeoutSeconds);
            break;
        case "restart-workloads":
            workloads();
            env[E.rolloutTimeout] = String(config.verify.rolloutTimeoutSeconds);
            break;
        case "verify-proxies":
            env[E.istioctl] = config.istioctlPath;
            env[E.proxyStatusTimeout] = String(config.verify.proxyStatusTimeoutSeconds);
            break;
        case "verify-workload-certs":
            // Only this step compares certificates (public ones: ca-cert.pem and root-cert.pem).
            workloads();
            env[E.istioctl] = config.istioctlPath;
            env[E.signingCertPem] = need(expected, "signingCertPem", step);
            env[E.trustBundlePem] = need(expected, "trustBundlePem", step);
            env[E.workloadCertTimeout] = String(config.verify.workloadCertTimeoutSeconds);
            break;
        case BACKUP_STEP:
            // Reads and copies cacerts, prunes old backups: the namespaces, how many to keep, which
            // backup a restore reads (never pruned), and how to reach the cluster.
            delete env[E.istiodSelector];
            env[E.backupNamespace] = config.backupNamespace;
            env[E.keepBackups] = String(config.keepBackups);
            if (config.restoreCacertsFrom) {
                env[E.restoreFrom] = config.restoreCacertsFrom;
            }
            break;
    }
    return env;
}

function required(env: NodeJS.ProcessEnv, name: string): string {
    const value = env[name];
    if (value === undefined || value === "") {
        throw new Error(`environment variable ${name} is not set: this entry point is run by the istio-ca program's commands`);
    }
    return value;
}

function seconds(env: NodeJS.ProcessEnv, name: string, def: number): number {
    const value = Number(env[name] ?? def);
    if (!Number.isFinite(value) || value <= 0) {
        throw new Error(`environment variable ${name} must be a positive number, got ${JSON.stringify(env[name])}`);
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

/** Step side: settings from the environment the program gave the command. */
export function readStepSettings(env: NodeJS.ProcessEnv): StepSettings {
    return {
        kubectl: env[E.kubectl] || "kubectl",
        istioctl: env[E.istioctl] || "istioctl",
        kubeconfig: env[E.kubeconfig] || undefined,
        context: env[E.context] || undefined,
        istioNamespace: required(env, E.istioNamespace),
        istiodSelector: env[E.istiodSelector] || "app=istiod",
        trustFingerprints: list(env[E.trustFingerprints]) ?? [],
        signingCertPem: env[E.signingCertPem] || undefined,
        trustBundlePem: env[E.trustBundlePem] || undefined,
        workloadNamespaces: list(env[E.workloadNamespaces]),
        concurrency: Math.max(1, Number(env[E.concurrency] ?? 10) || 10),
        rootCertTimeoutMs: seconds(env, E.rootCertTimeout, 300),
        rolloutTimeoutMs: seconds(env, E.rolloutTimeout, 600),
        proxyStatusTimeoutMs: seconds(env, E.proxyStatusTimeout, 300),
        workloadCertTimeoutMs: seconds(env, E.workloadCertTimeout, 300),
        pollIntervalMs: Number(env[E.pollInterval] ?? 1000) || 1000,
        backup: backupSettings(env),
    };
}
