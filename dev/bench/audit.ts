import * as fs from "node:fs";
import * as path from "node:path";
import { sleep } from "../../kube/concurrency";
import { Cluster } from "../../tests/harness/cluster";

// Audit log: requests per user and user agent, between two byte offsets

export type Counts = Record<string, number>;

function auditSize(cluster: Cluster): number {
    try {
        return fs.statSync(path.join(cluster.dir, "audit.log")).size;
    } catch {
        return 0;
    }
}

/** The log's size once what completed so far is written (batch mode flushes at least every second). */
export async function auditFlushed(cluster: Cluster): Promise<number> {
    await sleep(1500);
    return auditSize(cluster);
}

export function auditCounts(cluster: Cluster, from: number, to: number): Counts {
    const counts: Counts = {};
    if (to <= from) return counts;
    const fd = fs.openSync(path.join(cluster.dir, "audit.log"), "r");
    const buf = Buffer.alloc(to - from);
    fs.readSync(fd, buf, 0, buf.length, from);
    fs.closeSync(fd);
    for (const line of buf.toString("utf8").split("\n")) {
        if (!line.trim()) continue;
        let ev: { user?: { username?: string }; userAgent?: string };
        try {
            ev = JSON.parse(line);
        } catch {
            continue;
        }
        const ua = (ev.userAgent ?? "").split(/[/ ]/)[0] || "-";
        const key = `${ev.user?.username ?? "?"} ${ua}`;
        counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
}

export const sumWhere = (c: Counts, pred: (key: string) => boolean): number =>
    Object.entries(c).filter(([k]) => pred(k)).reduce((s, [, n]) => s + n, 0);
