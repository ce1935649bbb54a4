// The backup step (`node dist/lib/cli/main.js backup-cacerts`): before the program changes
// `cacerts`, its current content is copied, byte for byte, to `cacerts-backup-<fingerprint>` in
// the Istio namespace. The backup is made with kubectl, not registered with Pulumi, so
// `pulumi destroy` never deletes it; it is created once and never overwritten (immutable).
// Key material travels only in the manifest on kubectl's stdin, never on a command line or in a log.
import { ToolError } from "./kubectl";
import type { Kubectl } from "./kubectl";
import { BACKUP_LABELS, backupName, cacertsFingerprint, publicContentHash } from "./cacertsFiles";
import { CACERTS } from "./preflight";

export const ANNOTATION_BACKED_UP_AT = "istio-ca/backed-up-at";
/** publicContentHash of the backed-up content: the stack output cacertsContentHash of a deployment that served it. */
export const ANNOTATION_CONTENT_HASH = "istio-ca/content-hash";
export const ANNOTATION_SOURCE = "istio-ca/source";

/** A Secret as `kubectl get -o json` prints it; `data` values are base64, kept as they are. */
export interface SecretObject {
    metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string };
    type?: string;
    data?: Record<string, string>;
}

export interface BackupResult {
    /** Name of the backup that holds the content (undefined: there was no cacerts). */
    backup?: string;
    /** false when the backup existed already (it is never overwritten). */
    created: boolean;
    /** One line for a person. */
    summary: string;
}

const decoded = (data: Record<string, string>): Record<string, Buffer> =>
    Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, "base64")]));

/** The backup Secret of a cacerts object: same type and data (base64 as read), labelled and annotated. */
export function backupManifest(source: SecretObject, namespace: string, now: Date): object {
    const data = source.data ?? {};
    const files = decoded(data);
    const text = (name: string): string => files[name]?.toString("utf8") ?? "";
    return {
        apiVersion: "v1",
        kind: "Secret",
        metadata: {
            name: backupName(cacertsFingerprint(files)),
            namespace,
            labels: { ...BACKUP_LABELS },
            annotations: {
                [ANNOTATION_BACKED_UP_AT]: now.toISOString(),
                [ANNOTATION_CONTENT_HASH]: publicContentHash({ caCertPem: text("ca-cert.pem"), rootCertPem: text("root-cert.pem"), certChainPem: text("cert-chain.pem") }),
                [ANNOTATION_SOURCE]: `${namespace}/${source.metadata.name} uid ${source.metadata.uid ?? "?"} resourceVersion ${source.metadata.resourceVersion ?? "?"}`,
            },
        },
        // A backup is a record: nobody (not even this program) changes it; deleting it is allowed.
        immutable: true,
        type: source.type ?? "Opaque",
        data,
    };
}

const sameData = (a: Record<string, string> = {}, b: Record<string, string> = {}): boolean =>
    Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([k, v]) => b[k] === v);

/** Reads a Secret of the namespace as kubectl prints it; undefined when it does not exist. */
export async function getSecret(kubectl: Kubectl, namespace: string, name: string): Promise<SecretObject | undefined> {
    const out = await kubectl.run(["get", "secret", name, "-n", namespace, "--ignore-not-found", "-o", "json"]);
    return out.trim() === "" ? undefined : (JSON.parse(out) as SecretObject);
}

/** Copies the current cacerts to its backup unless that backup exists. */
export async function backupCacerts(ctx: { kubectl: Kubectl; namespace: string; log: (line: string) => void; now?: () => Date }): Promise<BackupResult> {
    const { kubectl, namespace, log } = ctx;
    const current = await getSecret(kubectl, namespace, CACERTS);
    if (!current) {
        log(`no Secret ${namespace}/${CACERTS} yet`);
        return { created: false, summary: "no cacerts to back up" };
    }
    const manifest = backupManifest(current, namespace, (ctx.now ?? (() => new Date()))()) as { metadata: { name: string } };
    const name = manifest.metadata.name;
    try {
        await kubectl.run(["create", "-f", "-", "-o", "name"], JSON.stringify(manifest));
    } catch (err) {
        if (!(err instanceof ToolError) || !/AlreadyExists|already exists/.test(err.message)) {
            throw err;
        }
        // Compared only where the identity may read backups (least-privilege RBAC may grant only
        // create): the backup exists either way, and it is never overwritten.
        const existing = await getSecret(kubectl, namespace, name).catch(() => null);
        // Another content with the same signing certificate (e.g. a trust bundle changed around an
        // unchanged intermediate) keeps the first backup.
        const summary = existing === null
            ? `${namespace}/${name} already exists (kept, never overwritten; not compared: it cannot be read)`
            : existing !== undefined && sameData(existing.data, current.data)
                ? `${namespace}/${CACERTS} is already backed up as ${namespace}/${name}`
                : `${namespace}/${name} already exists with other content and is kept (never overwritten): this content of ${namespace}/${CACERTS} gets no backup of its own`;
        log(summary);
        return { backup: name, created: false, summary };
    }
    const summary = `backed up ${namespace}/${CACERTS} as ${namespace}/${name}`;
    log(summary);
    return { backup: name, created: true, summary };
}
