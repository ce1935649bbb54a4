// A thin wrapper over the kubectl binary. kubectl (not a bespoke API client) is what the people
// running this already trust with their contexts and exec auth plugins, so the steps speak to the
// cluster through it. Every call is one process; callers batch (one list across all namespaces)
// rather than loop per object.
import { execFile } from "node:child_process";
import { childEnv } from "./childEnv";

export interface KubectlOptions {
    /** Path or name of the kubectl binary. */
    binary: string;
    kubeconfig?: string;
    context?: string;
    /** Per-call timeout. */
    timeoutMs?: number;
}

export class ToolError extends Error {
    /**
     * notStarted: the tool itself is missing or not executable (nothing reached the cluster).
     * detail: what the tool said when it failed (its stderr), without the command line.
     */
    constructor(message: string, readonly notStarted = false, readonly detail?: string) {
        super(message);
        this.name = "ToolError";
    }
}

/** klog's header: `E1125 19:23:35.263075   20791 memcache.go:265] …`. */
const KLOG_LINE = /^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ [\w.-]+:\d+\]/;

/** kubectl's own diagnostics (repeated client-go retries) drowned its one-line error; keep them only if nothing else was said. */
function withoutKlogLines(lines: string[]): string[] {
    const plain = lines.filter((l) => !KLOG_LINE.test(l));
    return plain.length > 0 ? plain : lines;
}

/** Counts the processes spawned, so a run can report it (the scale benchmark reads it). */
export const spawnCounter = { kubectl: 0, istioctl: 0 };

export function runTool(
    binary: string,
    args: string[],
    what: "kubectl" | "istioctl",
    configKey: string,
    timeoutMs = 120_000,
    /** Written to the tool's stdin: how manifests with key material travel (never on a command line). */
    input?: string,
): Promise<string> {
    spawnCounter[what]++;
    return new Promise((resolve, reject) => {
        const child = execFile(binary, args, { maxBuffer: 512 * 1024 * 1024, timeout: timeoutMs, env: childEnv() }, (err, stdout, stderr) => {
            if (!err) {
                resolve(stdout);
                return;
            }
            const code = (err as NodeJS.ErrnoException).code;
            if (code === "ENOENT") {
                reject(new ToolError(`${what} not found: looked for ${JSON.stringify(binary)}; put ${what} on PATH or set ${configKey}`, true));
            } else if (code === "EACCES") {
                reject(new ToolError(`${what} at ${JSON.stringify(binary)} is not executable (${configKey})`, true));
            } else {
                const detail = withoutKlogLines((stderr || err.message).trim().split("\n")).slice(-5).join("\n");
                reject(new ToolError(`${what} ${args.join(" ")} failed: ${detail}`, false, detail));
            }
        });
        if (input !== undefined) {
            child.stdin?.end(input);
        }
    });
}

/** Which cluster a kubectl or istioctl call reaches: the one place the flags are built. */
export function clusterFlags(target: { kubeconfig?: string; context?: string }): string[] {
    return [
        ...(target.kubeconfig ? ["--kubeconfig", target.kubeconfig] : []),
        ...(target.context ? ["--context", target.context] : []),
    ];
}

export class Kubectl {
    constructor(private readonly opts: KubectlOptions) {}

    run(args: string[], input?: string): Promise<string> {
        return runTool(this.opts.binary, [...clusterFlags(this.opts), ...args], "kubectl", "istio-ca:kubectlPath", this.opts.timeoutMs, input);
    }

    async getJson<T>(args: string[]): Promise<T> {
        const out = await this.run([...args, "-o", "json"]);
        try {
            return JSON.parse(out) as T;
        } catch {
            throw new ToolError(`kubectl ${args.join(" ")} -o json did not print JSON: ${out.slice(0, 200)}`);
        }
    }
}

/** Minimal typed views of the objects the steps read. */
export interface ObjectMeta {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    uid?: string;
    generation?: number;
}

export interface KubeList<T> {
    items: T[];
}

export interface Namespace {
    metadata: ObjectMeta;
    status?: { phase?: string };
}
