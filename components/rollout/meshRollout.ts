import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { IstioCaConfig } from "../../plan/config";
import { BackupStepName, ExpectedCa, STEP_ENTRY_POINT, STEP_NAMES, STEP_NEEDS, StepName, stepEnvironment, UNCHANGED } from "../../steps/stepEnv";
import type { NamespacesSummary } from "../../steps/stepRunner";
import { STACK_DIR_ENV, stackDirFor } from "../../common/stackDir";

export interface MeshRolloutArgs {
    config: IstioCaConfig;
    /** sha256 of root-cert.pem. */
    trustBundleHash: pulumi.Input<string>;
    /** sha256 of ca-cert.pem + cert-chain.pem. */
    signerHash: pulumi.Input<string>;
    /** root-cert.pem and ca-cert.pem (public): the checks compare the mesh with them. */
    trustBundlePem: pulumi.Input<string>;
    signingCertPem: pulumi.Input<string>;
    /** Resources the first step waits for (the cacerts Secret). */
    after: pulumi.Resource[];
}

/** This stack's directory in the project (common/stackDir.ts): the steps' settings file and lists. */
export const stepStackDir = (): string => stackDirFor(pulumi.getProject(), pulumi.getStack());

/** What a step command runs. */
export function stepCommand(step: StepName | BackupStepName) {
    return {
        create: `node ${STEP_ENTRY_POINT} ${step}`,
        // A change of the inputs that is not a trigger (an older version's environment, another
        // istioNamespace) is an update: it runs this, which restarts nothing.
        update: `node ${STEP_ENTRY_POINT} ${UNCHANGED} ${step}`,
        // No step reads its previous output; the provider would pass it in PULUMI_COMMAND_STDOUT,
        // and one environment string over 128 KiB makes the next run fail to start.
        addPreviousOutputInEnv: false,
    };
}

/** A step command's environment: what cacerts is (steps/stepEnv.ts) and where the stack's settings are. */
export function stepCommandEnv(config: IstioCaConfig, expected: ExpectedCa, step: StepName | BackupStepName): Record<string, string> {
    return { ...stepEnvironment(config, expected, step), [STACK_DIR_ENV]: stepStackDir() };
}

/**
 * Which steps run, and which change re-runs each. A changed trust bundle (any root change) runs
 * everything, as the manual procedure does. An intermediate-only change does not touch the root
 * ConfigMaps; workloads are restarted unless configured not to, and then istiod is restarted
 * first: istiod hot-reloads a new intermediate only once the kubelet has synced the mounted Secret
 * (a minute or more after the update), so workloads restarted before that get certificates from
 * the intermediate being retired. A new istiod pod mounts the Secret as it is now and signs with
 * it from its start (measured with real istiod: tests/e2e/realIstio.test.ts).
 */
export function stepTriggers(config: IstioCaConfig, trustBundleHash: pulumi.Input<string>, signerHash: pulumi.Input<string>): Map<StepName, pulumi.Input<string>[]> {
    const steps = new Map<StepName, pulumi.Input<string>[]>();
    // istio-ca:restartRequest: a user's explicit "run the restarts again" (and the checks after them).
    // Added only when set, so the triggers of stacks that never set it stay what they were.
    const request = config.restartRequest ? [`restartRequest=${config.restartRequest}`] : [];
    const restartIstiodForSigner = config.restartIstiodOnIntermediateRotation || config.restartWorkloadsOnIntermediateRotation;
    steps.set("restart-istiod", [...(restartIstiodForSigner ? [trustBundleHash, signerHash] : [trustBundleHash]), ...request]);
    if (config.verify.rootCertConfigMaps) {
        steps.set("wait-root-cert", [trustBundleHash]);
    }
    steps.set("restart-workloads", [...(config.restartWorkloadsOnIntermediateRotation ? [trustBundleHash, signerHash] : [trustBundleHash]), ...request]);
    if (config.verify.proxyStatus) {
        steps.set("verify-proxies", [trustBundleHash, signerHash, ...request]);
    }
    if (config.verify.workloadCertificates) {
        steps.set("verify-workload-certs", [trustBundleHash, signerHash, ...request]);
    }
    return steps;
}

/**
 * What the manual procedure does by hand after `cacerts` changes, in its order, each step waiting
 * for the previous one: restart istiod, wait for istio-ca-root-cert everywhere, restart the
 * Istio-enabled workloads, prove every proxy is SYNCED and every workload certificate re-issued.
 * Each step is a command.local.Command that runs one of the project's TypeScript entry points
 * (steps/main.ts); a failed step fails `pulumi up`, is not recorded as done, and so runs again
 * on the next `pulumi up`.
 */
export class MeshRollout extends pulumi.ComponentResource {
    /** Namespaces whose deployments were restarted: count, first names, the file with all (the step's summary line). */
    public readonly restartedNamespaces: pulumi.Output<NamespacesSummary>;
    /** The last step (gate) of the run: what the recorded state waits for (#12). */
    public readonly lastStep: command.local.Command;

    constructor(name: string, args: MeshRolloutArgs, opts?: pulumi.ComponentResourceOptions) {
        super("istio-ca:mesh:MeshRollout", name, {}, opts);
        const { config } = args;
        const triggers = stepTriggers(config, args.trustBundleHash, args.signerHash);

        let previous: command.local.Command | undefined;
        const commands = new Map<StepName, command.local.Command>();
        for (const step of STEP_NAMES.filter((s) => triggers.has(s))) {
            // Only what the step compares goes into its environment: an unrelated value that is
            // unknown during preview (a new intermediate) would show the step as changed.
            const environment = pulumi
                .all(STEP_NEEDS[step].map((key) => (key === "trustBundlePem" ? args.trustBundlePem : args.signingCertPem)))
                .apply((values) => stepCommandEnv(config, Object.fromEntries(STEP_NEEDS[step].map((key, i) => [key, values[i]])), step));
            const cmd: command.local.Command = new command.local.Command(`${name}-${step}`, {
                ...stepCommand(step),
                environment,
                triggers: triggers.get(step),
            }, { parent: this, dependsOn: previous ? [previous] : args.after });
            commands.set(step, cmd);
            previous = cmd;
        }

        this.lastStep = previous!;
        this.restartedNamespaces = commands.get("restart-workloads")!.stdout.apply(parseRestartedNamespaces);
        this.registerOutputs({ restartedNamespaces: this.restartedNamespaces });
    }
}

/** The restart step prints one JSON summary as its last stdout line (steps/stepRunner.ts). */
export function parseRestartedNamespaces(stdout: string): NamespacesSummary {
    const last = stdout.trim().split("\n").pop() ?? "";
    try {
        const summary = JSON.parse(last) as { restartedNamespaces?: NamespacesSummary };
        return summary.restartedNamespaces ?? { count: 0, first: [] };
    } catch {
        return { count: 0, first: [] };
    }
}
