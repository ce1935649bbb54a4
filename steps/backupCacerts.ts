// The backup step (`node dist/lib/cli/main.js backup-cacerts`): before the program changes
// `cacerts`, its current content is copied, byte for byte, to `cacerts-backup-<fingerprint>` in
// the backup namespace (istio-ca:backupNamespace, apart from the Istio namespace: creating,
// listing and deleting Secrets there can touch nothing istiod reads). The backup is made with
// kubectl, not registered with Pulumi, so `pulumi destroy` never deletes it; it is created once
// and never overwritten (immutable). Then the backups beyond istio-ca:keepBackups are deleted:
// each holds a signing key. Key material travels only in the manifest on kubectl's stdin, never
// on a command line or in a log.
import { ToolError } from "../kube/kubectl";
import type { Kubectl } from "../kube/kubectl";
import { BACKUP_LABELS, BACKUP_PREFIX, BACKUP_SELECTOR, backupName, CACERTS, cacertsFingerprint, servedContentHashOf } from "../common/cacertsFiles";
import { formatToWrite, layoutKeys, staleKeys } from "../common/cacertsFormat";
import { StepFailure } from "./stepContext";

export const ANNOTATION_BACKED_UP_AT = "istio-ca/backed-up-at";
/** publicContentHash of the backed-up content: the stack output cacertsContentHash of a deployment that served it. */
export const ANNOTATION_CONTENT_HASH = "istio-ca/content-hash";
export const ANNOTATION_SOURCE = "istio-ca/source";

/** A Secret as `kubectl get -o json` prints it; `data` values are base64, kept as they are. */
export interface SecretObject {
    metadata: {
        name: string; namespace?: string; uid?: string; resourceVersion?: string; creationTimestamp?: string;
        labels?: Record<string, string>; annotations?: Record<string, string>;
    };
    type?: string;
    data?: Record<string, string>;
}

export interface BackupResult {
    /** Name of the backup that holds the content (undefined: there was no cacerts). */
    backup?: string;
    /** false when the backup existed already (it is never overwritten). */
    created: boolean;
    /** Older backups deleted by this run (istio-ca:keepBackups): the first PRUNED_NAMED names, oldest last. */
    pruned: string[];
    /** How many were deleted (more than `pruned` lists after keepBackups was lowered a lot). */
    prunedCount: number;
    /** Keys of the layout istiod does not read, removed from cacerts after the backup (common/cacertsFormat). */
    removedKeys?: string[];
    /** One line for a person. */
    summary: string;
}

const decoded = (data: Record<string, string>): Record<string, Buffer> =>
    Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, "base64")]));

