// Self-test of the local control plane (tests/harness/cluster.ts): start, seed the mesh, restart a
// namespace's Deployments and wait for the rollout, stop, and check nothing is left behind. And of
// the istiod supervisor (tests/harness/istiod.ts): an istiod pod turns Ready only when the real
// istiod serves, so a rollout of istiod completes only then.
// Needs the binaries of toolchain/cluster.sh and toolchain/istio.sh.  Run: npx tsc -p . && node --test dist/tests/e2e/cluster.test.js
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import { test } from "node:test";

import { processesMentioning, seedMesh, startCluster, type Cluster } from "../harness/cluster";
import { RealIstiod } from "../harness/istiod";

test("local cluster: seeded mesh, rollout restart, clean stop", { timeout: 300_000 }, async () => {
    const t0 = Date.now();
    const cluster = await startCluster({ log: (m) => console.log(m) });
    const dir = cluster.dir;
    try {
        console.log(`cluster up in ${((Date.now() - t0) / 1000).toFixed(1)}s: ${cluster.server} (${cluster.version})`);
        assert.match(cluster.version, /^v1\.\d+\.\d+$/, "API server must report a real version, not v0.0.0-master");
        assert.ok(fs.existsSync(cluster.kubeconfig));
        const running = processesMentioning(dir);
        for (const [name, pid] of Object.entries(cluster.pids)) assert.ok(running.includes(pid), `${name} (pid ${pid}) must be running`);

        const t1 = Date.now();
        const workloads = await seedMesh(cluster);
        console.log(`mesh seeded and rolled out in ${((Date.now() - t1) / 1000).toFixed(1)}s`);
        assert.deepEqual(
            [...new Set(workloads.map((w) => w.namespace))].sort(),
            ["bookinfo", "canary", "istio-system", "payments", "plain"],
        );

        const ns = await cluster.kubectl(["get", "ns", "-l", "istio-injection=enabled", "-o", "jsonpath={.items[*].metadata.name}"]);
        assert.deepEqual(ns.stdout.split(" ").sort(), ["bookinfo", "payments"]);
        const istiod = await cluster.kubectl(["get", "deploy", "-n", "istio-system", "-l", "app=istiod", "-o", "name"]);
        assert.equal(istiod.stdout.trim(), "deployment.apps/istiod");

        // rollout restart: new ReplicaSets, old pods deleted by kwok, new ones Ready
        const before = await cluster.kubectl(["get", "pods", "-n", "bookinfo", "-o", "jsonpath={.items[*].metadata.name}"]);
        const t2 = Date.now();
        await cluster.kubectl(["rollout", "restart", "deployment", "-n", "bookinfo"]);
        for (const w of workloads.filter((x) => x.namespace === "bookinfo")) {
            await cluster.kubectl(["rollout", "status", `deployment/${w.name}`, "-n", "bookinfo", "--timeout=120s"]);
        }
        console.log(`rollout restart of bookinfo completed in ${((Date.now() - t2) / 1000).toFixed(1)}s`);
        // old pods are gone (kwok deletes terminating pods), only new ones remain
        let after = "";
        for (let i = 0; i < 100; i++) {
            after = (await cluster.kubectl(["get", "pods", "-n", "bookinfo", "-o", "jsonpath={.items[*].metadata.name}"])).stdout;
            if (!before.stdout.split(" ").some((p) => after.split(" ").includes(p))) break;
            await new Promise((r) => setTimeout(r, 100));
        }
        const oldLeft = before.stdout.split(" ").filter((p) => after.split(" ").includes(p));
        assert.deepEqual(oldLeft, [], "old pods must be replaced");
        const ready = await cluster.kubectl([
            "get", "pods", "-n", "bookinfo",
            "-o", 'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{" "}{end}',
        ]);
        assert.deepEqual(ready.stdout.trim().split(" "), ["True", "True", "True"]);

        await checkIstiodReadiness(cluster);
    } finally {
        const t3 = Date.now();
        await cluster.stop();
        console.log(`stopped in ${((Date.now() - t3) / 1000).toFixed(1)}s`);
    }
    assert.deepEqual(processesMentioning(dir), [], "no process of the cluster may survive stop()");
    assert.equal(fs.existsSync(dir), false, "the cluster directory must be removed");
    for (const pid of Object.values(cluster.pids)) {
        assert.throws(() => process.kill(pid, 0), "component process must be gone");
    }
});

/** The supervisor plays istiod's readiness probe: a rollout of istiod completes when istiod serves, not before. */
async function checkIstiodReadiness(cluster: Cluster): Promise<void> {
    const istiod = new RealIstiod(cluster, { log: (m) => console.log(m) });
    const rollout = (timeout: string) =>
        cluster.kubectl(["rollout", "status", "deployment/istiod", "-n", "istio-system", `--timeout=${timeout}`], { allowFailure: true });
    try {
        await istiod.start();
        await cluster.kubectl(["rollout", "restart", "deployment/istiod", "-n", "istio-system"]);
        assert.equal((await rollout("60s")).code, 0);
        assert.equal(await istiod.serves(), true, "the rollout of istiod completed only once the new istiod serves");
        assert.equal(istiod.starts, 2, "one istiod process per supervised pod");

        // restartedAt has a resolution of one second: kubectl refuses a second restart within it.
        await new Promise((r) => setTimeout(r, 1100));
        await istiod.pause();
        assert.equal((await cluster.kubectl(["get", "pods", "-n", "istio-system", "-l", "app=istiod", "-o", 'jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}'])).stdout, "False", "a down istiod's pod is not Ready");
        await cluster.kubectl(["rollout", "restart", "deployment/istiod", "-n", "istio-system"]);
        assert.notEqual((await rollout("5s")).code, 0, "a rollout of istiod does not complete while istiod is down");
        await istiod.resume();
        assert.equal((await rollout("60s")).code, 0, "it completes once istiod is back");
    } finally {
        await istiod.stop();
    }
}
