// What the program reads from outside its config: the cluster (through kubectl), its own last
// deployment (its stack outputs) and a root stack. Unit tests replace it with stubs.
import * as pulumi from "@pulumi/pulumi";
import * as fs from "node:fs";
import * as path from "node:path";
import { Kubectl } from "../kube/kubectl";
import { ClusterFacts, inspectCluster } from "../plan/clusterFacts";
import { IstioCaConfig } from "../plan/config";
import { readRestoreSource } from "../plan/restore";
import { restartDenied, restartDeniedWarning } from "../plan/restartAccess";
import { RootStackReader, RootStackRoots } from "../components/pki/roots";
import { RunSettings, STEP_ENTRY_POINT } from "../steps/stepEnv";
import { projectRoot } from "../common/stackDir";

/** What the program needs from outside the config; replaced by stubs in unit tests. */
export interface ProgramEnvironment {
    /** Reads the cluster (istiod, the CA Secrets); throws a clear error when it cannot be read. */
    inspectCluster(config: IstioCaConfig): Promise<ClusterFacts>;
    /** The stack outputs the last deployment of this stack recorded (undefined: none yet). */
    previousOutputs(): Promise<Record<string, unknown> | undefined>;
    /** The `roots` output of a root stack (istio-ca:rootStack). */
    readRootStack: RootStackReader;
    /** Saves how the steps run for them to read at run time (default: the stack's settings file). */
    saveStepSettings?: (stackDir: string, settings: RunSettings) => void;
}

/** The real environment: the cluster through kubectl, the previous state through this stack's own outputs. */
export const liveEnvironment: ProgramEnvironment = {
    async inspectCluster(config) {
        const where = config.kubeContext ? `context ${config.kubeContext}` : "the current kube context";
        const kubectl = new Kubectl({ binary: config.kubectlPath, kubeconfig: config.kubeconfig, context: config.kubeContext, timeoutMs: 30_000 });
        const facts = await inspectCluster({
            kubectl,
            where: config.kubeconfig ? `${where} of ${config.kubeconfig}` : where,
            istioNamespace: config.istioNamespace,
            istiodSelector: config.istiodSelector,
        });
        // Namespaced restart rights (deploy/rbac.yaml): said at preview, not midway through the restarts.
        const denied = await restartDenied(kubectl, config.istioNamespace, config.workloadNamespaces).catch((err: Error) => {
            pulumi.log.warn(`could not check this identity's restart rights (the restart steps will tell): ${err.message}`);
            return [];
        });
        if (denied.length > 0) {
            pulumi.log.warn(restartDeniedWarning(denied, pulumi.getStack()));
        }
        // The backup to restore stays in memory, like cacerts itself.
        const name = config.restoreCacertsFrom;
        return name ? { ...facts, restoreSource: await readRestoreSource(kubectl, config.backupNamespace, name) } : facts;
    },
    async previousOutputs() {
        // The stack reads its own last outputs: what the cluster was given last time.
        const self = new pulumi.StackReference("previous-deployment", {
            name: `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`,
        });
        const outputs = await new Promise<Record<string, unknown>>((resolve) => self.outputs.apply(resolve));
        return outputs && Object.keys(outputs).length > 0 ? outputs : undefined;
    },
    async readRootStack(name) {
        // The root keys cross only as this secret output; values stay secret in this stack's state.
        const root = new pulumi.StackReference("root-stack", { name });
        const roots = await new Promise<unknown>((resolve) => root.getOutput("roots").apply(resolve));
        return (roots ?? undefined) as RootStackRoots | undefined;
    },
};

/** The step commands run compiled JavaScript; say so before anything is applied if it is missing. */
export function assertStepsBuilt(root = projectRoot()): void {
    if (!fs.existsSync(path.join(root, STEP_ENTRY_POINT))) {
        throw new Error(`${STEP_ENTRY_POINT} is missing under ${root}: run \`npm run build\` (npm ci does it) before pulumi preview/up`);
    }
}

