// No decrypted config in child processes (#12 item 3), on the real engine, the way a user's
// `pulumi up` runs the program: Pulumi's Node language host starts the program with its decrypted
// config in PULUMI_CONFIG (an external istio-ca:rootKeyPem in plaintext). Here the program runs
// inline, so the test puts that config into the program's process environment when the program
// starts (not into the CLI's, which a user's CLI does not have either). Every kubectl the program
// and the steps start goes through a wrapper (istio-ca:kubectlPath) that saves its environment, and
// every process is sampled every 100 ms: the key must be in none of them.
import type * as automation from "@pulumi/pulumi/automation";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { seedMesh, startCluster } from "../harness/cluster";
import { createTestStack, stepNodeVersions, TestStack } from "../support/engine";
import { MIN_NODE_MAJOR, nodeMajor } from "../../common/nodeVersion";
import { RealIstio } from "../harness/realIstio";
import { localClusterConfig, SEED_SWAP } from "../support/localCluster";
import { ProcessSampler } from "../support/processes";
import { selfSignedCa } from "../support/testCerts";
import { inlineProgram as program } from "../../program/inline";

/** A kubectl that saves its environment (NUL-separated, as /proc keeps it) and runs the real one. */
function envSavingKubectl(real: string): { binary: string; saved: () => string[] } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "istio-ca-kubectl-env-"));
    const binary = path.join(dir, "kubectl");
    fs.writeFileSync(binary, `#!/bin/sh\ncat /proc/$$/environ > '${dir}/env.'$$\nexec '${real}' "$@"\n`, { mode: 0o755 });
    return { binary, saved: () => fs.readdirSync(dir).filter((f) => f.startsWith("env.")).map((f) => fs.readFileSync(path.join(dir, f), "latin1")) };
}

test("real engine, config in the program's environment as the language host passes it: the external root key reaches no child process", { timeout: 15 * 60_000 }, async (t) => {
    const cluster = await startCluster({ log: (m) => t.diagnostic(m) });
    const sampler = new ProcessSampler();
    let ts: TestStack | undefined;
    let istio: RealIstio | undefined;
    try {
        await seedMesh(cluster);
        // Real istiod publishes the bundle the wait step waits for (no agents: workloads are not the subject here).
        istio = await RealIstio.start(cluster, { withoutAgents: true, log: (m) => t.diagnostic(m) });
        const root = selfSignedCa("External Root");
        const kubectl = envSavingKubectl(path.join(cluster.binDir, "kubectl"));
        const config = localClusterConfig(cluster, "e2e", { rootCertPem: root.certPem, kubectlPath: kubectl.binary, ...SEED_SWAP });
        const hostConfig = JSON.stringify({
            ...Object.fromEntries(Object.entries(config).map(([k, v]) => [`istio-ca:${k}`, v])),
            "istio-ca:rootKeyPem": root.keyPem,
        });
        // Set while the program runs, as the language host's process has it; gone before the
        // Automation API starts its next CLI (`stack output` at the end of up, the next operation):
        // a user's CLI never has the program's environment.
        const asLanguageHost: automation.PulumiFn = async () => {
            process.env.PULUMI_CONFIG = hostConfig;
            process.env.PULUMI_CONFIG_SECRET_KEYS = JSON.stringify(["istio-ca:rootKeyPem"]);
            process.env.ISTIOCTL_XDS_ADDRESS = "127.0.0.1:15012"; // allowed through: istioctl's own settings
            try {
                return await program();
            } finally {
                delete process.env.PULUMI_CONFIG;
                delete process.env.PULUMI_CONFIG_SECRET_KEYS;
                delete process.env.ISTIOCTL_XDS_ADDRESS;
            }
        };
        ts = await createTestStack("childenv", asLanguageHost, config);
        await ts.stack.setConfig("istio-ca:rootKeyPem", { value: root.keyPem, secret: true });

        sampler.start();
        try {
            await ts.stack.preview();
            const programTime = kubectl.saved().length;
            assert.ok(programTime > 0, "the program's own kubectl calls (preflight) went through the wrapper");
            await ts.stack.up({ onOutput: (l) => t.diagnostic(l.trimEnd()) });
            assert.ok(kubectl.saved().length > programTime + 3, `the steps' kubectl calls too (${kubectl.saved().length} in all)`);
        } finally {
            await sampler.stop();
        }

        // The program ran in this process, the steps in the `node` the provider found on PATH: both
        // on the supported runtime (npm test puts the pinned Node.js 22 first on PATH).
        t.diagnostic(`program: Node.js ${process.version} (${process.execPath})`);
        assert.ok(nodeMajor(process.version) >= MIN_NODE_MAJOR, `the program ran on Node.js ${process.version}`);
        const stepVersions = await stepNodeVersions(ts.stack);
        t.diagnostic(`steps: ${JSON.stringify(stepVersions)}`);
        assert.ok(Object.keys(stepVersions).length >= 4, "the backup and the mesh steps are in the state");
        for (const [step, version] of Object.entries(stepVersions)) {
            assert.ok(nodeMajor(version) >= MIN_NODE_MAJOR, `step ${step} ran on Node.js ${version}`);
        }

        const needles = root.keyPem.split("\n").map((l) => l.trim()).filter((l) => l.length >= 16 && !l.startsWith("-----"));
        assert.ok(needles.length >= 2, "the key's PEM body lines are the needles");
        assert.ok(needles.every((n) => hostConfig.includes(n)), "the program's environment held the key");
        for (const [i, env] of kubectl.saved().entries()) {
            const names = env.split("\0").map((e) => e.slice(0, e.indexOf("=")));
            assert.deepEqual(names.filter((n) => n.startsWith("PULUMI_")), [], `kubectl run ${i}: no PULUMI_* variable`);
            assert.ok(!needles.some((n) => env.includes(n)), `kubectl run ${i}: no part of the key in its environment`);
        }
        assert.ok(kubectl.saved().some((env) => env.includes("ISTIOCTL_XDS_ADDRESS=127.0.0.1:15012")), "allow-listed variables still reach the program's children");
        assert.ok(sampler.samples > 20, `processes were sampled (${sampler.samples} times)`);
        assert.ok([...sampler.seen].some((s) => s.includes("dist/lib/cli/main.js")), "the step commands were sampled");
        const leaking = [...sampler.seen].filter((s) => needles.some((n) => s.includes(n)));
        // (the variables that tell which process it was, not the key)
        const whichProcess = (s: string): string => s.split("\0").filter((e) => /^(_|PULUMI_AUTOMATION_API|ISTIO_CA_[A-Z_]*)=/.test(e)).join(" ");
        assert.deepEqual(leaking.map(whichProcess), [], "no sampled command line or environment holds the key");
    } finally {
        delete process.env.PULUMI_CONFIG;
        await istio?.stop();
        await ts?.dispose();
        await cluster.stop();
    }
});
