// Entry point of the step commands: `node dist/lib/cli/main.js <step>`, settings from the
// environment (lib/stepEnv.ts). Progress goes to stderr; the last stdout line is a JSON summary
// (the program reads restartedNamespaces from it). Exit 1 with a report on failure.
import { backupCacerts } from "../backup";
import { Kubectl, spawnCounter, ToolError } from "../kubectl";
import { BACKUP_STEP, BackupStepName, readStepSettings, STEP_NAMES, StepName } from "../stepEnv";
import { restartIstiod, restartWorkloads, StepContext, StepFailure, verifyProxies, verifyWorkloadCerts, waitRootCert } from "../steps";

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

async function main(argv: string[]): Promise<number> {
    const step = argv[0] as StepName | BackupStepName;
    if (!Object.hasOwn(steps, step)) {
        process.stderr.write(`usage: main.js <${[BACKUP_STEP, ...STEP_NAMES].join("|")}>\n`);
        return 2;
    }
    const started = Date.now();
    const log = (line: string): void => {
        process.stderr.write(`[${step} +${((Date.now() - started) / 1000).toFixed(1)}s] ${line}\n`);
    };
    try {
        const settings = readStepSettings(process.env);
        const kubectl = new Kubectl({ binary: settings.kubectl, kubeconfig: settings.kubeconfig, context: settings.context });
        const summary = await steps[step]({ settings, kubectl, log });
        log(`done (${spawnCounter.kubectl} kubectl, ${spawnCounter.istioctl} istioctl processes)`);
        process.stdout.write(JSON.stringify({ step, ...summary, elapsedMs: Date.now() - started, processes: spawnCounter }) + "\n");
        return 0;
    } catch (err) {
        const known = err instanceof StepFailure || err instanceof ToolError;
        process.stderr.write(`istio-ca step ${step} failed: ${known ? (err as Error).message : (err as Error).stack}\n`);
        return 1;
    }
}

main(process.argv.slice(2)).then((code) => process.exit(code));
