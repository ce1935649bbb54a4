// What a killed `pulumi up` leaves behind on a self-managed (file://) backend, and what is safe to
// do about it. Pulumi 3.248 (and the same in 3.276), read in its sources:
// - a lock file per running update, `.pulumi/locks/<org>/<project>/<stack>/<id>.json` holding
//   {pid, username, hostname, timestamp} (pkg/backend/diy/lock.go). Update, refresh, destroy and
//   import take it; a killed process never deletes it, and every later `up` then fails with "the
//   stack is currently locked by 1 lock(s)". `pulumi cancel` (Automation API: stack.cancel())
//   deletes every lock of the stack (diyBackend.CancelCurrentUpdate).
// - the checkpoint's `pending_operations`: the resource operations that had started and not
//   finished. The next update only warns about them (deploy/deployment_executor.go) and works from
//   the last recorded state, so an interrupted step runs again; pending UPDATE/DELETE entries are
//   then dropped, but pending CREATEs are copied into every new checkpoint (backend/journal.go:
//   "these must require user intervention") until `pulumi refresh --clear-pending-creates` (or
//   `--import-pending-creates URN ID`) resolves them.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface StackLock {
    file: string;
    pid: number;
    username: string;
    hostname: string;
    timestamp: string;
}

export interface PendingOperation {
    /** creating, updating, deleting, reading, importing. */
    type: string;
    urn: string;
    resourceType: string;
}

/** The directory of a file:// backend URL, or undefined for any other backend. */
export function fileBackendDir(url: string, projectRoot: string): string | undefined {
    if (!url.startsWith("file://")) {
        return undefined;
    }
    const p = url.slice("file://".length).replace(/\?.*$/, "");
    if (p === "~" || p.startsWith("~/")) {
        return path.join(os.homedir(), p.slice(1));
    }
    return path.resolve(projectRoot, p);
}

/** The lock files of a stack of this project on a file backend (none when the directory is absent). */
export function readStackLocks(backendDir: string, project: string, stack: string): StackLock[] {
    // Project-scoped DIY stacks are named organization/<project>/<stack>.
    const fq = stack.includes("/") ? stack : `organization/${project}/${stack}`;
    const dir = path.join(backendDir, ".pulumi", "locks", ...fq.split("/"));
    if (!fs.existsSync(dir)) {
        return [];
    }
    return fs.readdirSync(dir).filter((f) => f.endsWith(".json")).map((f) => {
        const file = path.join(dir, f);
        const content = JSON.parse(fs.readFileSync(file, "utf8")) as Partial<StackLock>;
        return { file, pid: Number(content.pid), username: String(content.username ?? "?"), hostname: String(content.hostname ?? "?"), timestamp: String(content.timestamp ?? "?") };
    });
}

/** Is `pid` a running pulumi process on this machine? (A recycled pid running something else is not.) */
export function isRunningPulumi(pid: number): boolean {
    try {
        process.kill(pid, 0);
    } catch (err) {
        return (err as NodeJS.ErrnoException).code === "EPERM";
    }
    try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("pulumi");
    } catch {
        return true; // no /proc: alive is all we know
    }
}

/** A lock whose process is gone: taken on this host by a pid that no longer runs pulumi. */
export function isStale(lock: StackLock, host = os.hostname(), running: (pid: number) => boolean = isRunningPulumi): boolean {
    return lock.hostname === host && Number.isInteger(lock.pid) && lock.pid > 0 && !running(lock.pid);
}

/** The pending operations of a deployment as `pulumi stack export` prints it. */
export function pendingOperations(exported: unknown): PendingOperation[] {
    const ops = (exported as { deployment?: { pending_operations?: unknown[] } })?.deployment?.pending_operations ?? [];
    return ops.map((op) => {
        const o = op as { type?: string; resource?: { urn?: string; type?: string } };
        return { type: String(o.type), urn: String(o.resource?.urn), resourceType: String(o.resource?.type) };
    });
}

/**
 * Creates that leave nothing outside the state to adopt, so clearing them is safe: a step command
 * (the next up runs it again), a tls key or certificate (made in the provider's memory), a
 * provider. Anything else (a Kubernetes object) may exist and has to be imported or cleared by a person.
 */
export function isClearableCreate(op: PendingOperation): boolean {
    return op.type === "creating" && (op.resourceType === "command:local:Command" || op.resourceType.startsWith("tls:") || op.resourceType.startsWith("pulumi:providers:"));
}

const nameOf = (urn: string): string => urn.split("::").pop() ?? urn;

export interface RecoveryPlan {
    /** Locks of processes that are gone: remove them (`pulumi cancel`). */
    staleLocks: StackLock[];
    /** Locks of a running (or unknown) process: another update is under way; stop. */
    liveLocks: StackLock[];
    /** Pending creates safe to clear (`pulumi refresh --clear-pending-creates`). */
    clearable: PendingOperation[];
    /** Pending creates a person has to resolve. */
    blocking: PendingOperation[];
    /** Pending updates/deletes: the next up redoes them from the recorded state. */
    redone: PendingOperation[];
    /** What happened and what is done about it, one line each. */
    explanation: string[];
}

export function planRecovery(stack: string, locks: StackLock[], pending: PendingOperation[], stale: (lock: StackLock) => boolean = (l) => isStale(l)): RecoveryPlan {
    const staleLocks = locks.filter(stale);
    const liveLocks = locks.filter((l) => !staleLocks.includes(l));
    const clearable = pending.filter(isClearableCreate);
    const blocking = pending.filter((op) => op.type === "creating" && !isClearableCreate(op));
    const redone = pending.filter((op) => op.type !== "creating");
    const explanation: string[] = [];
    for (const l of liveLocks) {
        explanation.push(`${stack} is locked by ${l.username}@${l.hostname} (pid ${l.pid}, since ${l.timestamp}), which may still be running an update: ` +
            `wait for it; if that process is gone for good, remove ${l.file} (\`pulumi cancel --stack ${stack}\`) and run again`);
    }
    for (const l of staleLocks) {
        explanation.push(`${stack}: the update started ${l.timestamp} by pulumi (pid ${l.pid}) was interrupted (the process is gone) and left its lock ${l.file}; removing it (\`pulumi cancel\`)`);
    }
    if (clearable.length > 0) {
        explanation.push(`${stack}: the interrupted update was creating ${clearable.map((op) => nameOf(op.urn)).join(", ")}; nothing of those exists outside the state ` +
            "(a step command runs again on this up; a tls key or certificate is made anew), so the pending creates are cleared (`pulumi refresh --clear-pending-creates`)");
    }
    for (const op of blocking) {
        explanation.push(`${stack}: the interrupted update was creating ${op.urn}, which may exist now. Look for it; if it exists, ` +
            `\`pulumi refresh --stack ${stack} --import-pending-creates '${op.urn}' <id>\`, if not, \`pulumi refresh --stack ${stack} --clear-pending-creates\`; then run again`);
    }
    if (redone.length > 0) {
        explanation.push(`${stack}: the interrupted update was ${redone.map((op) => `${op.type} ${nameOf(op.urn)}`).join(", ")}; ` +
            "this up compares with the last recorded state and applies the change again");
    }
    return { staleLocks, liveLocks, clearable, blocking, redone, explanation };
}
