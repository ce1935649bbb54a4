// An `up` killed in the middle of the restarts, and the next `up` that finishes the job: the real
// engine and providers, a real API server and real Istio (see rotation.test.ts).
//
// The interrupted `up` is the driver a person runs (`node dist/cli/ca.js up --stack S`) in a
// child process on the same backend, killed with SIGKILL while the restart-workloads step runs.
// What Pulumi (3.248, 3.276) leaves behind (asserted below): the lock file of the dead pulumi process and a
// pending CREATE of the step; a plain `pulumi up` then refuses ("currently locked"). The driver's
// next `up` removes the dead process's lock, clears the pending create and re-runs the step.
import { test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { Cluster, seedMesh, startCluster } from "../harness/cluster";
import { createTestStack, PROJECT_ROOT, TestStack } from "../support/engine";
import { RealIstio } from "../harness/realIstio";
import { localClusterConfig, SEED_SWAP } from "../support/localCluster";
import { tolerateRefusalEchoes } from "../../plan/refusal";
import { inlineProgram } from "../../program/inline";
import { runCa } from "../../cli/ca";

const MESH_DEPLOYMENTS = ["bookinfo/productpage", "bookinfo/reviews", "payments/ledger", "payments/checkout", "canary/canary-api"];

async function restartMarks(cluster: Cluster): Promise<Record<string, string | undefined>> {
    const list = JSON.parse((await cluster.kubectl(["get", "deployments", "-A", "-o", "json"])).stdout);
    return Object.fromEntries(list.items.map((d: any) => [
        `${d.metadata.namespace}/${d.metadata.name}`,
        d.spec.template.metadata?.annotations?.["kubectl.kubernetes.io/restartedAt"],
    ]));
}

async function caCert(cluster: Cluster): Promise<X509Certificate> {
    const b64 = (await cluster.kubectl(["get", "secret", "cacerts", "-n", "istio-system", "-o", "jsonpath={.data.ca-cert\\.pem}"])).stdout;
    return new X509Certificate(Buffer.from(b64, "base64").toString("utf8"));
}

interface Proc {
    pid: number;
    pgid: number;
    cmd: string;
}

/** Every process below `root` (from /proc), with its process group and command line. */
function descendants(root: number): Proc[] {
    const all: (Proc & { ppid: number })[] = [];
    for (const entry of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(entry)) continue;
        try {
            // comm (field 2) may hold spaces: the fields after its closing parenthesis are fixed.
            const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
            const [, ppid, pgid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
            const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").join(" ").trim();
            all.push({ pid: Number(entry), ppid: Number(ppid), pgid: Number(pgid), cmd });
        } catch {
            /* exited meanwhile */
        }
    }
    const found: Proc[] = [];
    const queue = [root];
    while (queue.length > 0) {
        const parent = queue.shift()!;
        for (const p of all.filter((q) => q.ppid === parent && q.pid !== root && !found.some((f) => f.pid === q.pid))) {
            found.push({ pid: p.pid, pgid: p.pgid, cmd: p.cmd });
            queue.push(p.pid);
        }
    }
    return found;
}

const alive = (pid: number): boolean => {
    try {
        process.kill(pid, 0);
        return !fs.readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");
    } catch {
        return false;
    }
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("an up killed during the workload restarts is finished by the next up of the driver", { timeout: 10 * 60_000 }, async (t) => {
    tolerateRefusalEchoes();
    // Pods take 3 s to become Ready: the restart step waits for its rollouts long enough to be killed in.
    const cluster = await startCluster({ log: (m) => t.diagnostic(m), podReadyDelayMs: 3000 });
    let istio: RealIstio | undefined;
    let ts: TestStack | undefined;
    let leftovers: Proc[] = [];
    try {
        await seedMesh(cluster);
        istio = await RealIstio.start(cluster, { log: (m) => t.diagnostic(m) });
        ts = await createTestStack("interrupted", inlineProgram, localClusterConfig(cluster, "interrupted", {
            ...istio.stackConfig,
            ...SEED_SWAP,
            rootCertTimeoutSeconds: "30",
        }));
        const { stack } = ts;
        const log = (line: string): void => t.diagnostic(line.trimEnd());
        await stack.up({ onOutput: log });
        const v1 = await caCert(cluster);
        const marks1 = await restartMarks(cluster);

        // 1. An intermediate rotation, run by the driver in a child process, killed while the
        //    workloads restart (the first mesh Deployment with a new restartedAt).
        await stack.setConfig("istio-ca:intermediateVersion", { value: "2" });
        const child = spawn(process.execPath, [path.join(PROJECT_ROOT, "dist/cli/ca.js"), "up", "--stack", ts.name], {
            cwd: PROJECT_ROOT, env: { ...process.env, ...ts.envVars }, detached: true, stdio: ["ignore", "pipe", "pipe"],
        });
        let childOutput = "";
        child.stdout.on("data", (d) => { childOutput += d; });
        child.stderr.on("data", (d) => { childOutput += d; });
        const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
        const deadline = Date.now() + 120_000;
        let restarting: string | undefined;
        while (!restarting) {
            assert.ok(Date.now() < deadline && child.exitCode === null, `the child's up reached the restarts:\n${childOutput}`);
            const marks = await restartMarks(cluster);
            restarting = MESH_DEPLOYMENTS.find((d) => marks[d] !== marks1[d]);
            if (!restarting) await sleep(100);
        }
        const tree = descendants(child.pid!);
        process.kill(-child.pid!, "SIGKILL");
        const killedAt = Date.now();
        await exited;
        t.diagnostic(`killed the driver's process group while ${restarting} restarted; its processes: ${tree.map((p) => `${p.pid}/${p.pgid} ${p.cmd}`).join("; ")}`);
        const cli = tree.find((p) => p.pgid === child.pid && /\bpulumi\b.* up\b/.test(p.cmd));
        assert.ok(cli, "the pulumi CLI ran in the driver's process group");
        await sleep(500);
        assert.ok(!alive(cli.pid), "the pulumi CLI is dead");
        // The provider plugins and the step's processes run in process groups of their own (Pulumi
        // sets Setpgid for plugins; the command provider for its commands): they outlive the
        // group's kill. The test ends them too, as a crashed machine would, so nothing goes on.
        leftovers = tree.filter((p) => p.pgid !== child.pid && alive(p.pid));
        t.diagnostic(`still running after the group kill: ${leftovers.map((p) => `${p.pid}/${p.pgid} ${p.cmd.slice(0, 120)}`).join("; ") || "none"}`);
        for (const p of leftovers) {
            try { process.kill(p.pid, "SIGKILL"); } catch { /* gone */ }
        }
        assert.ok(leftovers.some((p) => /pulumi-resource-/.test(p.cmd)), "provider plugins outlived the kill of the group");

        // 2. What the kill left: the dead CLI's lock, and the step's pending create.
        const lockDir = path.join(ts.backendDir, ".pulumi", "locks", "organization", "istio-ca", ts.name);
        // (The file backend keeps a `.attrs` file beside each blob.)
        const lockFiles = (): string[] => fs.readdirSync(lockDir).filter((f) => f.endsWith(".json"));
        const locks = lockFiles().map((f) => JSON.parse(fs.readFileSync(path.join(lockDir, f), "utf8")));
        assert.deepEqual(locks.map((l) => l.pid), [cli.pid], "one lock, of the killed pulumi CLI");
        const env = { ...process.env, ...ts.envVars };
        const exportState = () => JSON.parse(execFileSync("pulumi", ["stack", "export", "--stack", ts!.name], { cwd: PROJECT_ROOT, encoding: "utf8", env, maxBuffer: 64 << 20 }));
        const pending = (exportState().deployment.pending_operations ?? []).map((op: any) => `${op.type} ${op.resource.urn.split("::").pop()}`);
        assert.ok(pending.includes("creating mesh-restart-workloads"), `pending: ${pending.join(", ")}`);
        assert.equal((await caCert(cluster)).fingerprint256 !== v1.fingerprint256, true, "cacerts already holds the new intermediate");
        // A plain up cannot run.
        await assert.rejects(stack.up(), /the stack is currently locked by 1 lock\(s\)/);

        // 3. The driver's next up: explains, removes the lock, clears the pending create, finishes.
        const lines: string[] = [];
        const secondUp = Date.now();
        await runCa({ command: "up", stacks: [ts.name], envVars: ts.envVars, output: (_s, l) => log(l), log: (l) => { lines.push(l); log(l); } });
        const said = lines.join("\n");
        assert.match(said, new RegExp(`update started .* by pulumi \\(pid ${cli.pid}\\) was interrupted \\(the process is gone\\)`));
        assert.match(said, /was creating mesh-restart-workloads; nothing of those exists outside the state/);
        assert.match(said, /recovered from the interrupted update/);
        assert.deepEqual(fs.readdirSync(lockDir), [], "no lock (nor its .attrs) left");
        assert.deepEqual(exportState().deployment.pending_operations ?? [], [], "no pending operation left");
        const marks2 = await restartMarks(cluster);
        for (const d of MESH_DEPLOYMENTS) {
            // restartedAt has whole seconds.
            assert.ok(Date.parse(marks2[d]!) >= Math.floor(secondUp / 1000) * 1000, `${d} restarted by the second up (${marks2[d]}; killed at ${new Date(killedAt).toISOString()})`);
        }
        const v2 = await caCert(cluster);
        assert.notEqual(v2.fingerprint256, v1.fingerprint256);
        const outputs = await stack.outputs();
        assert.equal(outputs.intermediate.value.sha256Fingerprint, v2.fingerprint256);
        assert.equal(outputs.trustState.value.intermediateVersion, 2);
        await stack.preview({ expectNoChanges: true });
    } finally {
        for (const p of leftovers) {
            try { process.kill(p.pid, "SIGKILL"); } catch { /* gone */ }
        }
        await istio?.stop();
        await ts?.dispose();
        await cluster.stop();
    }
});
