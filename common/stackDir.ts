// A directory per stack in the project, on the machine that runs `pulumi up`: where the steps
// leave what is too long for their output (the full list of restarted namespaces). The steps get
// its path relative to the project root, so the value in their inputs is the same on every machine.
import * as fs from "node:fs";
import * as path from "node:path";

export const STACK_DIR_ENV = "ISTIO_CA_STACK_DIR";
export const RESTARTED_NAMESPACES_FILE = "restarted-namespaces.txt";

const safe = (s: string): string => s.replace(/[^A-Za-z0-9._-]/g, "_");

/** `.istio-ca/<project>.<stack>`, relative to the project root. */
export function stackDirFor(project: string, stack: string): string {
    return path.posix.join(".istio-ca", `${safe(project)}.${safe(stack)}`);
}

/** The directory holding Pulumi.yaml, from this file's place (dist/lib or lib). */
export function projectRoot(from: string = __dirname): string {
    for (let dir = from; ; dir = path.dirname(dir)) {
        if (fs.existsSync(path.join(dir, "Pulumi.yaml"))) {
            return dir;
        }
        if (path.dirname(dir) === dir) {
            throw new Error(`no Pulumi.yaml above ${from}: the steps run from the istio-ca project`);
        }
    }
}

/** The stack directory (absolute) a step was given, or undefined; never outside the project. */
export function resolveStackDir(env: NodeJS.ProcessEnv, root: string = projectRoot()): string | undefined {
    const rel = env[STACK_DIR_ENV];
    if (!rel) {
        return undefined;
    }
    const abs = path.resolve(root, rel);
    if (path.relative(root, abs).startsWith("..") || path.isAbsolute(rel)) {
        throw new Error(`${STACK_DIR_ENV} must be a path inside the project, got ${JSON.stringify(rel)}`);
    }
    return abs;
}

export const STEP_SETTINGS_FILE = "step-settings.json";

/**
 * Program side: writes how the steps run (tools, cluster access, timeouts...) where they read it
 * at run time. Not a command input, so editing these settings re-runs no step.
 */
export function writeStepSettings(root: string, stackDir: string, settings: object): void {
    const dir = path.resolve(root, stackDir);
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, STEP_SETTINGS_FILE);
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(settings, null, 2) + "\n");
    fs.renameSync(`${file}.tmp`, file); // a step never reads a half-written file
}

/** Step side: the settings the program wrote for this stack. */
export function readStepSettingsFile<T>(stackDir: string): T {
    const file = path.join(stackDir, STEP_SETTINGS_FILE);
    let text: string;
    try {
        text = fs.readFileSync(file, "utf8");
    } catch {
        throw new Error(`${file} is missing: the program writes it on every pulumi preview/up of this stack; run pulumi up again from this project`);
    }
    return JSON.parse(text) as T;
}
