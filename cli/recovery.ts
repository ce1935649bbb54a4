// Before an `up`: a killed earlier `up` left a lock and pending operations (cli/interrupted.ts decides
// what is safe); this repairs what is safe with the CLI (`pulumi cancel`, `refresh --clear-pending-creates`).
import * as automation from "@pulumi/pulumi/automation";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { fileBackendDir, pendingOperations, planRecovery, readStackLocks } from "./interrupted";
import { engineOutput, PROJECT_ROOT, say } from "./output";
import { CaOptions } from "./caOptions";

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
export async function recoverInterruptedUpdate(stack: automation.Stack, opts: CaOptions): Promise<void> {
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
