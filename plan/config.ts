// The stack's configuration, read and validated in one place. Every other module receives a typed
// IstioCaConfig; nothing else calls pulumi.Config. Invalid values fail here, before any resource is
// registered, with the full config key in the message.
import * as pulumi from "@pulumi/pulumi";

export const CONFIG_NAMESPACE = "istio-ca";

/**
 * Root generation 0: the self-signed CA istiod makes for itself when it finds no cacerts, kept in
 * the Secret istio-ca-secret. It is read from the cluster, never made here; trusting it next to a
 * new root is how a mesh moves to plugged-in certificates without an outage.
 */
export const SELF_SIGNED_GENERATION = 0;

/** Backups of cacerts (steps/backupCacerts.ts) live here unless istio-ca:backupNamespace says otherwise. */
export const DEFAULT_BACKUP_NAMESPACE = "istio-ca-backups";
/** istio-ca:keepBackups: the backups kept (each holds a signing key; the most recent first). */
export const DEFAULT_KEEP_BACKUPS = 3;

export type KeyAlgorithm = "RSA" | "ECDSA";
export type EcdsaCurve = "P256" | "P384";

export interface KeySpec {
    algorithm: KeyAlgorithm;
    /** Only for RSA. */
    rsaBits?: 2048 | 3072 | 4096;
    /** Only for ECDSA. */
    ecdsaCurve?: EcdsaCurve;
}

export interface VerificationConfig {
    /** Wait until istio-ca-root-cert in every namespace holds the new trust bundle. */
    rootCertConfigMaps: boolean;
    /** Require every proxy SYNCED in `istioctl proxy-status`. */
    proxyStatus: boolean;
    /** Require every workload's certificate issued by the current intermediate and its ROOTCA = root-cert.pem. */
    workloadCertificates: boolean;
    workloadCertTimeoutSeconds: number;
    rootCertTimeoutSeconds: number;
    rolloutTimeoutSeconds: number;
    proxyStatusTimeoutSeconds: number;
}

/** Where the root generations come from. */
export type RootSource =
    /** This stack makes and owns them (tls resources). */
    | { kind: "generate" }
    /** A root stack of this project (istio-ca:role root), read through a StackReference. */
    | { kind: "stack"; stack: string }
    /** An external (e.g. offline) root: istio-ca:rootCertPem + istio-ca:rootKeyPem (secret). */
    | { kind: "external"; certPem: string; keyPem: string };

export interface IstioCaConfig {
    /** `cluster`: manages one cluster's cacerts. `root`: only owns root generations for cluster stacks. */
    role: "cluster" | "root";
    rootSource: RootSource;
    clusterName: string;
    istioNamespace: string;
    /** Root generation that signs (through its intermediate). */
    keyVersion: number;
    /** Root generations whose certificates root-cert.pem carries. Always contains keyVersion. */
    trustedKeyVersions: number[];
    intermediateVersion: number;
    key: KeySpec;
    rootValidityHours: number;
    intermediateValidityHours: number;
    /** Renew the intermediate on the first `up` this many hours before its notAfter (0: never early). */
    earlyRenewalHours: number;
    /** Warn in preview and up about a certificate expiring within this many days (0: no warnings). */
    expiryWarningDays: number;
    kubeconfig?: string;
    kubeContext?: string;
    /** Label selector of the istiod Deployments to restart. */
    istiodSelector: string;
    /** Explicit workload namespaces; absent: every namespace labelled for injection. */
    workloadNamespaces?: string[];
    restartConcurrency: number;
    /** After an intermediate-only rotation istiod hot-reloads cacerts (1.19+): restart it anyway? */
    restartIstiodOnIntermediateRotation: boolean;
    /** After an intermediate-only rotation, restart the workloads so they re-sign now? */
    restartWorkloadsOnIntermediateRotation: boolean;
    kubectlPath: string;
    istioctlPath: string;
    /** istioctl --xds-address: istiod's xDS address, instead of a port-forward to its pod. */
    istioctlXdsAddress?: string;
    verify: VerificationConfig;
    /** A backup Secret (Istio namespace) whose four files cacerts gets instead of the generated ones: a rollback. */
    restoreCacertsFrom?: string;
    /** At takeover, back up and replace an existing cacerts that is not a complete Istio CA (else: refuse). */
    replaceInvalidCacerts: boolean;
    /** A new value re-runs the restarts (and the checks after them) with cacerts unchanged. */
    restartRequest?: string;
    /** Allow a root swap without trust overlap (a bare keyVersion bump, a root changed under its generation): else refused. */
    allowImmediateRootSwap: boolean;
    /** Back up and overwrite a cacerts that changed outside this stack since its last up (else: refused). */
    overwriteChangedCacerts: boolean;
    /** Where the backups of cacerts live: a namespace of their own, so that creating and pruning them needs no Secret rights in the Istio namespace. */
    backupNamespace: string;
    /** How many backups (the most recent) the backup step keeps; older ones are deleted. */
    keepBackups: number;
}

