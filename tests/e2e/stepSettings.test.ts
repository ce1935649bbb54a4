// Config edits that change nothing in cacerts restart nothing (#12 item 5), on the real engine and
// the command provider: editing rolloutTimeoutSeconds, restartConcurrency and kubectlPath previews
// and applies no change of any step (no Deployment restarted); istio-ca:restartRequest re-runs the
// restarts, and they run with the edited settings (read from the stack's settings file).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { seedMesh, startCluster } from "../harness/cluster";
import { createTestStack, OpRecorder, TestStack } from "../support/engine";
import { RealIstio } from "../harness/realIstio";
import { localClusterConfig, SEED_SWAP } from "../support/localCluster";
import { restartMarks } from "../support/processes";
import { inlineProgram as program } from "../../program/inline";

const STEPS = ["backup-cacerts", "mesh-restart-istiod", "mesh-restart-workloads"];

/** A kubectl that logs its arguments (one line per run) and runs the real one. */
function loggingKubectl(real: string): { binary: string; runs: () => string[] } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "istio-ca-kubectl-log-"));
    const binary = path.join(dir, "kubectl");
    fs.writeFileSync(binary, `#!/bin/sh\necho "$*" >> '${dir}/runs.log'\nexec '${real}' "$@"\n`, { mode: 0o755 });
    const log = path.join(dir, "runs.log");
    return { binary, runs: () => (fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n") : []) };
}

/** stderr of a step command, as the state keeps it. */
async function stepStderr(ts: TestStack, name: string): Promise<string> {
    const state = await ts.stack.exportStack();
    const r = (state.deployment.resources as { urn: string; outputs?: { stderr?: string } }[]).find((x) => x.urn.endsWith(`::${name}`));
    return r?.outputs?.stderr ?? "";
}

test("real engine: editing how the steps run re-runs no step; istio-ca:restartRequest re-runs the restarts with the edited settings", { timeout: 15 * 60_000 }, async (t) => {
    const cluster = await startCluster({ log: (m) => t.diagnostic(m) });
    let ts: TestStack | undefined;
    let istio: RealIstio | undefined;
    try {
        await seedMesh(cluster);
        // Real istiod publishes the bundle the wait step waits for (no agents: workloads are not the subject here).
        istio = await RealIstio.start(cluster, { withoutAgents: true, log: (m) => t.diagnostic(m) });
        const log = (line: string) => t.diagnostic(line.trimEnd());
        ts = await createTestStack("settings", program, localClusterConfig(cluster, "e2e", SEED_SWAP));
        const { stack } = ts;
        await stack.up({ onOutput: log });
        const marks1 = await restartMarks(cluster);
        assert.ok(Object.values(marks1).filter(Boolean).length >= 4, "the first up restarted istiod and the workloads");

        // 1. Edit timeouts, concurrency and the kubectl binary: nothing to re-run.
        const kubectl = loggingKubectl(path.join(cluster.binDir, "kubectl"));
        await stack.setAllConfig({
            "istio-ca:rolloutTimeoutSeconds": { value: "1234" },
            "istio-ca:restartConcurrency": { value: "3" },
            "istio-ca:kubectlPath": { value: kubectl.binary },
        });
        const preview = new OpRecorder();
        await stack.preview({ onEvent: preview.onEvent });
        for (const op of ["update", "replace", "create-replacement", "create", "delete"]) {
            assert.deepEqual(preview.with(op), [], `preview: no ${op}`);
        }
        for (const step of STEPS) {
            assert.ok(preview.only("same").includes(step), `preview: ${step} is the same`);
        }
        const up = new OpRecorder();
        const result = await stack.up({ onOutput: log, onEvent: up.onEvent });
        assert.deepEqual(up.with("update").concat(up.with("replace")), [], "up: nothing updated or replaced");
        const changes = Object.keys(result.summary.resourceChanges ?? {});
        assert.deepEqual(changes.filter((c) => !["same", "read"].includes(c)), [], `up: only same/read (${changes.join(", ")})`);
        assert.deepEqual(await restartMarks(cluster), marks1, "no Deployment restarted");
        assert.ok(kubectl.runs().length > 0, "the program itself used the new kubectl (preflight)");
        assert.deepEqual(kubectl.runs().filter((r) => r.includes("patch")), [], "no restart patch was sent");

        // 2. An explicit request re-runs the restarts, with the settings edited in 1.
        await stack.setConfig("istio-ca:restartRequest", { value: "2026-12-01" });
        const rerunPreview = new OpRecorder();
        await stack.preview({ onEvent: rerunPreview.onEvent });
        assert.deepEqual(rerunPreview.with("replace"), ["mesh-restart-istiod", "mesh-restart-workloads"]);
        assert.ok(rerunPreview.only("same").includes("backup-cacerts"), "cacerts unchanged: no backup");
        await stack.up({ onOutput: log });
        const marks2 = await restartMarks(cluster);
        for (const [d, mark] of Object.entries(marks1).filter(([, m]) => m)) {
            assert.notEqual(marks2[d], mark, `${d} restarted again`);
        }
        assert.ok(kubectl.runs().some((r) => r.includes("patch")), "the restarts ran with the edited kubectlPath");
        const stderr = await stepStderr(ts, "mesh-restart-workloads");
        assert.match(stderr, /concurrency 3, timeouts \(s\): rollout 1234,/, "and with the edited concurrency and timeout");
        assert.match(stderr, new RegExp(`kubectl ${kubectl.binary.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}`));
    } finally {
        await istio?.stop();
        await ts?.dispose();
        await cluster.stop();
    }
});
