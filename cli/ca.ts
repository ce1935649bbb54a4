// `npm run ca -- <preview|up|rotate> --stack NAME [--stack NAME …] [--to N] [--verbose]`; `--help`
// says what a first run against one's own cluster takes.
//
// Runs this project's program for the named stacks through the Automation API, as an inline
// program: it needs a `pulumi` CLI on PATH but no Node.js language plugin, and it is the driver
// of the zero-downtime root rotation (`rotate`): phase 1 "trust", 2 "sign", 3 "complete", one
// `pulumi up` each, previewed first, with the program's verification steps as gates. Several
// stacks (clusters of one mesh) are walked phase by phase: every cluster trusts the new root
// before any cluster signs with it. A failed gate stops the walk with every stack in a
// consistent phase (its config says which); running the same command again resumes.
import * as automation from "@pulumi/pulumi/automation";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs as parseCliArgs, promisify } from "node:util";
import { argumentError, describeFailure } from "./cliErrors";
import { missingBackendDir, missingStackProblem, stackCreated } from "./firstRun";
import { fileBackendDir, pendingOperations, planRecovery, readStackLocks } from "./interrupted";
import { tolerateRefusalEchoes } from "../plan/refusal";
import { formatTrustState, nextPhases, TrustState } from "../plan/rotation";

const PROJECT_ROOT = path.resolve(__dirname, "../..");
const started = Date.now();
const say = (line: string): void => {
    process.stderr.write(`[ca +${((Date.now() - started) / 1000).toFixed(0)}s] ${line}\n`);
};

/** The program, run inline: the same code `pulumi up` runs from index.ts. */
export const inlineProgram: automation.PulumiFn = async () => {
    const { runIstioCa } = await import("../program/istioCa");
    return runIstioCa();
};

export interface CaOptions {
    command: "preview" | "up" | "rotate";
    stacks: string[];
    to?: number;
    /** On failure, the Automation API's whole error rather than the CLI's `error:` lines. */
    verbose?: boolean;
    /** Extra environment for the CLI (tests pass their toolchain and backend here). */
    envVars?: Record<string, string>;
    /** Where engine output goes; default stderr, prefixed with the stack name. */
    output?: (stack: string, line: string) => void;
    /** Where the driver's own lines go (e.g. what it finds after an interrupted up); default stderr. */
    log?: (line: string) => void;
}

export const USAGE = "usage: npm run ca -- <preview|up|rotate> --stack NAME [--stack NAME …] [--to N] [--verbose]";

export const HELP = `${USAGE}

Runs this project's program for each stack (one stack per cluster) through the Pulumi Automation
API: it needs the pulumi CLI on PATH, not its Node.js language plugin.

  preview   what an up would change; applies nothing
  up        applies the stack's config: cacerts, then the ordered restarts and checks
  rotate    the zero-downtime root rotation to root N (--to; default: the next one): phases
            1 'trust', 2 'sign', 3 'complete', one up each, walked phase by phase across all the
            stacks named; after a failed phase the same command resumes

  -s, --stack NAME   a stack; repeat it for the clusters of one mesh
      --to N         rotate: the root generation to end on
  -v, --verbose      on failure, print the pulumi CLI's whole output
  -h, --help         this text

A first run against your own cluster, in order:
  1. Stack: copy Pulumi.dev.yaml to Pulumi.NAME.yaml and set istio-ca:clusterName and
     istio-ca:kubeContext (README: Config). The first run creates stack NAME from it.
  2. Passphrase: export PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE). It encrypts the
     stack's secrets, the CA keys among them; keep it: the state cannot be read without it.
  3. Backend: export PULUMI_BACKEND_URL, where the state lives: e.g. s3://BUCKET/istio-ca,
     file://$HOME/.istio-ca-state (a directory that exists), or file://./.pulumi-state (this
     checkout only, git-ignored).
  4. npm run ca -- preview --stack NAME, then npm run ca -- up --stack NAME.
`;