/** Raw string values by key (without the namespace), as stack config holds them. */
export type RawConfig = (key: string) => string | undefined;

class Problems {
    readonly list: string[] = [];
    add(key: string, message: string): void {
        this.list.push(`${CONFIG_NAMESPACE}:${key} ${message}`);
    }
}

export class ConfigError extends Error {
    constructor(readonly problems: string[]) {
        super(`invalid stack configuration:\n  - ${problems.join("\n  - ")}`);
        this.name = "ConfigError";
    }
}

function integer(raw: RawConfig, p: Problems, key: string, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const value = raw(key);
    if (value === undefined || value === "") {
        return def;
    }
    if (!/^-?\d+$/.test(value.trim())) {
        p.add(key, `must be an integer, got ${JSON.stringify(value)}`);
        return def;
    }
    const n = Number(value);
    if (n < min || n > max) {
        p.add(key, `must be between ${min} and ${max}, got ${n}`);
        return def;
    }
    return n;
}

function boolean(raw: RawConfig, p: Problems, key: string, def: boolean): boolean {
    const value = raw(key);
    if (value === undefined || value === "") {
        return def;
    }
    if (value === "true" || value === "false") {
        return value === "true";
    }
    p.add(key, `must be true or false, got ${JSON.stringify(value)}`);
    return def;
}

function oneOf<T extends string>(raw: RawConfig, p: Problems, key: string, def: T, allowed: readonly T[]): T {
    const value = raw(key);
    if (value === undefined || value === "") {
        return def;
    }
    if (!(allowed as readonly string[]).includes(value)) {
        p.add(key, `must be one of ${allowed.join(", ")}, got ${JSON.stringify(value)}`);
        return def;
    }
    return value as T;
}

function optionalString(raw: RawConfig, key: string): string | undefined {
    const value = raw(key);
    return value === undefined || value.trim() === "" ? undefined : value.trim();
}

function list(raw: RawConfig, p: Problems, key: string): unknown[] | undefined {
    const value = raw(key);
    if (value === undefined || value === "") {
        return undefined;
    }
    try {
        const parsed: unknown = JSON.parse(value);
        if (Array.isArray(parsed)) {
            // Pulumi.yaml declares lists with default [] (a declared key without a default is
            // required): an empty list means "not set".
            return parsed.length === 0 ? undefined : parsed;
        }
    } catch {
        // fall through to the error below
    }
    p.add(key, `must be a list, got ${JSON.stringify(value)}`);
    return undefined;
}

// RFC 1123 label: what Kubernetes accepts as a namespace name.
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

// RFC 1123 subdomain: what Kubernetes accepts as a Secret name.
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function secretName(p: Problems, key: string, value: string | undefined): string | undefined {
    if (value !== undefined && (value.length > 253 || !DNS_SUBDOMAIN.test(value))) {
        p.add(key, `must be the name of a Secret in istio-ca:backupNamespace (lower-case RFC 1123 subdomain, e.g. cacerts-backup-0123456789ab), got ${JSON.stringify(value)}`);
        return undefined;
    }
    if (value === "cacerts") {
        p.add(key, "must name a backup (e.g. cacerts-backup-0123456789ab), not cacerts itself");
        return undefined;
    }
    return value;
}

