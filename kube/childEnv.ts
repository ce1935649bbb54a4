// The environment of every process this project starts (kubectl, istioctl and what they start,
// e.g. exec credential plugins). Pulumi's language host hands the program its DECRYPTED config in
// PULUMI_CONFIG (an external rootKeyPem included); an inherited environment would put it in
// /proc/<pid>/environ of every child. So children get an allow-list, never the whole environment.

/** Exact names a child may inherit. */
const NAMES = new Set([
    "PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "TZ", "KUBECONFIG",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    "LANG", "LANGUAGE",
    // Extra trust roots for TLS to the API server (Go reads them).
    "SSL_CERT_FILE", "SSL_CERT_DIR",
    // Where credential plugins keep their config and token caches.
    "XDG_CONFIG_HOME", "XDG_CACHE_HOME",
]);

/**
 * Name prefixes a child may inherit: locale; what kubectl's exec credential plugins read
 * (aws eks get-token / aws-iam-authenticator, gke-gcloud-auth-plugin, kubelogin for AKS);
 * istioctl's own settings (ISTIOCTL_XDS_ADDRESS...); the project's step variables.
 */
const PREFIXES = ["LC_", "AWS_", "GOOGLE_", "CLOUDSDK_", "AZURE_", "AAD_", "KUBELOGIN_", "ISTIOCTL_", "ISTIO_CA_"];

/** Whether a variable of the parent may reach a child. Never a PULUMI_* one, whatever the lists say. */
export function inheritable(name: string): boolean {
    if (name.toUpperCase().startsWith("PULUMI_")) {
        return false;
    }
    return NAMES.has(name) || PREFIXES.some((p) => name.startsWith(p));
}

/** The environment to start a child with: the allowed part of `parent` (default: this process's). */
export function childEnv(parent: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [name, value] of Object.entries(parent)) {
        if (value !== undefined && inheritable(name)) {
            env[name] = value;
        }
    }
    return env;
}