/** The command line, or "help". Throws with a one-line message on a bad one. */
export function parseArgs(argv: string[]): CaOptions | "help" {
    const { values, positionals } = parseCliArgs({
        args: argv,
        allowPositionals: true,
        options: {
            stack: { type: "string", short: "s", multiple: true },
            to: { type: "string" },
            verbose: { type: "boolean", short: "v" },
            help: { type: "boolean", short: "h" },
        },
    });
    if (values.help) {
        return "help";
    }
    const [command, ...extra] = positionals;
    if (command !== "preview" && command !== "up" && command !== "rotate") {
        throw new Error(command === undefined ? "name a command: preview, up or rotate" : `unknown command ${JSON.stringify(command)}: preview, up or rotate`);
    }
    if (extra.length > 0) {
        throw new Error(`unexpected argument ${JSON.stringify(extra[0])}`);
    }
    const stacks = values.stack ?? [];
    if (stacks.length === 0) {
        throw new Error("name at least one stack: --stack NAME");
    }
    if (values.to !== undefined && !/^\d+$/.test(values.to)) {
        throw new Error(`--to takes a root generation (a whole number), not ${JSON.stringify(values.to)}`);
    }
    if (values.to !== undefined && command !== "rotate") {
        throw new Error("--to is for rotate only");
    }
    return { command, stacks, ...(values.to !== undefined ? { to: Number(values.to) } : {}), ...(values.verbose ? { verbose: true } : {}) };
}

/** Selects the stack; creates it when it does not exist and its Pulumi.<stack>.yaml does (cli/firstRun.ts). */
async function openStack(name: string, opts: CaOptions): Promise<automation.Stack> {
    const env = { ...process.env, ...opts.envVars };
    const noDir = missingBackendDir(env, PROJECT_ROOT);
    if (noDir) {
        throw new Error(noDir);
    }
    if (!env.PULUMI_BACKEND_URL) {
        // Pulumi.yaml's default backend is a directory in the project: make sure it exists.
        fs.mkdirSync(path.join(PROJECT_ROOT, ".pulumi-state"), { recursive: true });
    }
    const workspace = await automation.LocalWorkspace.create({ workDir: PROJECT_ROOT, program: inlineProgram, envVars: opts.envVars });
    try {
        return await automation.Stack.select(name, workspace);
    } catch (err) {
        if (!(err instanceof automation.StackNotFoundError)) {
            throw err;
        }
    }
    const problem = missingStackProblem({ stack: name, env, hasStackFile: fs.existsSync(path.join(PROJECT_ROOT, `Pulumi.${name}.yaml`)) });
    if (problem) {
        throw new Error(problem);
    }
    const stack = await automation.Stack.create(name, workspace);
    (opts.log ?? say)(stackCreated(name, env));
    return stack;
}

/** The trust state a stack's config asks for (what the next `up` applies). */
export async function configuredTrustState(stack: automation.Stack): Promise<TrustState> {
    const config = await stack.getAllConfig();
    const int = (key: string, def: number): number => {
        const v = config[`istio-ca:${key}`]?.value;
        return v === undefined ? def : Number(v);
    };
    const keyVersion = int("keyVersion", 1);
    const raw = config["istio-ca:trustedKeyVersions"]?.value;
    const trusted = raw ? (JSON.parse(raw) as unknown[]).map(Number) : [];
    return {
        keyVersion,
        // Pulumi.yaml's default is [] (= unset): root-cert.pem trusts the signing root alone.
        trustedKeyVersions: trusted.length > 0 ? trusted : [keyVersion],
        intermediateVersion: int("intermediateVersion", 1),
    };
}

/** What the stack's last deployment recorded (its trustState output). */
async function deployedTrustState(stack: automation.Stack): Promise<TrustState | undefined> {
    const outputs = await stack.outputs();
    return outputs.trustState?.value as TrustState | undefined;
}

const sameTrust = (a: TrustState, b: TrustState): boolean =>
    a.keyVersion === b.keyVersion && [...a.trustedKeyVersions].sort().join() === [...b.trustedKeyVersions].sort().join();

/**
 * The root generation a `rotate` without `--to` goes to: the one a half-done rotation is heading
 * for (phase 1 done: the newer trusted root; phase 2 done: the signing root), the one the config
 * already names when the last deployment did not reach it (phase 3 failed), else the next one.
 */