/** The backup Secret of a cacerts object: same type and data (base64 as read), labelled and annotated. */
export function backupManifest(source: SecretObject, namespace: string, now: Date): object {
    const data = source.data ?? {};
    const files = decoded(data);
    const text = Object.fromEntries(Object.entries(files).map(([k, v]) => [k, v.toString("utf8")]));
    return {
        apiVersion: "v1",
        kind: "Secret",
        metadata: {
            name: backupName(cacertsFingerprint(files)),
            namespace,
            labels: { ...BACKUP_LABELS },
            annotations: {
                [ANNOTATION_BACKED_UP_AT]: now.toISOString(),
                // Of what istiod read, in either layout (the type and keys are kept as found).
                [ANNOTATION_CONTENT_HASH]: servedContentHashOf(text),
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

/** Names of pruned backups in the step's summary line (kept short: the step's output is bounded). */
export const PRUNED_NAMED = 10;

export interface BackupContext {
    kubectl: Kubectl;
    /** The Istio namespace: where cacerts is. */
    namespace: string;
    /** Where the backups are (istio-ca:backupNamespace). */
    backupNamespace: string;
    /** istio-ca:keepBackups. */
    keep: number;
    /** istio-ca:restoreCacertsFrom: never pruned. */
    restoreFrom?: string;
    log: (line: string) => void;
    now?: () => Date;
}

/** Copies the current cacerts to its backup unless that backup exists, then prunes older backups. */
export async function backupCacerts(ctx: BackupContext): Promise<BackupResult> {
    const { kubectl, namespace, log } = ctx;
    const current = await getSecret(kubectl, namespace, CACERTS);
    if (!current) {
        log(`no Secret ${namespace}/${CACERTS} yet`);
        return { created: false, pruned: [], prunedCount: 0, summary: "no cacerts to back up" };
    }
    const backedUp = await takeBackup(ctx, current);
    log(backedUp.summary);
    const removed = await removeStaleKeys(ctx, current);
    const taken = removed ? { ...backedUp, removedKeys: removed.keys, summary: `${backedUp.summary}; ${removed.summary}` } : backedUp;
    const all = await pruneBackups(ctx, [taken.backup, ctx.restoreFrom]);
    // The summary is one stdout line: a bounded number of names, whatever was deleted.
    const pruned = all.slice(0, PRUNED_NAMED);
    if (all.length === 0) {
        return { ...taken, pruned, prunedCount: 0 };
    }
    const more = all.length > pruned.length ? ` and ${all.length - pruned.length} more` : "";
    const summary = `${taken.summary}; pruned ${all.length} older backup(s) beyond istio-ca:keepBackups ${ctx.keep}: ` +
        pruned.map((n) => `${ctx.backupNamespace}/${n}`).join(", ") + more;
    log(summary);
    return { ...taken, pruned, prunedCount: all.length, summary };
}


/**
 * Removes the keys of the layout istiod does not read (common/cacertsFormat staleKeys) from cacerts,
 * once backed up: ca-cert.pem & co. next to tls.crt, tls.key / ca.crt without it. istiod ignores
 * them now (it reads tls.* exactly when tls.crt exists), so removing them changes nothing it
 * serves; left in place, they would decide what it reads once another tool adds or removes
 * tls.crt, and the stack's apply cannot remove keys another tool wrote. The patch names keys and
 * the resourceVersion read: no key material, and nothing removed from a Secret changed meanwhile.
 */
async function removeStaleKeys(ctx: BackupContext, current: SecretObject): Promise<{ keys: string[]; summary: string } | undefined> {
    const format = formatToWrite({ type: current.type, data: current.data ?? {} });
    const stale = staleKeys(format, Object.keys(current.data ?? {}));
    if (stale.length === 0) {
        return undefined;
    }
    const patch = [
        { op: "test", path: "/metadata/resourceVersion", value: current.metadata.resourceVersion },
        ...stale.map((key) => ({ op: "remove", path: `/data/${key.replace(/~/g, "~0").replace(/\//g, "~1")}` })),
    ];
    await ctx.kubectl.run(["patch", "secret", CACERTS, "-n", ctx.namespace, "--type=json", "-p", JSON.stringify(patch), "-o", "name"]);
    const summary = `removed ${stale.join(", ")} from ${ctx.namespace}/${CACERTS}: istiod reads ${layoutKeys(format)} from it and ignores them`;
    ctx.log(summary);
    return { keys: stale, summary };
}

const isNamespaceMissing = (err: unknown, namespace: string): boolean =>
    err instanceof ToolError && err.message.includes(`namespaces "${namespace}" not found`);

/** Creates the backup namespace; an identity that may not is told what to apply. */
async function createBackupNamespace(ctx: BackupContext): Promise<void> {
    try {
        await ctx.kubectl.run(["create", "namespace", ctx.backupNamespace, "-o", "name"]);
    } catch (err) {
        if (err instanceof ToolError && /AlreadyExists|already exists/.test(err.message)) {
            return; // made meanwhile
        }
        throw new StepFailure(`namespace ${ctx.backupNamespace} (istio-ca:backupNamespace) does not exist and this identity may not create it: ` +
            `kubectl apply -f deploy/rbac.yaml creates it (with the Role to back up into it). ${(err as Error).message}`);
    }
    ctx.log(`created namespace ${ctx.backupNamespace} (istio-ca:backupNamespace) for the backups`);
}

/** kubectl create of the manifest; creates the backup namespace on first use. */
async function createSecret(ctx: BackupContext, manifest: object): Promise<void> {
    const args = ["create", "-f", "-", "-o", "name"];
    try {
        await ctx.kubectl.run(args, JSON.stringify(manifest));
    } catch (err) {
        if (!isNamespaceMissing(err, ctx.backupNamespace)) {
            throw err;
        }
        await createBackupNamespace(ctx);
        await ctx.kubectl.run(args, JSON.stringify(manifest));
    }
}

/** Creates the backup of `current`; an existing one of that name is kept as it is. */
async function takeBackup(ctx: BackupContext, current: SecretObject): Promise<Omit<BackupResult, "pruned" | "prunedCount"> & { backup: string }> {
    const { kubectl, namespace, backupNamespace: where } = ctx;
    const manifest = backupManifest(current, where, (ctx.now ?? (() => new Date()))()) as { metadata: { name: string } };
    const name = manifest.metadata.name;
    try {
        await createSecret(ctx, manifest);
    } catch (err) {
        if (!(err instanceof ToolError) || !/AlreadyExists|already exists/.test(err.message)) {
            throw err;
        }
        // Compared only where the identity may read backups: the backup exists either way, and it
        // is never overwritten.
        const existing = await getSecret(kubectl, where, name).catch(() => null);
        // Another content with the same signing certificate (e.g. a trust bundle changed around an
        // unchanged intermediate) keeps the first backup.
        const summary = existing === null
            ? `${where}/${name} already exists (kept, never overwritten; not compared: it cannot be read)`
            : existing !== undefined && sameData(existing.data, current.data)
                ? `${namespace}/${CACERTS} is already backed up as ${where}/${name}`
                : `${where}/${name} already exists with other content and is kept (never overwritten): this content of ${namespace}/${CACERTS} gets no backup of its own`;
        return { backup: name, created: false, summary };
    }
    return { backup: name, created: true, summary: `backed up ${namespace}/${CACERTS} as ${where}/${name}` };
}

/** A backup as the pruning sees it: its name and when it was taken. */
export interface BackupEntry {
    name: string;
    /** istio-ca/backed-up-at (ISO 8601), else the Secret's creationTimestamp. */
    backedUpAt: string;
}

/**
 * Which backups to delete: all but the `keep` most recent, never one named in `protect` (the one
 * just taken, the one istio-ca:restoreCacertsFrom reads). A date that does not parse counts as oldest.
 */
export function choosePrune(backups: readonly BackupEntry[], keep: number, protect: readonly (string | undefined)[]): { kept: string[]; pruned: string[] } {
    const time = (b: BackupEntry): number => Date.parse(b.backedUpAt) || 0;
    const newestFirst = [...backups].sort((a, b) => time(b) - time(a) || a.name.localeCompare(b.name));
    const kept = new Set([...newestFirst.slice(0, keep).map((b) => b.name), ...protect.filter((n): n is string => n !== undefined)]);
    return {
        kept: newestFirst.filter((b) => kept.has(b.name)).map((b) => b.name),
        pruned: newestFirst.filter((b) => !kept.has(b.name)).map((b) => b.name),
    };
}

/**
 * The backups this program made: labelled as such and named cacerts-backup-*. RBAC cannot limit
 * list or delete by label, so the namespace is the boundary and these two checks are the program's.
 */
async function listBackups(ctx: BackupContext): Promise<BackupEntry[]> {
    const out = await ctx.kubectl.run(["get", "secrets", "-n", ctx.backupNamespace, "-l", BACKUP_SELECTOR, "-o", "json"]);
    const items = (JSON.parse(out) as { items?: SecretObject[] }).items ?? [];
    return items
        .map((s) => s.metadata) // only names and dates go further: the keys are not kept
        .filter((m) => m.name.startsWith(BACKUP_PREFIX) && m.labels?.["app.kubernetes.io/managed-by"] === BACKUP_LABELS["app.kubernetes.io/managed-by"])
        .map((m) => ({ name: m.name, backedUpAt: m.annotations?.[ANNOTATION_BACKED_UP_AT] ?? m.creationTimestamp ?? "" }));
}

/** Deletes, by name, the backups beyond istio-ca:keepBackups; returns their names. */
async function pruneBackups(ctx: BackupContext, protect: (string | undefined)[]): Promise<string[]> {
    try {
        const { pruned } = choosePrune(await listBackups(ctx), ctx.keep, protect);
        if (pruned.length > 0) {
            await ctx.kubectl.run(["delete", "secret", ...pruned, "-n", ctx.backupNamespace, "--ignore-not-found"]);
        }
        return pruned;
    } catch (err) {
        // The new backup exists; cacerts is not changed yet (this step fails first).
        throw new StepFailure(`cannot prune the backups in ${ctx.backupNamespace} beyond istio-ca:keepBackups ${ctx.keep} ` +
            `(the identity needs list and delete on Secrets in namespace ${ctx.backupNamespace}: deploy/rbac.yaml): ${(err as Error).message}`);
    }
}
