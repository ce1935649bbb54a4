import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { IstioCaConfig } from "./config";
import { STEP_ENTRY_POINT, STEP_NAMES, STEP_NEEDS, StepName, stepEnvironment } from "../lib/stepEnv";

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
    const restartIstiodForSigner = config.restartIstiodOnIntermediateRotation || config.restartWorkloadsOnIntermediateRotation;
    steps.set("restart-istiod", restartIstiodForSigner ? [trustBundleHash, signerHash] : [trustBundleHash]);
    if (config.verify.rootCertConfigMaps) {
        steps.set("wait-root-cert", [trustBundleHash]);
    }
    steps.set("restart-workloads", config.restartWorkloadsOnIntermediateRotation ? [trustBundleHash, signerHash] : [trustBundleHash]);
    if (config.verify.proxyStatus) {
        steps.set("verify-proxies", [trustBundleHash, signerHash]);
    }
    if (config.verify.workloadCertificates) {
        steps.set("verify-workload-certs", [trustBundleHash, signerHash]);
    }
    return steps;
}

/**
 * What the manual procedure does by hand after `cacerts` changes, in its order, each step waiting
 * for the previous one: restart istiod, wait for istio-ca-root-cert everywhere, restart the
 * Istio-enabled workloads, prove every proxy is SYNCED and every workload certificate re-issued.
 * Each step is a command.local.Command that runs one of the project's TypeScript entry points
 * (lib/cli/main.ts); a failed step fails `pulumi up`, is not recorded as done, and so runs again
 * on the next `pulumi up`.
 */
export class MeshRollout extends pulumi.ComponentResource {
    /** Namespaces whose deployments were restarted (read from the step's summary line). */
    public readonly restartedNamespaces: pulumi.Output<string[]>;
    /** The last step (gate) of the run: what the recorded state waits for (#12). */
    public readonly lastStep: command.local.Command;

    constructor(name: string, args: MeshRolloutArgs, opts?: pulumi.ComponentResourceOptions) {
        super("istio-ca:mesh:MeshRollout", name, {}, opts);
        const { config } = args;
        const triggers = stepTriggers(config, args.trustBundleHash, args.signerHash);

        let previous: command.local.Command | undefined;
        const commands = new Map<StepName, command.local.Command>();
        for (const step of STEP_NAMES.filter((s) => triggers.has(s))) {
            const cmd: command.local.Command = new command.local.Command(`${name}-${step}`, {
                create: `node ${STEP_ENTRY_POINT} ${step}`,
                // Only what the step compares goes into its environment: an unrelated value that is
                // unknown during preview (a new intermediate) would show the step as changed.
                environment: pulumi
                    .all(STEP_NEEDS[step].map((key) => (key === "trustBundlePem" ? args.trustBundlePem : args.signingCertPem)))
                    .apply((values) => stepEnvironment(config, Object.fromEntries(STEP_NEEDS[step].map((key, i) => [key, values[i]])), step)),
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