export function defaultTarget(config: TrustState, deployed: TrustState | undefined): number {
    const newest = Math.max(...config.trustedKeyVersions);
    if (config.trustedKeyVersions.length > 1) {
        return Math.max(newest, config.keyVersion);
    }
    if (deployed && !sameTrust(deployed, config)) {
        return config.keyVersion;
    }
    return config.keyVersion + 1;
}

/** Writes a trust state into a stack's config (keyVersion; trustedKeyVersions as a list, or removed). */
export async function applyTrustState(stack: automation.Stack, s: TrustState): Promise<void> {
    await stack.setConfig("istio-ca:keyVersion", { value: String(s.keyVersion) });
    if (s.trustedKeyVersions.length === 1 && s.trustedKeyVersions[0] === s.keyVersion) {
        await stack.removeConfig("istio-ca:trustedKeyVersions");
    } else {
        // A list value: `pulumi config set --path` keeps it a YAML list, as Pulumi.yaml declares.
        await stack.removeConfig("istio-ca:trustedKeyVersions").catch(() => undefined);
        for (const [i, v] of s.trustedKeyVersions.entries()) {
            await stack.setConfig(`istio-ca:trustedKeyVersions[${i}]`, { value: String(v) }, true);
        }
    }
}

function summary(changes: Record<string, number> | undefined): string {
    return Object.entries(changes ?? {}).filter(([op]) => op !== "same").map(([op, n]) => `${n} ${op}`).join(", ") || "no changes";
}

/** Where a stack's engine output goes: opts.output, else stderr with every line prefixed by the stack name. */
function engineOutput(stack: string, opts: CaOptions): (chunk: string) => void {
    if (opts.output) {
        return (chunk) => opts.output!(stack, chunk);
    }
    // The engine's output arrives in chunks of several lines, or of part of one.
    let atLineStart = true;
    return (chunk) => {
        process.stderr.write(`${atLineStart ? `  ${stack} | ` : ""}${chunk.replace(/\n(?=[\s\S])/g, `\n  ${stack} | `)}`);
        atLineStart = chunk.endsWith("\n");
    };
}

/** Preview, then up, of one stack's current config; throws with the engine's message on failure. */
async function previewAndUp(stack: automation.Stack, opts: CaOptions, label: string): Promise<void> {
    const out = engineOutput(stack.name, opts);
    const preview = await stack.preview({ onOutput: out });
    say(`${stack.name}: ${label}: preview: ${summary(preview.changeSummary)}`);
    if (opts.command === "preview") {
        return;
    }
    const up = await stack.up({ onOutput: out });
    say(`${stack.name}: ${label}: up: ${summary(up.summary.resourceChanges)} (${up.summary.result})`);
}

/** `pulumi <args>` with the workspace's CLI and environment, its stdout parsed as JSON. */
async function pulumiJson(stack: automation.Stack, args: string[]): Promise<unknown> {
    const ws = stack.workspace as automation.LocalWorkspace;
    const env = { ...process.env, ...ws.envVars, ...(ws.pulumiHome ? { PULUMI_HOME: ws.pulumiHome } : {}) };
    const { stdout } = await promisify(execFile)(ws.pulumiCommand.command, args, { cwd: ws.workDir, env, maxBuffer: 256 << 20 });
    return JSON.parse(stdout);
}

/**
 * A killed `up` leaves the stack locked and its interrupted operations pending (cli/interrupted.ts).
 * Says what it finds; before an up it removes the lock of a process that is gone and clears the
 * pending creates that leave nothing behind, or stops with what a person has to do. A preview
 * only reports (it takes no lock and changes nothing).
 */
async function recoverInterruptedUpdate(stack: automation.Stack, opts: CaOptions): Promise<void> {
    const log = opts.log ?? say;
    const project = await stack.workspace.projectSettings(); // Pulumi.yaml, as the CLI reads it
    const backendDir = fileBackendDir(opts.envVars?.PULUMI_BACKEND_URL ?? process.env.PULUMI_BACKEND_URL ?? project.backend?.url ?? "", PROJECT_ROOT);
    const locks = backendDir ? readStackLocks(backendDir, project.name, stack.name) : [];
    const pending = pendingOperations(await pulumiJson(stack, ["stack", "export", "--stack", stack.name]));
    if (locks.length === 0 && pending.length === 0) {
        return;
    }
    const plan = planRecovery(stack.name, locks, pending);
    plan.explanation.forEach((line) => log(line));
    if (opts.command === "preview") {
        return;
    }
    if (plan.liveLocks.length > 0 || plan.blocking.length > 0) {
        throw new Error(`${stack.name}: not starting: an earlier update did not finish\n  - ${plan.explanation.join("\n  - ")}`);
    }
    if (plan.staleLocks.length > 0) {
        await stack.cancel();
    }
    if (plan.clearable.length > 0) {
        const out = engineOutput(stack.name, opts);
        await stack.refresh({ clearPendingCreates: true, onOutput: out });
    }
    log(`${stack.name}: recovered from the interrupted update; this ${opts.command} finishes its job`);
}

