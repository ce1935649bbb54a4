import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { IstioCaConfig } from "./config";
import { STEP_ENTRY_POINT, StepName, stepEnvironment } from "../lib/stepEnv";

export interface MeshRolloutArgs {
    config: IstioCaConfig;
    /** Public hash of the cacerts content: a new value re-runs every step. */
    contentHash: pulumi.Input<string>;
    /** SHA-256 fingerprints of the roots in root-cert.pem (public). */
    trustFingerprints: pulumi.Input<string[]>;
    /** Resources the first step waits for (the cacerts Secret). */
    after: pulumi.Resource[];
}

/**
 * What the manual procedure does by hand after `cacerts` changes, in its order, each step waiting
 * for the previous one: restart istiod, wait for istio-ca-root-cert everywhere, restart the
 * Istio-enabled workloads, prove every proxy is SYNCED. Each step is a command.local.Command that
 * runs one of the project's TypeScript entry points (lib/cli/main.ts); a failed step fails
 * `pulumi up`, is not recorded, and so runs again on the next `pulumi up`.
 */
export class MeshRollout extends pulumi.ComponentResource {
    /** Namespaces whose deployments were restarted (read from the step's summary line). */
    public readonly restartedNamespaces: pulumi.Output<string[]>;

    constructor(name: string, args: MeshRolloutArgs, opts?: pulumi.ComponentResourceOptions) {
        super("istio-ca:mesh:MeshRollout", name, {}, opts);
        const { config } = args;

        const steps: StepName[] = ["restart-istiod"];
        if (config.verify.rootCertConfigMaps) {
            steps.push("wait-root-cert");
        }
        steps.push("restart-workloads");
        if (config.verify.proxyStatus) {
            steps.push("verify-proxies");
        }

        let previous: command.local.Command | undefined;
        const commands = new Map<StepName, command.local.Command>();
        for (const step of steps) {
            const cmd: command.local.Command = new command.local.Command(`${name}-${step}`, {
                create: `node ${STEP_ENTRY_POINT} ${step}`,
                environment: pulumi.output(args.trustFingerprints).apply((fps) => stepEnvironment(config, fps)),
                triggers: [args.contentHash],
            }, { parent: this, dependsOn: previous ? [previous] : args.after });
            commands.set(step, cmd);
            previous = cmd;
        }

        this.restartedNamespaces = commands.get("restart-workloads")!.stdout.apply(parseRestartedNamespaces);
        this.registerOutputs({ restartedNamespaces: this.restartedNamespaces });
    }
}

/** The restart step prints one JSON summary as its last stdout line. */
export function parseRestartedNamespaces(stdout: string): string[] {
    const last = stdout.trim().split("\n").pop() ?? "";
    try {
        const summary = JSON.parse(last) as { restartedNamespaces?: string[] };
        return summary.restartedNamespaces ?? [];
    } catch {
        return [];
    }
}
