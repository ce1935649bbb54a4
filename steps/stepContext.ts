// What every step gets (its settings, kubectl, a progress log) and how it fails: a StepFailure is
// a known failure, reported with what was expected, what was found and how to retry.
import { Kubectl } from "../kube/kubectl";
import { Istioctl } from "../kube/istioctl";
import { WatchTarget } from "../kube/kubeWatch";
import { StepSettings } from "./stepEnv";

export class StepFailure extends Error {
    constructor(message: string) {
        super(message);
        this.name = "StepFailure";
    }
}

export interface StepContext {
    settings: StepSettings;
    kubectl: Kubectl;
    /** Progress for a person (stderr). */
    log: (line: string) => void;
}

export const RETRY_HINT = "Fix the cause (or raise the timeout in stack config), then run `pulumi up` again: this step runs again.";

export const seconds = (ms: number): string => `${Math.round(ms / 1000)}s`;

/** How the steps' watches reach the cluster: the same kubectl, kubeconfig and context as every call. */
export const watchTarget = (s: StepSettings): WatchTarget => ({ binary: s.kubectl, kubeconfig: s.kubeconfig, context: s.context });

/** istioctl as the settings say: binary, cluster, Istio namespace, xDS address. */
export const istioctlFor = (s: StepSettings): Istioctl =>
    new Istioctl({ binary: s.istioctl, kubeconfig: s.kubeconfig, context: s.context, istioNamespace: s.istioNamespace, xdsAddress: s.istioctlXdsAddress });
