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
import * as fs from "node:fs";
import * as path from "node:path";
import { argumentError, describeFailure } from "./cliErrors";
import { missingBackendDir, missingStackProblem, projectBackendDir, stackCreated } from "./firstRun";
import { fileBackendDir } from "./interrupted";
import { tolerateRefusalEchoes } from "../plan/refusal";
import { formatTrustState, nextPhases, TrustState } from "../plan/rotation";
import { engineOutput, PROJECT_ROOT, say, summary } from "./output";
import { inlineProgram } from "../program/inline";
import { CaOptions, HELP, parseArgs, USAGE } from "./caOptions";
import { applyTrustState, configuredTrustState, defaultTarget, deployedTrustState } from "./stackTrustState";
import { recoverInterruptedUpdate } from "./recovery";

/** Selects the stack; creates it when it does not exist and its Pulumi.<stack>.yaml does (cli/firstRun.ts). */
async function openStack(name: string, opts: CaOptions): Promise<automation.Stack> {
    const env = { ...process.env, ...opts.envVars };
    const noDir = missingBackendDir(env, PROJECT_ROOT);
    if (noDir) {
        throw new Error(noDir);
    }
    const backendDir = env.PULUMI_BACKEND_URL ? fileBackendDir(env.PULUMI_BACKEND_URL, PROJECT_ROOT) : projectBackendDir(PROJECT_ROOT);
    if (backendDir === projectBackendDir(PROJECT_ROOT)) {
        // The project's own backend (Pulumi.yaml's default) is a git-ignored directory: a fresh clone has none.
        fs.mkdirSync(backendDir, { recursive: true });
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
