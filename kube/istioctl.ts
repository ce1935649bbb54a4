// A thin wrapper over the istioctl binary, as kube/kubectl.ts is over kubectl: the cluster flags,
// the Istio namespace and (where istioctl cannot port-forward to istiod) the xDS address are added
// in one place.
import { clusterFlags, runTool } from "./kubectl";

export interface IstioctlOptions {
    /** Path or name of the istioctl binary (istio-ca:istioctlPath). */
    binary: string;
    kubeconfig?: string;
    context?: string;
    /** Where istiod runs (`-i`). */
    istioNamespace: string;
    /** istiod's xDS address for the commands that take `--xds-address` (istio-ca:istioctlXdsAddress). */
    xdsAddress?: string;
}

export class Istioctl {
    constructor(private readonly opts: IstioctlOptions) {}

    /** `istioctl proxy-status [extra]`: asks istiod (directly at the xDS address when one is set). */
    proxyStatus(extra: string[] = []): Promise<string> {
        const xds = this.opts.xdsAddress ? ["--xds-address", this.opts.xdsAddress] : [];
        return this.run(["proxy-status", ...xds, ...extra]);
    }

    /** `istioctl proxy-config secret <pod.namespace> -o json`: the certificates a proxy holds. */
    proxySecrets(proxy: string): Promise<string> {
        return this.run(["proxy-config", "secret", proxy, "-o", "json"]);
    }

    private run(args: string[]): Promise<string> {
        return runTool(this.opts.binary, [...args, ...clusterFlags(this.opts), "-i", this.opts.istioNamespace], "istioctl", "istio-ca:istioctlPath");
    }
}
