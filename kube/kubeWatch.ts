// Waiting on the cluster with ONE kubectl process: `kubectl get <what> --watch --output-watch-events
// -o json` lists once, then streams every change. Polling re-listed everything at each poll: at 1,000
// Deployments that is ~4 MB of JSON per poll for the API server to encode and kubectl to decode, a
// real share of a small control plane's CPU in the middle of the rollouts it is waiting for (bench/).
import { spawn } from "node:child_process";
import { childEnv } from "./childEnv";
import { clusterFlags, spawnCounter, ToolError } from "./kubectl";

/**
 * Splits concatenated JSON objects (kubectl prints one pretty-printed object per watch event, no
 * separator) into one text per top-level object. Chunks may end anywhere, even inside a string.
 */
export class JsonObjectSplitter {
    private buffer = "";
    /** Where scanning resumes in `buffer`, and the scanner's state there. */
    private pos = 0;
    private depth = 0;
    private inString = false;
    private escaped = false;

    /** Feeds a chunk; returns the objects completed by it. */
    push(chunk: string): string[] {
        this.buffer += chunk;
        const out: string[] = [];
        let start = 0;
        for (let i = this.pos; i < this.buffer.length; i++) {
            const c = this.buffer[i];
            if (this.inString) {
                if (this.escaped) this.escaped = false;
                else if (c === "\\") this.escaped = true;
                else if (c === '"') this.inString = false;
                continue;
            }
            if (this.depth === 0) {
                if (c === "{") {
                    start = i;
                    this.depth = 1;
                } else if (!/\s/.test(c)) {
                    throw new Error(`expected a JSON object from kubectl, found ${JSON.stringify(this.buffer.slice(i, i + 80))}`);
                }
                continue;
            }
            if (c === '"') this.inString = true;
            else if (c === "{" || c === "[") this.depth++;
            else if (c === "}" || c === "]") {
                this.depth--;
                if (this.depth === 0) {
                    out.push(this.buffer.slice(start, i + 1));
                    start = i + 1;
                }
            }
        }
        // Keep only the unfinished object (or nothing).
        const keepFrom = this.depth > 0 ? start : this.buffer.length;
        this.buffer = this.buffer.slice(keepFrom);
        this.pos = this.buffer.length;
        return out;
    }

    /** True when a partial object is buffered (the stream ended mid-object). */
    get pending(): boolean {
        return this.depth > 0;
    }
}

export interface WatchEvent<T> {
    type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR" | string;
    object: T;
}

export interface WatchTarget {
    /** kubectl binary (path or name). */
    binary: string;
    kubeconfig?: string;
    context?: string;
}

/** A running `kubectl get … --watch`: events go to onEvent; `exited` settles when kubectl ends. */
export interface RunningWatch {
    exited: Promise<{ code: number | null; stderr: string; events: number }>;
    stop(): void;
}

export function kubectlWatch<T>(target: WatchTarget, args: string[], onEvent: (ev: WatchEvent<T>) => void): RunningWatch {
    const argv = [...clusterFlags(target), ...args, "--watch", "--output-watch-events", "-o", "json"];
    spawnCounter.kubectl++;
    const child = spawn(target.binary, argv, { stdio: ["ignore", "pipe", "pipe"], env: childEnv() });
    const splitter = new JsonObjectSplitter();
    let stderr = "";
    let events = 0;
    let failure: Error | undefined;
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        if (failure) return;
        try {
            for (const text of splitter.push(chunk)) {
                events++;
                onEvent(JSON.parse(text) as WatchEvent<T>);
            }
        } catch (err) {
            failure = err as Error;
            child.kill();
        }
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
        stderr = (stderr + chunk).slice(-8192);
    });
    const exited = new Promise<{ code: number | null; stderr: string; events: number }>((resolve, reject) => {
        child.on("error", (err: NodeJS.ErrnoException) => {
            reject(err.code === "ENOENT"
                ? new ToolError(`kubectl not found: looked for ${JSON.stringify(target.binary)}; put kubectl on PATH or set istio-ca:kubectlPath`, true)
                : err);
        });
        child.on("close", (code) => (failure ? reject(failure) : resolve({ code, stderr, events })));
    });
    return { exited, stop: () => child.kill() };
}

export interface WatchUntilOptions<T, S extends { done: boolean }> {
    /** Identity of an object (e.g. namespace/name). */
    key: (object: T) => string;
    /** The wait's state from every object seen so far (deleted ones removed, their keys in `deleted`). */
    evaluate: (objects: ReadonlyMap<string, T>, deleted: ReadonlySet<string>) => S;
    /**
     * Re-reads what `evaluate` uses besides the watched objects (e.g. the namespace list). Called
     * before a done state is accepted (the state is evaluated again after it) and every
     * `refreshEveryMs` if given.
     */
    refresh?: () => Promise<void>;
    refreshEveryMs?: number;
    timeoutMs: number;
    /** Progress every this often (default 5 s), events or not. */
    progressEveryMs?: number;
    onProgress?: (state: S, elapsedMs: number) => void;
    /** The state is evaluated at most this often while events stream in (default 50 ms). */
    settleMs?: number;
}