export async function runCa(opts: CaOptions): Promise<void> {
    const stacks: automation.Stack[] = [];
    for (const name of opts.stacks) {
        stacks.push(await openStack(name, opts)); // one at a time: each says what it does
    }
    for (const stack of stacks) {
        await recoverInterruptedUpdate(stack, opts);
    }
    if (opts.command !== "rotate") {
        for (const stack of stacks) {
            await previewAndUp(stack, opts, opts.command);
        }
        return;
    }

    // Plans per stack, from what each stack's config asks for now (resumable: a stack halfway
    // through has its phase in its config).
    const current = await Promise.all(stacks.map(configuredTrustState));
    const deployed = await Promise.all(stacks.map(deployedTrustState));
    const target = opts.to ?? Math.max(...current.map((s, i) => defaultTarget(s, deployed[i])));
    const plans = current.map((s) => nextPhases(s, target));
    for (const [i, stack] of stacks.entries()) {
        say(`${stack.name}: now ${formatTrustState(current[i])}; ${plans[i].length} phase(s) to root ${target}`);
    }

    // First bring every stack to what its config already says: after an interrupted run this
    // finishes the phase that failed (its gates run again); otherwise it is a no-op.
    for (const [i, stack] of stacks.entries()) {
        if (deployed[i] === undefined) {
            // Never deployed: nothing to finish. (On a mesh that runs on istiod's own CA, an up of
            // keyVersion 0 alone would restart everything for no change.)
            continue;
        }
        await previewAndUp(stack, { ...opts, command: "up" }, `resume ${formatTrustState(await configuredTrustState(stack))}`);
    }
    const rounds = Math.max(...plans.map((p) => p.length));
    const phaseName = (s: TrustState, before: TrustState): string =>
        s.trustedKeyVersions.length > before.trustedKeyVersions.length ? "phase 1 'trust'" : s.keyVersion !== before.keyVersion ? "phase 2 'sign'" : "phase 3 'complete'";
    for (let round = 0; round < rounds; round++) {
        for (const [i, stack] of stacks.entries()) {
            const step = plans[i][round];
            if (!step) {
                continue;
            }
            const before = round === 0 ? current[i] : plans[i][round - 1];
            const label = `${phaseName(step, before)} (${formatTrustState(step)})`;
            say(`${stack.name}: ${label}`);
            await applyTrustState(stack, step);
            try {
                await previewAndUp(stack, opts, label);
            } catch (err) {
                throw new Error(
                    `${stack.name}: ${label} failed; its config is set to this phase, the other stacks are at the previous one. ` +
                    `Fix the cause and run the same command again to resume.\n${describeFailure(err as Error, opts.verbose)}`);
            }
        }
    }
    say(`done: ${stacks.map((s) => s.name).join(", ")} sign with root ${target} and trust only it`);
}

async function main(argv: string[]): Promise<number> {
    let opts: CaOptions | "help";
    try {
        opts = parseArgs(argv);
    } catch (err) {
        process.stderr.write(`error: ${argumentError(err as Error)}\n${USAGE} (--help: what a first run takes)\n`);
        return 2;
    }
    if (opts === "help") {
        process.stdout.write(HELP);
        return 0;
    }
    tolerateRefusalEchoes();
    try {
        await runCa(opts);
        return 0;
    } catch (err) {
        process.stderr.write(`\n${describeFailure(err as Error, opts.verbose)}\n`);
        return 1;
    }
}

if (require.main === module) {
    void main(process.argv.slice(2)).then((code) => process.exit(code));
}
