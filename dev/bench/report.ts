import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PROJECT_ROOT } from "../../tests/support/engine";
import { Options } from "./options";
import { logLines, progress, secs } from "./progress";
import { USERS } from "./rig";
import { sumWhere } from "./audit";
import { Limit } from "./baseline";
import { PartResult } from "./measure";

// One mesh size

export interface SizeResult {
    n: number;
    deployments: number;
    nodes: number;
    limit: Limit;
    manual?: PartResult;
    floor: PartResult;
    firstUp: PartResult;
    up: PartResult;
    previewMs: number;
    setupMs: number;
}

// Report

const isControlPlane = (k: string): boolean => /^system:|^kwok /.test(k);

const clientOf = (part: PartResult, user: string): number => sumWhere(part.audit, (k) => k.startsWith(`${user} `));

/** "control plane + istiod + tools" CPU seconds of a part. */
function cpuSplit(p: PartResult): string {
    const plane = Object.entries(p.cpu).filter(([k]) => k !== "tools" && k !== "istiod").reduce((n, [, v]) => n + v, 0);
    return `${plane.toFixed(0)} + ${(p.cpu.istiod ?? 0).toFixed(1)} + ${(p.cpu.tools ?? 0).toFixed(0)}`;
}

export function table(results: SizeResult[], opts: Options): string {
    const rows = [
        "| N namespaces (Deployments) | (a) manual | (b) `pulumi up` | (b) restart+verify | physical limit | (b) r+v / limit | (c) direct-API floor | (b) r+v / floor | (a) / (b) | API requests (a) client / all | API requests (b) client / all | processes (a) / (b) | CPU s (a) / (c) / (b): control plane + istiod + tools | no-op `pulumi preview` |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ];
    for (const r of results) {
        const rv = r.up.extra!.stepsChainMs as number;
        const a = r.manual;
        rows.push(`| ${r.n} (${r.deployments}) | ${a ? secs(a.wallMs) : "-"} | ${secs(r.up.wallMs)} | ${secs(rv)} | ${secs(r.limit.limitMs)} | ${(rv / r.limit.limitMs).toFixed(2)} | ${secs(r.floor.wallMs)} | ${(rv / r.floor.wallMs).toFixed(2)} | ${a ? (a.wallMs / r.up.wallMs).toFixed(1) + "×" : "-"} | ` +
            `${a ? `${clientOf(a, "admin")} / ${a.requestsTotal}` : "-"} | ${clientOf(r.up, USERS.istioCa)} / ${r.up.requestsTotal} | ${a ? a.processes : "-"} / ${r.up.processes} | ${a ? cpuSplit(a) : "-"} / ${cpuSplit(r.floor)} / ${cpuSplit(r.up)} | ${secs(r.previewMs)} |`);
    }
    return rows.join("\n") + `\n\nkwok readiness ${opts.delayMs} ms + [0, ${opts.jitterMs}] ms per pod, ${opts.deployments} Deployments per namespace (replicas 1), restartConcurrency ${opts.concurrency}. ` +
        `Simulation settings (dev/bench/rig.ts simulationSettings): controller/scheduler client QPS ${opts.controlPlaneQps || "default"}, deployment/replicaset syncs ${opts.controllerSyncs || "default"}, ` +
        `GOGC ${opts.gogc || "default"}, kwok podPlayStageParallelism ${opts.kwokParallelism || "default"}.`;
}

export function details(r: SizeResult): string {
    const parts: [string, PartResult | undefined][] = [["(a) manual", r.manual], ["(c) direct-API floor", r.floor], ["(b) first up", r.firstUp], ["(b) rotation up", r.up]];
    const lines = [`### N = ${r.n} (${r.deployments} Deployments)`, "",
        `- cluster start + seeding: ${secs(r.setupMs)}`,
        `- single rollouts alone (istiod twice, 3 workloads): ${r.limit.samplesMs.map(secs).join(", ")}; istiod ${secs(r.limit.istiodMs)}, control-plane overhead per workload rollout ${secs(r.limit.overheadMs)}; limit ${secs(r.limit.limitMs)}`,
    ];
    for (const [name, p] of parts) {
        if (!p) continue;
        const clients = Object.entries(p.audit).sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k}: ${v}`).join(", ");
        lines.push(`- ${name}: wall ${secs(p.wallMs)}; processes ${p.processes}; apiserver_request_total +${p.requestsTotal}; audit by user/agent: ${clients}; control plane: ${sumWhere(p.audit, isControlPlane)}`);
        lines.push(`  - CPU seconds: ${Object.entries(p.cpu).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ")}; load average ${p.load[0].toFixed(1)} before, ${p.load[1].toFixed(1)} after`);
        if (p.extra) lines.push(`  - ${JSON.stringify(p.extra)}`);
    }
    lines.push(`- no-op preview: ${secs(r.previewMs)}`);
    return lines.join("\n");
}

/** The run's start: its time and the machine's load then (other work on the 2 shared cores shows here). */
export const START = { iso: new Date().toISOString(), load: os.loadavg() };

/** The results file, rewritten after each size so that a run cut short keeps what it measured. */
export function writeResults(opts: Options, results: SizeResult[], complete: boolean): void {
    if (!opts.out) return;
    const out = path.resolve(PROJECT_ROOT, opts.out);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    const done = complete ? "" : ` (partial: sizes ${results.map((r) => r.n).join(", ")} of ${opts.sizes.join(", ")} done)`;
    fs.writeFileSync(out, [
        `# Rotation benchmark, ${START.iso} to ${new Date().toISOString()}${done}`,
        "",
        `Command: \`npm run bench -- ${process.argv.slice(2).join(" ")}\`; machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? "?"}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}; ` +
            `load average at the start ${START.load.map((l) => l.toFixed(2)).join(", ")} (1, 5, 15 min).`,
        "",
        table(results, opts),
        "",
        results.map(details).join("\n\n"),
        "",
        "## Log",
        "",
        "```",
        ...logLines,
        "```",
        "",
    ].join("\n"));
    progress(`wrote ${out}`);
}
