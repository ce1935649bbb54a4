import * as k8s from "@pulumi/kubernetes";
import { IstioCaConfig } from "../plan/config";

/**
 * The stack's own Kubernetes provider: one stack, one cluster. `enableSecretMutable` makes a
 * change of Secret data an in-place update; without it the provider REPLACES the Secret, and with
 * the fixed name `cacerts` that replacement is delete-then-create: a window without `cacerts`,
 * the very outage of the manual procedure.
 */
export function clusterProvider(config: IstioCaConfig): k8s.Provider {
    return new k8s.Provider(`cluster-${config.clusterName}`, {
        kubeconfig: config.kubeconfig,
        context: config.kubeContext,
        enableSecretMutable: true,
    });
}
