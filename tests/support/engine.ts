// The real Pulumi engine for end-to-end tests: the CLI and plugins that toolchain/build.sh
// built, a throw-away file:// backend, passphrase secrets, and the project's program run inline
// through the Automation API (the Node process serves the language runtime; see
// toolchain/pulumi.sh for why no pulumi-language-nodejs binary is needed).
import * as automation from "@pulumi/pulumi/automation";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const PROJECT_ROOT = path.resolve(__dirname, "../../..");

/** Environment of the built toolchain (PATH, PULUMI_HOME, no plugin downloads), from the build script. */
export function toolchainEnv(): Record<string, string> {
    const script = path.join(PROJECT_ROOT, "toolchain/build.sh");
    const out = execFileSync("bash", [script, "--print-env"], { encoding: "utf8" });
    const env: Record<string, string> = {};
    for (const line of out.split("\n")) {
        const m = /^export ([A-Z_][A-Z0-9_]*)="?(.*?)"?$/.exec(line.trim());
        if (m) {
            env[m[1]] = m[2].replace(/\$\{PATH\}|\$PATH/g, process.env.PATH ?? "");
        }
    }
    const pulumi = (env.PATH ?? "").split(":").map((d) => path.join(d, "pulumi")).find((p) => fs.existsSync(p));
    if (!pulumi) {
        throw new Error("the Pulumi CLI is not built: run `bash toolchain/build.sh` (npm test does) first");
    }
    return env;
}

export interface TestStack {
    stack: automation.Stack;
    name: string;
    backendDir: string;
    /** Environment of the CLI for this stack (toolchain, backend, passphrase). */
    envVars: Record<string, string>;
    /** Removes the stack, its Pulumi.<stack>.yaml and the backend. */
    dispose(): Promise<void>;
}

/**
 * A stack of this project (workDir = the project root, so Pulumi.yaml and its config declarations
 * apply, and the step commands find dist/) whose program is `program`, on a temporary backend.
 */
export async function createTestStack(
    prefix: string,
    program: automation.PulumiFn,
    config: Record<string, string>,
    /** env: extra environment of the CLI, hence of the providers and the step commands (e.g. ISTIOCTL_XDS_ADDRESS). */
    opts: { backendDir?: string; env?: Record<string, string> } = {},
): Promise<TestStack> {
    // Stacks that reference each other (a root stack and its cluster stacks) share one backend.
    const ownsBackend = opts.backendDir === undefined;
    const backendDir = opts.backendDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "istio-ca-backend-"));
    const name = `e2e-${prefix}-${process.pid}`;
    const env = toolchainEnv();
    const envVars = {
        ...env,
        PULUMI_BACKEND_URL: `file://${backendDir}`,
        PULUMI_CONFIG_PASSPHRASE: "istio-ca-e2e-passphrase",
        ...opts.env,
    };
    // The Automation API runs `pulumi` from PATH; make this process's PATH the toolchain's.
    process.env.PATH = env.PATH;
    const workspace = await automation.LocalWorkspace.create({
        workDir: PROJECT_ROOT,
        program,
        envVars,
        pulumiHome: env.PULUMI_HOME,
    });
    const stack = await automation.Stack.createOrSelect(name, workspace);
    await stack.setAllConfig(Object.fromEntries(Object.entries(config).map(([k, v]) => [`istio-ca:${k}`, { value: v }])));
    return {
        stack,
        name,
        backendDir,
        envVars,
        async dispose() {
            await workspace.removeStack(name, { force: true }).catch(() => undefined);
            fs.rmSync(path.join(PROJECT_ROOT, `Pulumi.${name}.yaml`), { force: true });
            if (ownsBackend) {
                fs.rmSync(backendDir, { recursive: true, force: true });
            }
        },
    };
}

/**
 * The Node.js version each step command ran on, by resource name: the steps print it first on
 * stderr (steps/stepRunner.ts), which the state keeps. "(none)" for a command that printed none.
 */
export async function stepNodeVersions(stack: automation.Stack): Promise<Record<string, string>> {
    const state = await stack.exportStack();
    const commands = (state.deployment.resources as { urn: string; type: string; outputs?: { stderr?: unknown } }[])
        .filter((r) => r.type === "command:local:Command");
    return Object.fromEntries(commands.map((r) => [
        r.urn.split("::").pop()!,
        /Node\.js (v[\d.]+);/.exec(typeof r.outputs?.stderr === "string" ? r.outputs.stderr : "")?.[1] ?? "(none)",
    ]));
}

/**
 * Operations per resource name from engine events. A replacement shows as several steps
 * (create-replacement, replace, delete-replaced), so each name keeps the set of its ops.
 */
export class OpRecorder {
    readonly ops = new Map<string, Set<string>>();
    readonly onEvent = (event: automation.EngineEvent): void => {
        const meta = event.resourcePreEvent?.metadata;
        if (meta) {
            const name = meta.urn.split("::").pop()!;
            this.ops.set(name, (this.ops.get(name) ?? new Set()).add(meta.op));
        }
    };
    /** Names that had the given op, sorted. */
    with(op: string): string[] {
        return [...this.ops.entries()].filter(([, ops]) => ops.has(op)).map(([n]) => n).sort();
    }
    /** Names whose only op was the given one (e.g. `same`). */
    only(op: string): string[] {
        return [...this.ops.entries()].filter(([, ops]) => ops.size === 1 && ops.has(op)).map(([n]) => n).sort();
    }
}
