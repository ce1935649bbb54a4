import { test } from "node:test";
import assert from "node:assert/strict";
import { defaultTarget, parseArgs } from "../../cli/ca";

const state = (keyVersion: number, trustedKeyVersions: number[]) => ({ keyVersion, trustedKeyVersions, intermediateVersion: 1 });

test("rotate without --to: the next root from a steady state", () => {
    assert.equal(defaultTarget(state(1, [1]), state(1, [1])), 2);
    assert.equal(defaultTarget(state(1, [1]), undefined), 2);
    assert.equal(defaultTarget(state(0, [0]), undefined), 1, "a mesh on istiod's own CA (generation 0) moves to root 1");
});

test("rotate without --to resumes a half-done rotation", () => {
    assert.equal(defaultTarget(state(1, [1, 2]), state(1, [1, 2])), 2, "after phase 1");
    assert.equal(defaultTarget(state(2, [1, 2]), state(1, [1, 2])), 2, "phase 2 failed");
    assert.equal(defaultTarget(state(2, [1, 2]), state(2, [1, 2])), 2, "after phase 2");
    assert.equal(defaultTarget(state(2, [2]), state(2, [1, 2])), 2, "phase 3 failed: finish it, do not start another rotation");
});

test("arguments", () => {
    assert.deepEqual(parseArgs(["rotate", "--stack", "a", "--stack", "b", "--to", "3"]), { command: "rotate", stacks: ["a", "b"], to: 3 });
    assert.throws(() => parseArgs(["rotate"]), /--stack/);
    assert.throws(() => parseArgs(["spin", "--stack", "a"]), /usage/);
    assert.throws(() => parseArgs(["up", "--stack", "a", "--to", "x"]), /unexpected argument/);
});
