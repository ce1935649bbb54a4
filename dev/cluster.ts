// Local control plane for a person: `npm run cluster:up`, `npm run cluster:down`
// (`node dist/dev/cluster.js status` prints what runs). State lives in .cluster/ (git-ignored):
// kubeconfig, logs/, etcd data, state.json with the process groups. See tests/harness/cluster.ts.
//
//   npm run cluster:up [-- --no-seed] [-- --nodes N] [-- --pod-ready-delay-ms MS] [-- --pod-ready-jitter-ms MS]
//   export KUBECONFIG=$PWD/.cluster/kubeconfig
//   npm run cluster:down
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

import { findBinDir, missingBinaries, repoRoot, runningComponents, seedMesh, startCluster, stopClusterDir } from "../tests/harness/cluster";

const root = repoRoot();
const stateDir = path.join(root, ".cluster");

function isRunning(): { server: string; kubeconfig: string } | undefined {
    if (!Object.keys(runningComponents(stateDir)).length) return undefined;
    try {
        return JSON.parse(fs.readFileSync(path.join(stateDir, "state.json"), "utf8")) as { server: string; kubeconfig: string };
    } catch {
        return undefined;
    }
}

function flag(args: string[], name: string): number | undefined {
    const i = args.indexOf(name);
    if (i < 0) return undefined;
    const v = Number(args[i + 1]);
    if (!Number.isFinite(v) || v < 0) throw new Error(`${name} needs a non-negative number`);
    return v;
}

async function up(args: string[]): Promise<void> {
    const running = isRunning();
    if (running) {
        console.log(`already running: ${running.server}\nexport KUBECONFIG=${running.kubeconfig}`);
        return;
    }
    if (fs.existsSync(stateDir)) await stopClusterDir(stateDir); // leftovers of a dead cluster
    if (missingBinaries(findBinDir()).length) {
        console.log("building the control-plane binaries (toolchain/cluster.sh) ...");
        const r = spawnSync("bash", [path.join(root, "toolchain", "cluster.sh")], { stdio: "inherit" });
        if (r.status !== 0) throw new Error("toolchain/cluster.sh failed");
    }
    const t0 = Date.now();
    const cluster = await startCluster({
        dir: stateDir,
        persistent: true,
        nodes: flag(args, "--nodes"),
        podReadyDelayMs: flag(args, "--pod-ready-delay-ms"),
        podReadyJitterMs: flag(args, "--pod-ready-jitter-ms"),
        log: (m) => console.log(m),
    });
    try {
        if (!args.includes("--no-seed")) {
            await seedMesh(cluster);
            console.log("seeded: istio-system/istiod, bookinfo, payments, canary, plain");
        }
    } catch (e) {
        await cluster.stop();
        throw e;
    }
    console.log(`cluster ${cluster.version} up in ${((Date.now() - t0) / 1000).toFixed(1)}s at ${cluster.server}`);
    console.log(`logs: ${path.join(stateDir, "logs")}`);
    console.log(`export KUBECONFIG=${cluster.kubeconfig}`);
    console.log(`export PATH=${cluster.binDir}:$PATH   # the matching kubectl`);
}

async function down(): Promise<void> {
    if (!fs.existsSync(stateDir)) {
        console.log("no cluster (.cluster/ does not exist)");
        return;
    }
    await stopClusterDir(stateDir);
    console.log("cluster stopped, .cluster/ removed");
}

async function main(): Promise<void> {
    const [cmd, ...args] = process.argv.slice(2);
    switch (cmd) {
        case "up":
            return up(args);
        case "down":
            return down();
        case "status": {
            const r = isRunning();
            console.log(r ? `running: ${r.server}\nexport KUBECONFIG=${r.kubeconfig}` : "not running");
            return;
        }
        default:
            console.error("usage: node dist/dev/cluster.js up|down|status");
            process.exitCode = 2;
    }
}

main().catch((e: unknown) => {
    console.error(`cluster: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 1;
});