function namespaceName(p: Problems, key: string, value: string): boolean {
    if (value.length > 63 || !DNS_LABEL.test(value)) {
        p.add(key, `must be a Kubernetes namespace name (lower-case RFC 1123 label), got ${JSON.stringify(value)}`);
        return false;
    }
    return true;
}

/** Validates raw stack config. Throws ConfigError listing every problem at once. */
export function parseConfig(raw: RawConfig): IstioCaConfig {
    const p = new Problems();
    const role = oneOf<"cluster" | "root">(raw, p, "role", "cluster", ["cluster", "root"]);
    const clusterName = parseClusterName(raw, p, role);
    const istioNamespace = optionalString(raw, "istioNamespace") ?? "istio-system";
    namespaceName(p, "istioNamespace", istioNamespace);
    const generations = parseGenerations(raw, p);
    const key = parseKeySpec(raw, p);
    const validity = parseValidity(raw, p, role);
    const workloadNamespaces = parseWorkloadNamespaces(raw, p, istioNamespace);
    const rootSource = parseRootSource(raw, p, role, generations);
    const backupNamespace = optionalString(raw, "backupNamespace") ?? DEFAULT_BACKUP_NAMESPACE;
    namespaceName(p, "backupNamespace", backupNamespace);

    const config: IstioCaConfig = {
        role,
        rootSource,
        clusterName,
        istioNamespace,
        ...generations,
        key,
        ...validity,
        kubeconfig: optionalString(raw, "kubeconfig"),
        kubeContext: optionalString(raw, "kubeContext"),
        istiodSelector: optionalString(raw, "istiodSelector") ?? "app=istiod",
        workloadNamespaces,
        restartConcurrency: integer(raw, p, "restartConcurrency", 10, 1, 200),
        restartIstiodOnIntermediateRotation: boolean(raw, p, "restartIstiodOnIntermediateRotation", false),
        restartWorkloadsOnIntermediateRotation: boolean(raw, p, "restartWorkloadsOnIntermediateRotation", true),
        kubectlPath: optionalString(raw, "kubectlPath") ?? "kubectl",
        istioctlPath: optionalString(raw, "istioctlPath") ?? "istioctl",
        istioctlXdsAddress: optionalString(raw, "istioctlXdsAddress"),
        verify: {
            rootCertConfigMaps: boolean(raw, p, "verifyRootCertConfigMaps", true),
            proxyStatus: boolean(raw, p, "verifyProxyStatus", true),
            workloadCertificates: boolean(raw, p, "verifyWorkloadCertificates", true),
            workloadCertTimeoutSeconds: integer(raw, p, "workloadCertTimeoutSeconds", 300, 1, 86400),
            rootCertTimeoutSeconds: integer(raw, p, "rootCertTimeoutSeconds", 300, 1, 86400),
            rolloutTimeoutSeconds: integer(raw, p, "rolloutTimeoutSeconds", 600, 1, 86400),
            proxyStatusTimeoutSeconds: integer(raw, p, "proxyStatusTimeoutSeconds", 300, 1, 86400),
        },
        restoreCacertsFrom: secretName(p, "restoreCacertsFrom", optionalString(raw, "restoreCacertsFrom")),
        replaceInvalidCacerts: boolean(raw, p, "replaceInvalidCacerts", false),
        restartRequest: optionalString(raw, "restartRequest"),
        allowImmediateRootSwap: boolean(raw, p, "allowImmediateRootSwap", false),
        overwriteChangedCacerts: boolean(raw, p, "overwriteChangedCacerts", false),
        backupNamespace,
        keepBackups: integer(raw, p, "keepBackups", DEFAULT_KEEP_BACKUPS, 1, 1000),
    };

    if (p.list.length > 0) {
        throw new ConfigError(p.list);
    }
    return config;
}

