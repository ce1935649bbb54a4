// Runs one step as its command does (lib/cli/main.ts): settings from the environment, progress on
// stderr, one JSON summary as the last stdout line, everything within the output limits of
// lib/stepOutput.ts whatever the mesh size.
import * as fs from "node:fs";
import * as path from "node:path";
import { backupCacerts } from "./backup";
import { Kubectl, spawnCounter, ToolError } from "./kubectl";
import { RESTARTED_NAMESPACES_FILE, resolveStackDir } from "./stackDir";
import { BACKUP_STEP, BackupStepName, readStepSettings, STEP_NAMES, StepName } from "./stepEnv";
import { FIRST_NAMES, StepOutput } from "./stepOutput";
import { restartIstiod, restartWorkloads, StepContext, StepFailure, verifyProxies, verifyWorkloadCerts, waitRootCert } from "./steps";

const steps: Record<StepName | BackupStepName, (ctx: StepContext) => Promise<object>> = {
    [BACKUP_STEP]: (ctx) => backupCacerts({ kubectl: ctx.kubectl, namespace: ctx.settings.istioNamespace, log: ctx.log }),
    "restart-istiod": restartIstiod,
    "wait-root-cert": waitRootCert,
    "restart-workloads": restartWorkloads,
    "verify-proxies": verifyProxies,
    "verify-workload-certs": verifyWorkloadCerts,
};

/** What the summary says of the restarted namespaces: a count, the first names, the file with all of them. */
export interface NamespacesSummary {
    count: number;
    first: string[];
    /** Relative to the project root, on the machine that ran the step; absent when the step had no stack directory. */
    list?: string;
}

function summarizeNamespaces(names: string[], stackDir: string | undefined, root: string): NamespacesSummary {
    const summary: NamespacesSummary = { count: names.length, first: names.slice(0, FIRST_NAMES) };
    if (stackDir) {
        fs.mkdirSync(stackDir, { recursive: true });
        const file = path.join(stackDir, RESTARTED_NAMESPACES_FILE);
        fs.writeFileSync(file, names.map((n) => `${n}\n`).join(""));
        summary.list = path.relative(root, file);
    }
    return summary;
}

export interface RunStepOptions {
    env: NodeJS.ProcessEnv;
    write: (stream: "stdout" | "stderr", text: string) => void;
    /** The project root (stack directory paths are relative to it). */
    root: string;
}

export async function runStep(step: string, opts: RunStepOptions): Promise<number> {
    const out = new StepOutput(opts.write);
    if (!Object.hasOwn(steps, step)) {
        out.report(`usage: main.js <${[BACKUP_STEP, ...STEP_NAMES].join("|")}>`);
        return 2;
    }
    const name = step as StepName | BackupStepName;
    const started = Date.now();
    const log = (line: string): void => out.progress(`[${name} +${((Date.now() - started) / 1000).toFixed(1)}s] ${line}`);
    try {
        const settings = readStepSettings(opts.env);
        const stackDir = resolveStackDir(opts.env, opts.root);
        const kubectl = new Kubectl({ binary: settings.kubectl, kubeconfig: settings.kubeconfig, context: settings.context });
        const { restartedNamespaces, ...summary } = await steps[name]({ settings, kubectl, log }) as { restartedNamespaces?: string[] };
        log(`done (${spawnCounter.kubectl} kubectl, ${spawnCounter.istioctl} istioctl processes)`);
        out.summary({
            step: name, ...summary,
            ...(restartedNamespaces ? { restartedNamespaces: summarizeNamespaces(restartedNamespaces, stackDir, opts.root) } : {}),
            elapsedMs: Date.now() - started, processes: spawnCounter,
        });
        return 0;
    } catch (err) {
        const known = err instanceof StepFailure || err instanceof ToolError;
        out.report(`istio-ca step ${name} failed: ${known ? (err as Error).message : (err as Error).stack}`);
        return 1;
    }
}
