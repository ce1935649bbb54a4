// Step output that cannot hang the command provider (#12 item 4): no line over 4 KiB, at most
// 64 KiB in all, whatever the mesh size; checked on the steps' own output at 5,000 namespaces.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { clipLine, firstNames, MAX_LINE, MAX_TOTAL, StepOutput } from "../../steps/stepOutput";
import { runStep } from "../../steps/stepRunner";
import { writeStepSettings } from "../../common/stackDir";
import { fakeKubectl } from "../support/fakeKubectl";

const bytes = (s: string): number => Buffer.byteLength(s, "utf8");
const MESH = 5000;
/** Namespace names as long as real ones tend to be (team, app, environment). */
const meshNames = Array.from({ length: MESH }, (_, i) => `team-${String(i).padStart(4, "0")}-payments-prod`);

test("clipLine keeps short lines and cuts long ones (UTF-8 safe) within MAX_LINE bytes", () => {
    assert.equal(clipLine("short"), "short");
    const long = "é".repeat(5000);
    const clipped = clipLine(long);
    assert.ok(bytes(clipped) <= MAX_LINE, `${bytes(clipped)} bytes`);
    assert.match(clipped, /… \(10000 bytes, cut at 4096\)$/);
    assert.ok(!clipped.includes("\uFFFD"));
    assert.equal(firstNames(["a", "b", "c"], 2), "a, b, … and 1 more");
    assert.equal(firstNames(["a", "b"], 2), "a, b");
});

test("StepOutput: progress stops before the budget, a report is cut to fit, the summary line still fits", () => {
    const writes: string[] = [];
    const out = new StepOutput((_, t) => writes.push(t));
    for (let i = 0; i < 10_000; i++) out.progress(`progress line ${i} ${"x".repeat(100)}`);
    out.report(Array.from({ length: 10_000 }, (_, i) => `  ns-${i}: MISSING`).join("\n"));
    out.summary({ step: "s", ok: false });
    const all = writes.join("");
    assert.ok(bytes(all) <= MAX_TOTAL, `${bytes(all)} bytes`);
    assert.match(all, /progress line\(s\) not printed: 64 KiB output limit/);
    assert.match(all, /more line\(s\) of this report cut/);
    assert.match(all, /\{"step":"s","ok":false\}\n$/);
    assert.throws(() => new StepOutput(() => undefined).summary({ list: "n".repeat(MAX_LINE) }), /over the 4096-byte line limit/);
});

/** A project root (Pulumi.yaml) with the stack's settings file, and the env of a step command. */
function stepEnv(binary: string, extra: Record<string, string> = {}, settings: object = {}): { root: string; env: NodeJS.ProcessEnv } {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "istio-ca-output-"));
    fs.writeFileSync(path.join(root, "Pulumi.yaml"), "name: t\n");
    writeStepSettings(root, ".istio-ca/t.s", { kubectl: binary, concurrency: 10, ...settings });
    return { root, env: { ISTIO_CA_ISTIO_NAMESPACE: "istio-system", ISTIO_CA_STACK_DIR: ".istio-ca/t.s", ...extra } };
}

async function capture(step: string, root: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
    const got = { stdout: "", stderr: "" };
    const code = await runStep([step], { env, root, write: (s, t) => { got[s] += t; } });
    return { code, ...got };
}

function assertBounded(what: string, stdout: string, stderr: string): void {
    const longest = Math.max(...(stdout + stderr).split("\n").map(bytes));
    assert.ok(longest <= MAX_LINE, `${what}: longest line ${longest} bytes`);
    assert.ok(bytes(stdout + stderr) <= MAX_TOTAL, `${what}: ${bytes(stdout + stderr)} bytes in all`);
}

const namespaceList = JSON.stringify({ items: [...meshNames.map((name) => ({ metadata: { name, labels: { "istio-injection": "enabled" } }, status: { phase: "Active" } })), { metadata: { name: "istio-system" } }] });

test(`restart-workloads at ${MESH} namespaces: bounded output; count, first names and the file with all of them`, async () => {
    const deployments = meshNames.map((namespace) => ({
        metadata: { namespace, name: "api", generation: 2 }, spec: { replicas: 1 },
        status: { observedGeneration: 2, replicas: 1, updatedReplicas: 1, availableReplicas: 1 },
    }));
    const k = fakeKubectl([
        { match: ["get", "namespaces"], stdout: namespaceList },
        { match: ["patch"], stdout: "" },
        { match: ["get", "deployments", "--watch"], hold: true, stdout: deployments.map((object) => JSON.stringify({ type: "ADDED", object })).join("\n") },
        { match: ["get", "deployments", "-A"], stdout: JSON.stringify({ items: deployments }) },
    ]);
    const { root, env } = stepEnv(k.binary);
    const { code, stdout, stderr } = await capture("restart-workloads", root, env);
    assert.equal(code, 0, stderr);
    assertBounded("restart-workloads", stdout, stderr);
    const summary = JSON.parse(stdout.trim().split("\n").pop()!);
    assert.equal(summary.restartedNamespaces.count, MESH);
    assert.deepEqual(summary.restartedNamespaces.first, meshNames.slice(0, 10));
    assert.equal(summary.restartedNamespaces.list, ".istio-ca/t.s/restarted-namespaces.txt");
    const listed = fs.readFileSync(path.join(root, summary.restartedNamespaces.list), "utf8").trim().split("\n");
    assert.deepEqual(listed, meshNames, "the file lists every restarted namespace");
});

test(`wait-root-cert timing out at ${MESH} stale namespaces: the report is cut to the limits, its head kept`, async () => {
    const k = fakeKubectl([
        { match: ["get", "namespaces"], stdout: namespaceList },
        { match: ["get", "configmaps", "--watch"], hold: true },
    ]);
    const { root, env } = stepEnv(k.binary, { ISTIO_CA_TRUST_FINGERPRINTS: "ab".repeat(32) }, { rootCertTimeoutSeconds: 1 });
    const { code, stdout, stderr } = await capture("wait-root-cert", root, env);
    assert.equal(code, 1);
    assertBounded("wait-root-cert", stdout, stderr);
    assert.match(stderr, /istio-ca step wait-root-cert failed: timed out/);
    assert.match(stderr, /team-0000-payments-prod: MISSING/);
    assert.match(stderr, /more line\(s\) of this report cut \(64 KiB output limit\)/);
});