function parseClusterName(raw: RawConfig, p: Problems, role: "cluster" | "root"): string {
    const clusterName = (raw("clusterName") ?? "").trim();
    if (clusterName === "" && role === "cluster") {
        p.add("clusterName", "is required: a non-empty name of this cluster (it goes into the intermediate's L= attribute)");
    } else if (/[,+=<>#;"\\]/.test(clusterName)) {
        p.add("clusterName", `must not contain X.509 DN special characters (, + = < > # ; " \\), got ${JSON.stringify(clusterName)}`);
    }
    return clusterName;
}

type Generations = Pick<IstioCaConfig, "keyVersion" | "trustedKeyVersions" | "intermediateVersion">;

/** The root generations: which signs, which root-cert.pem trusts, and the intermediate's. */
function parseGenerations(raw: RawConfig, p: Problems): Generations {
    // Generation 0 is istiod's own self-signed CA (istio-ca-secret): the start of a migration.
    const keyVersion = integer(raw, p, "keyVersion", 1, 0);
    const intermediateVersion = integer(raw, p, "intermediateVersion", 1, 1);
    let trustedKeyVersions = [keyVersion];
    const trusted = list(raw, p, "trustedKeyVersions");
    if (trusted !== undefined) {
        const ok = trusted.every((v) => Number.isInteger(v) && (v as number) >= 0);
        if (!ok) {
            p.add("trustedKeyVersions", `must be a non-empty list of integers >= 0 (0: istiod's self-signed CA), got ${JSON.stringify(trusted)}`);
        } else if (new Set(trusted).size !== trusted.length) {
            p.add("trustedKeyVersions", `must not repeat a version, got ${JSON.stringify(trusted)}`);
        } else if (!trusted.includes(keyVersion)) {
            p.add("trustedKeyVersions", `must include keyVersion (${keyVersion}): root-cert.pem has to trust the root that signs, got ${JSON.stringify(trusted)}`);
        } else {
            trustedKeyVersions = [...(trusted as number[])].sort((a, b) => a - b);
        }
    }
    return { keyVersion, trustedKeyVersions, intermediateVersion };
}

function parseKeySpec(raw: RawConfig, p: Problems): KeySpec {
    const algorithm = oneOf<KeyAlgorithm>(raw, p, "keyAlgorithm", "RSA", ["RSA", "ECDSA"]);
    const key: KeySpec = { algorithm };
    if (algorithm === "RSA") {
        const bits = integer(raw, p, "rsaBits", 4096, 2048, 4096);
        if (![2048, 3072, 4096].includes(bits)) {
            p.add("rsaBits", `must be 2048, 3072 or 4096, got ${bits}`);
        }
        key.rsaBits = bits as KeySpec["rsaBits"];
    } else {
        key.ecdsaCurve = oneOf<EcdsaCurve>(raw, p, "ecdsaCurve", "P256", ["P256", "P384"]);
    }
    return key;
}

type Validity = Pick<IstioCaConfig, "rootValidityHours" | "intermediateValidityHours" | "earlyRenewalHours" | "expiryWarningDays">;

/** How long the certificates live, when the intermediate is renewed, when expiry is warned about. */
function parseValidity(raw: RawConfig, p: Problems, role: "cluster" | "root"): Validity {
    const rootValidityDays = integer(raw, p, "rootValidityDays", 3650, 1, 36500);
    const intermediateValidityDays = integer(raw, p, "intermediateValidityDays", 1825, 1, 36500);
    if (intermediateValidityDays > rootValidityDays) {
        p.add("intermediateValidityDays", `(${intermediateValidityDays}) must not exceed rootValidityDays (${rootValidityDays}): an intermediate must not outlive its root`);
    }
    const earlyRenewalHours = integer(raw, p, "earlyRenewalHours", 720, 0, 36500 * 24);
    const intermediateValidityHours = intermediateValidityDays * 24;
    if (earlyRenewalHours >= intermediateValidityHours && role === "cluster") {
        // The tls provider would find every new intermediate already due: a rotation on every up.
        p.add("earlyRenewalHours", `(${earlyRenewalHours}${raw("earlyRenewalHours") ? "" : ", the default"}) must be less than the intermediate's validity ` +
            `(istio-ca:intermediateValidityDays ${intermediateValidityDays} = ${intermediateValidityHours} h), or a new intermediate is renewed on every up; ` +
            `set it to e.g. ${Math.floor(intermediateValidityHours / 3)} (a third of the validity), or 0 to renew only by istio-ca:intermediateVersion`);
    }
    const expiryWarningDays = integer(raw, p, "expiryWarningDays", 30, 0, 36500);
    return { rootValidityHours: rootValidityDays * 24, intermediateValidityHours, earlyRenewalHours, expiryWarningDays };
}

function parseWorkloadNamespaces(raw: RawConfig, p: Problems, istioNamespace: string): string[] | undefined {
    const namespaces = list(raw, p, "workloadNamespaces");
    if (namespaces === undefined) {
        return undefined;
    }
    if (!namespaces.every((n) => typeof n === "string")) {
        p.add("workloadNamespaces", `must be a list of namespace names, got ${JSON.stringify(namespaces)}`);
        return undefined;
    }
    if (!(namespaces as string[]).every((n) => namespaceName(p, "workloadNamespaces", n))) {
        return undefined;
    }
    const workloadNamespaces = [...new Set(namespaces as string[])];
    if (workloadNamespaces.includes(istioNamespace)) {
        p.add("workloadNamespaces", `must not contain the Istio namespace ${istioNamespace}: istiod is restarted first, on its own`);
    }
    return workloadNamespaces;
}

/** Where the roots come from (generated here, a root stack, an external root), and what each allows. */
function parseRootSource(raw: RawConfig, p: Problems, role: "cluster" | "root", { keyVersion, trustedKeyVersions }: Generations): RootSource {
    const rootStack = optionalString(raw, "rootStack");
    const rootCertPem = optionalString(raw, "rootCertPem");
    const rootKeyPem = optionalString(raw, "rootKeyPem");
    let rootSource: RootSource = { kind: "generate" };
    if (rootStack && (rootCertPem || rootKeyPem)) {
        p.add("rootStack", "and istio-ca:rootCertPem/rootKeyPem are two different root sources: set one of them");
    } else if (rootStack) {
        rootSource = { kind: "stack", stack: rootStack };
    } else if (rootCertPem || rootKeyPem) {
        if (!rootCertPem || !rootKeyPem) {
            p.add(rootCertPem ? "rootKeyPem" : "rootCertPem", "is required with an external root: set both istio-ca:rootCertPem and istio-ca:rootKeyPem (--secret)");
        } else {
            rootSource = { kind: "external", certPem: rootCertPem, keyPem: rootKeyPem };
        }
    }
    if (role === "root" && rootSource.kind !== "generate") {
        p.add("role", "root makes the root generations itself: remove istio-ca:rootStack / rootCertPem / rootKeyPem from the root stack");
    }
    if (trustedKeyVersions.includes(SELF_SIGNED_GENERATION) && (role === "root" || rootSource.kind === "external")) {
        p.add(keyVersion === SELF_SIGNED_GENERATION ? "keyVersion" : "trustedKeyVersions",
            role === "root"
                ? "0 is a cluster's own istiod CA (istio-ca-secret): a root stack cannot hold it; use generations >= 1"
                : "0 (istiod's self-signed CA) cannot be combined with an external root (istio-ca:rootCertPem): migrate to a generated or root-stack root first");
    } else if (rootSource.kind === "external" && trustedKeyVersions.length > 1) {
        p.add("trustedKeyVersions", "can list only keyVersion with an external root (one root comes from istio-ca:rootCertPem); rotate an external root by replacing rootCertPem/rootKeyPem and bumping keyVersion (an immediate swap: with istio-ca:allowImmediateRootSwap true)");
    }
    return rootSource;
}

/** Config keys that are secret: read without pulumi.Config's "use getSecret" warning, kept in memory only. */
const SECRET_KEYS = new Set(["rootKeyPem"]);

/** Reads the current stack's config (`istio-ca:*`). */
export function loadConfig(): IstioCaConfig {
    const cfg = new pulumi.Config(CONFIG_NAMESPACE);
    return parseConfig((key) => (SECRET_KEYS.has(key) ? pulumi.runtime.getConfig(`${CONFIG_NAMESPACE}:${key}`) : cfg.get(key)));
}
