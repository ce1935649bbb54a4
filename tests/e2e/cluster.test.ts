// Self-test of the local control plane (tests/harness/cluster.ts): start, seed the mesh, restart a
// namespace's Deployments and wait for the rollout, stop, and check nothing is left behind.
// Needs the binaries of toolchain/cluster.sh.  Run: npx tsc -p . && node --test dist/tests/e2e/cluster.test.js
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import { test } from "node:test";

import { processesMentioning, seedMesh, startCluster } from "../harness/cluster";

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
