import * as os from "node:os";
import { cpuSeconds, Rig } from "./rig";
import { auditCounts, auditFlushed, Counts } from "./audit";

export interface PartResult {
    wallMs: number;
    processes: number;
    requestsTotal: number;
    audit: Counts;
    /** CPU seconds used during the part, by component (see cpuSeconds). */
    cpu: Record<string, number>;
    /** 1-minute load average before and after (other work on the machine shows here). */
    load: [number, number];
    extra?: Record<string, unknown>;
}

export async function measured(rig: Rig, fn: () => Promise<{ processes: number; extra?: Record<string, unknown> }>): Promise<PartResult> {
    const { cluster, api } = rig;
    const a0 = await auditFlushed(cluster);
    const m0 = await api.requestTotal();
    const c0 = cpuSeconds(rig);
    const l0 = os.loadavg()[0];
    const t0 = Date.now();
    const r = await fn();
    const wallMs = Date.now() - t0;
    const c1 = cpuSeconds(rig);
    rig.istiod.assertHealthy();
    const m1 = await api.requestTotal();
    const a1 = await auditFlushed(cluster);
    const cpu = Object.fromEntries(Object.keys(c1).map((k) => [k, Math.round((c1[k] - (c0[k] ?? 0)) * 10) / 10]));
    return { wallMs, processes: r.processes, requestsTotal: m1 - m0 - 1, audit: auditCounts(cluster, a0, a1), cpu, load: [l0, os.loadavg()[0]], extra: r.extra };
}
