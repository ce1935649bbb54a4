// Runs one step as its command does (steps/main.ts): settings from the environment and the
// stack's settings file, progress on stderr, one JSON summary as the last stdout line, everything
// within the output limits of steps/stepOutput.ts whatever the mesh size.
import * as fs from "node:fs";
import * as path from "node:path";
import { backupCacerts } from "./backupCacerts";
import { Kubectl, spawnCounter, ToolError } from "../kube/kubectl";
import { readStepSettingsFile, RESTARTED_NAMESPACES_FILE, resolveStackDir, STACK_DIR_ENV, STEP_SETTINGS_FILE } from "../common/stackDir";
import { unsupportedNodeVersion } from "../common/nodeVersion";
import { BACKUP_STEP, BackupStepName, readStepSettings, RunSettings, STEP_NAMES, StepName, StepSettings, UNCHANGED } from "./stepEnv";
import { FIRST_NAMES, StepOutput } from "./stepOutput";
import { restartIstiod } from "./restartIstiod";
import { restartWorkloads } from "./restartWorkloads";
import { StepContext, StepFailure } from "./stepContext";
import { verifyProxies } from "./verifyProxies";
import { verifyWorkloadCerts } from "./verifyWorkloadCerts";
import { waitRootCert } from "./waitRootCert";

const steps: Record<StepName | BackupStepName, (ctx: StepContext) => Promise<object>> = {
    [BACKUP_STEP]: (ctx) => {
        const backup = ctx.settings.backup;
        if (!backup) {
            throw new StepFailure("environment variable ISTIO_CA_BACKUP_NAMESPACE is not set: this entry point is run by the istio-ca program's commands");
        }
        return backupCacerts({ kubectl: ctx.kubectl, namespace: ctx.settings.istioNamespace, backupNamespace: backup.namespace,
            keep: backup.keep, restoreFrom: backup.restoreFrom, log: ctx.log });
    },
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
    /** Relative to the project root, on the machine that ran the step. */
    list?: string;
}

function summarizeNamespaces(names: string[], stackDir: string, root: string): NamespacesSummary {
    fs.mkdirSync(stackDir, { recursive: true });
    const file = path.join(stackDir, RESTARTED_NAMESPACES_FILE);
    fs.writeFileSync(file, names.map((n) => `${n}\n`).join(""));
    return { count: names.length, first: names.slice(0, FIRST_NAMES), list: path.relative(root, file) };
}

export interface RunStepOptions {
    env: NodeJS.ProcessEnv;
    write: (stream: "stdout" | "stderr", text: string) => void;
    /** The project root (stack directory paths are relative to it). */
    root: string;
    /** The Node.js version the step runs on (default: this process's). */
    nodeVersion?: string;
}

/** The step's settings: what cacerts is from the environment, how to run from the stack's settings file. */
function settingsOf(opts: RunStepOptions): { settings: StepSettings; stackDir: string } {
    const stackDir = resolveStackDir(opts.env, opts.root);
    if (!stackDir) {
        throw new Error(`environment variable ${STACK_DIR_ENV} is not set: this entry point is run by the istio-ca program's commands`);
    }
    return { settings: readStepSettings(opts.env, readStepSettingsFile<RunSettings>(stackDir)), stackDir };
}

const describe = (s: StepSettings): string =>
    `kubectl ${s.kubectl}, concurrency ${s.concurrency}, timeouts (s): rollout ${s.rolloutTimeoutMs / 1000}, ` +
    `root cert ${s.rootCertTimeoutMs / 1000}, proxy status ${s.proxyStatusTimeoutMs / 1000}, workload certs ${s.workloadCertTimeoutMs / 1000}`;

/** `main.js [unchanged] <step>`: exit code 0 (done), 1 (failed, with a report) or 2 (usage). */
export async function runStep(argv: string[], opts: RunStepOptions): Promise<number> {
    const out = new StepOutput(opts.write);
    const [first, second] = argv;
    const step = first === UNCHANGED ? second : first;
    if (!Object.hasOwn(steps, step ?? "")) {
        out.report(`usage: main.js [${UNCHANGED}] <${[BACKUP_STEP, ...STEP_NAMES].join("|")}>`);
        return 2;
    }
    const name = step as StepName | BackupStepName;
    if (first === UNCHANGED) {
        out.summary({ step: name, unchanged: "settings changed, cacerts did not: nothing to do (istio-ca:restartRequest re-runs the restarts)" });
        return 0;
    }
    const started = Date.now();
    const log = (line: string): void => out.progress(`[${name} +${((Date.now() - started) / 1000).toFixed(1)}s] ${line}`);
    const nodeVersion = opts.nodeVersion ?? process.version;
    const unsupported = unsupportedNodeVersion(nodeVersion);
    if (unsupported) {
        out.report(`istio-ca step ${name} failed: ${unsupported}`);
        return 1;
    }
    try {
        const { settings, stackDir } = settingsOf(opts);
        // The runtime first: the state keeps this output (the end-to-end tests check what the steps ran on).
        log(`Node.js ${nodeVersion}; settings (${path.relative(opts.root, stackDir)}/${STEP_SETTINGS_FILE}): ${describe(settings)}`);
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