/** After this many watch processes in a row fail without delivering an event, give up. */
const MAX_FAILED_STARTS = 3;

/**
 * Watches `args` (e.g. ["get", "deployments", "-A"]) until `evaluate` says done or `timeoutMs`
 * passes. A watch the server ends (its request timeout) is started again: the objects already seen
 * are kept, and the new initial listing overwrites them.
 */
export async function watchUntil<T, S extends { done: boolean }>(
    target: WatchTarget,
    args: string[],
    opts: WatchUntilOptions<T, S>,
): Promise<{ state: S; timedOut: boolean; elapsedMs: number; watches: number }> {
    const started = Date.now();
    const objects = new Map<string, T>();
    const deleted = new Set<string>();
    let state = opts.evaluate(objects, deleted);
    let finished = false;
    let current: RunningWatch | undefined;
    let watches = 0;
    let settle: NodeJS.Timeout | undefined;
    let progress: NodeJS.Timeout | undefined;
    let deadline: NodeJS.Timeout | undefined;
    let refreshTimer: NodeJS.Timeout | undefined;
    let refreshing = false;

    return await new Promise((resolve, reject) => {
        const finish = (timedOut: boolean, err?: Error): void => {
            if (finished) return;
            finished = true;
            clearTimeout(settle);
            clearInterval(progress);
            clearInterval(refreshTimer);
            clearTimeout(deadline);
            current?.stop();
            if (err) reject(err);
            else resolve({ state, timedOut, elapsedMs: Date.now() - started, watches });
        };
        /** Evaluates; false when that failed (and finished the wait). */
        const evaluate = (): boolean => {
            try {
                state = opts.evaluate(objects, deleted);
                return true;
            } catch (err) {
                finish(false, err as Error);
                return false;
            }
        };
        const refreshThenEvaluate = (): void => {
            if (refreshing || finished || !opts.refresh) return;
            refreshing = true;
            opts.refresh().then(() => {
                refreshing = false;
                if (!finished && evaluate() && state.done) finish(false);
            }, (err: Error) => finish(false, err));
        };
        const evaluateNow = (): void => {
            settle = undefined;
            if (finished || !evaluate() || !state.done) return;
            if (opts.refresh) refreshThenEvaluate(); // a refresh in flight evaluates again when it ends
            else finish(false);
        };
        const onEvent = (ev: WatchEvent<T>): void => {
            if (ev.type === "BOOKMARK" || ev.type === "ERROR" || !ev.object) return;
            const k = opts.key(ev.object);
            if (ev.type === "DELETED") {
                objects.delete(k);
                deleted.add(k);
            } else {
                objects.set(k, ev.object);
                deleted.delete(k);
            }
            settle ??= setTimeout(evaluateNow, opts.settleMs ?? 50);
        };
        let failedStarts = 0;
        const startWatch = (): void => {
            if (finished) return;
            watches++;
            const w = kubectlWatch<T>(target, args, onEvent);
            current = w;
            w.exited.then(({ code, stderr, events }) => {
                if (finished) return;
                const quiet = events === 0;
                failedStarts = code !== 0 && quiet ? failedStarts + 1 : 0;
                if (failedStarts >= MAX_FAILED_STARTS) {
                    const detail = stderr.trim().split("\n").slice(-5).join("\n");
                    finish(false, new ToolError(`kubectl ${args.join(" ")} --watch failed ${failedStarts} times in a row: ${detail}`));
                    return;
                }
                // A watch the server ended cleanly restarts at once; a failing one (e.g. `watch` not
                // granted: kubectl lists, then fails) waits a second, so it never re-lists in a tight loop.
                setTimeout(startWatch, code === 0 ? 0 : 1000);
            }, (err: Error) => finish(false, err));
        };
        deadline = setTimeout(() => {
            try {
                state = opts.evaluate(objects, deleted);
            } catch {
                /* keep the last state */
            }
            finish(!state.done);
        }, opts.timeoutMs);
        if (opts.refresh && opts.refreshEveryMs) {
            refreshTimer = setInterval(refreshThenEvaluate, opts.refreshEveryMs);
        }
        if (opts.onProgress) {
            progress = setInterval(() => opts.onProgress?.(state, Date.now() - started), opts.progressEveryMs ?? 5000);
        }
        startWatch();
        settle = setTimeout(evaluateNow, 0); // nothing to wait for (e.g. no targets) is done at once
    });
}
