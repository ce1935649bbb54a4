// Real Istio in a local cluster: istiod (RealIstiod) and a pilot-agent per mesh pod (MeshAgents),
// started together, with what a stack needs to reach them (istioctl's path and its xDS address).
import * as path from "node:path";
import type { Cluster } from "./cluster";
import { findIstioBinDir, RealIstiod } from "./istiod";
import { MeshAgents } from "./meshAgents";

export interface RealIstioOptions {
    /** The kubelet's delay in syncing a changed cacerts into the running istiod (default 0). */
    secretSyncDelayMs?: number;
    /** The kubelet's delay in syncing istio-ca-root-cert into running pods (default 0). */
    configMapSyncDelayMs?: number;
    clusterId?: string;
    /** Proxy metadata of every sidecar (as the mesh config's defaultConfig.proxyMetadata would inject). */
    proxyMetadata?: Record<string, string>;
    /** Agents per namespace at most (default: every mesh pod). */
    maxAgentsPerNamespace?: number;
    /** No agents at all (istiod only). */
    withoutAgents?: boolean;
    log?: (line: string) => void;
}

export class RealIstio {
    private constructor(readonly istiod: RealIstiod, readonly agents: MeshAgents | undefined) {}

    /** Starts istiod for the cluster's istiod Deployment (it must exist: seedMesh) and the agents. */
    static async start(cluster: Cluster, opts: RealIstioOptions = {}): Promise<RealIstio> {
        const istiod = new RealIstiod(cluster, { secretSyncDelayMs: opts.secretSyncDelayMs, clusterId: opts.clusterId, log: opts.log });
        await istiod.start();
        const agents = opts.withoutAgents ? undefined : new MeshAgents(cluster, {
            discoveryAddress: () => istiod.xdsAddress,
            clusterId: opts.clusterId,
            proxyMetadata: opts.proxyMetadata,
            configMapSyncDelayMs: opts.configMapSyncDelayMs,
            maxPerNamespace: opts.maxAgentsPerNamespace,
            log: opts.log,
        });
        agents?.start();
        return new RealIstio(istiod, agents);
    }

    get istioctlPath(): string {
        return path.join(findIstioBinDir(), "istioctl");
    }

    /**
     * Config of a stack that verifies proxies with the real istioctl. istioctl reaches istiod at its
     * loopback address (istio-ca:istioctlXdsAddress) instead of port-forwarding to the istiod pod,
     * which kwok's fake pods cannot serve.
     */
    get stackConfig(): Record<string, string> {
        return { istioctlPath: this.istioctlPath, istioctlXdsAddress: this.istiod.xdsAddress, verifyProxyStatus: "true" };
    }

    async stop(): Promise<void> {
        await this.agents?.stop();
        await this.istiod.stop();
    }
}
