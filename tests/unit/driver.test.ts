import { describe, it, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CommandError, StackNotFoundError } from "@pulumi/pulumi/automation";
import { argumentError, cliErrorLines, describeFailure } from "../../cli/cliErrors";
import { missingBackendDir, missingStackProblem, PROJECT_BACKEND, stackCreated } from "../../cli/firstRun";
import { defaultTarget } from "../../cli/stackTrustState";
import { HELP, parseArgs } from "../../cli/caOptions";

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
    assert.deepEqual(parseArgs(["up", "-s", "a", "--stack=b", "-v"]), { command: "up", stacks: ["a", "b"], verbose: true });
    assert.deepEqual(parseArgs(["--stack", "a", "preview"]), { command: "preview", stacks: ["a"] }, "options before the command");
    assert.equal(parseArgs(["--help"]), "help");
    assert.equal(parseArgs(["up", "-h"]), "help");
    assert.throws(() => parseArgs(["rotate"]), /name at least one stack: --stack NAME/);
    assert.throws(() => parseArgs([]), /name a command: preview, up or rotate/);
    assert.throws(() => parseArgs(["spin", "--stack", "a"]), /unknown command "spin"/);
    assert.throws(() => parseArgs(["up", "--stack", "a", "extra"]), /unexpected argument "extra"/);
    assert.throws(() => parseArgs(["rotate", "--stack", "a", "--to", "x"]), /--to takes a root generation \(a whole number\), not "x"/);
    assert.throws(() => parseArgs(["up", "--stack", "a", "--to", "2"]), /--to is for rotate only/);
    assert.throws(() => parseArgs(["up", "--stak", "a"]), (err: Error) => argumentError(err) === "Unknown option '--stak'");
    assert.throws(() => parseArgs(["up", "--stack"]), /Option '-s, --stack <value>' argument missing/);
});

test("--help says what a first run against one's own cluster takes, in the order a person does it", () => {
    const steps = ["1. Stack: copy Pulumi.dev.yaml", "2. Passphrase: export PULUMI_CONFIG_PASSPHRASE", "3. Backend: export PULUMI_BACKEND_URL", "4. npm run ca -- preview --stack NAME"];
    const at = steps.map((s) => HELP.indexOf(s));
    assert.ok(at.every((i) => i >= 0), `every step is there: ${JSON.stringify(at)}`);
    assert.deepEqual([...at].sort((a, b) => a - b), at, "in order");
    assert.ok(HELP.split("\n").every((l) => l.length <= 100), "fits a terminal");
});

describe("a stack that does not exist yet", () => {
    const ready = { PULUMI_BACKEND_URL: "file:///srv/istio-ca-state", PULUMI_CONFIG_PASSPHRASE: "p" };

    it("is created when its Pulumi.<stack>.yaml exists and the backend and passphrase are set", () => {
        assert.equal(missingStackProblem({ stack: "east", env: ready, hasStackFile: true }), undefined);
        assert.equal(missingStackProblem({ stack: "east", env: { ...ready, PULUMI_CONFIG_PASSPHRASE: undefined, PULUMI_CONFIG_PASSPHRASE_FILE: "/p" }, hasStackFile: true }), undefined);
        assert.equal(missingStackProblem({ stack: "east", env: { PULUMI_BACKEND_URL: "https://api.pulumi.com" }, hasStackFile: true }), undefined,
            "a service backend keeps secrets with its own key");
    });

    it("without its Pulumi.<stack>.yaml: says which file to copy, and names the backend looked in", () => {
        const p = missingStackProblem({ stack: "east", env: ready, hasStackFile: false });
        assert.match(p ?? "", /^stack east does not exist on file:\/\/\/srv\/istio-ca-state, and there is no Pulumi\.east\.yaml to create it from: copy Pulumi\.dev\.yaml to Pulumi\.east\.yaml/);
        assert.match(missingStackProblem({ stack: "east", env: {}, hasStackFile: false }) ?? "", new RegExp(`does not exist on ${PROJECT_BACKEND} \\(Pulumi\.yaml's default\\)`));
    });

    it("without a passphrase: says to set it, and why it must be kept (before the backend: the order of --help)", () => {
        for (const env of [{ PULUMI_BACKEND_URL: "file:///srv/s" }, {}]) {
            assert.match(missingStackProblem({ stack: "east", env, hasStackFile: true }) ?? "",
                /^to create stack east from Pulumi\.east\.yaml, export PULUMI_CONFIG_PASSPHRASE \(or PULUMI_CONFIG_PASSPHRASE_FILE\).*keep it/);
        }
    });

    it("without an explicit backend: says to set PULUMI_BACKEND_URL (the project's default directory is not chosen for the user)", () => {
        const p = missingStackProblem({ stack: "east", env: { PULUMI_CONFIG_PASSPHRASE: "" }, hasStackFile: true });
        assert.match(p ?? "", /^to create stack east from Pulumi\.east\.yaml, export PULUMI_BACKEND_URL: where its state/);
        assert.ok(p?.includes(PROJECT_BACKEND), "names the checkout-local choice");
    });

    it("a file:// backend whose directory does not exist: says which directory, not the CLI's storage driver error", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "istio-ca-backend-"));
        try {
            assert.equal(missingBackendDir({ PULUMI_BACKEND_URL: `file://${dir}` }, "/project"), undefined);
            assert.equal(missingBackendDir({ PULUMI_BACKEND_URL: "s3://bucket/x" }, "/project"), undefined);
            assert.equal(missingBackendDir({}, "/project"), undefined, "Pulumi.yaml's default: the driver makes that directory");
            assert.equal(missingBackendDir({ PULUMI_BACKEND_URL: PROJECT_BACKEND }, "/nonexistent-project"), undefined, "the same, named: a fresh clone has no .pulumi-state yet");
            assert.equal(missingBackendDir({ PULUMI_BACKEND_URL: `file://${dir}/nope` }, "/project"),
                `PULUMI_BACKEND_URL file://${dir}/nope names directory ${dir}/nope, which does not exist: create it (mkdir -p ${dir}/nope) or correct the URL`);
            assert.match(missingBackendDir({ PULUMI_BACKEND_URL: "file://./state" }, "/nonexistent-project") ?? "", /names directory \/nonexistent-project\/state,/, "relative to the project");
        } finally {
            fs.rmSync(dir, { recursive: true });
        }
    });

    it("once created, the driver says so, where, and from which file", () => {
        assert.equal(stackCreated("east", { PULUMI_BACKEND_URL: "s3://b/x" }),
            "east: created the stack on s3://b/x, with the config of Pulumi.east.yaml (the file now also holds the stack's encryptionsalt: keep it with the file)");
        assert.doesNotMatch(stackCreated("east", { PULUMI_BACKEND_URL: "https://api.pulumi.com" }), /encryptionsalt/);
    });

    it("every message is one line", () => {
        for (const [env, hasStackFile] of [[{}, false], [{}, true], [{ PULUMI_CONFIG_PASSPHRASE: "x" }, true]] as const) {
            assert.doesNotMatch(missingStackProblem({ stack: "s", env, hasStackFile }) ?? "", /\n/);
        }
    });
});

/** A CommandError as the Automation API makes it from a failed CLI run (its dump of the result). */
function cliFailure(stderr: string): CommandError {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { CommandResult } = require("@pulumi/pulumi/automation/cmd") as { CommandResult: new (o: string, e: string, c: number, err?: Error) => object };
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { createCommandError } = require("@pulumi/pulumi/automation/errors") as { createCommandError: (r: object) => CommandError };
    return createCommandError(new CommandResult("", stderr, -2, new Error(`Command failed with exit code 1: pulumi\n${stderr}`)));
}

describe("what the driver prints when the pulumi CLI fails", () => {
    it("a missing stack: the CLI's one error line, not the Automation API's dump", () => {
        const err = cliFailure("Command failed with exit code 6: pulumi stack select --stack dev --non-interactive\nerror: no stack named 'dev' found\n");
        assert.ok(err instanceof StackNotFoundError);
        assert.match(err.message, /^code: -2\n stdout: /, "the dump it replaces");
        const text = describeFailure(err);
        assert.equal(text.split("\n")[0], "error: no stack named 'dev' found");
        assert.doesNotMatch(text, /code: -2|stdout:|err\?:|Command failed/);
        assert.ok(text.split("\n").length <= 2);
        assert.equal(describeFailure(err, true), err.message, "--verbose: everything");
    });

    it("a refused preview: each error with its detail lines, once", () => {
        const stderr = [
            "Command failed with exit code 1: pulumi preview --stack bad1 --non-interactive",
            "Previewing update (bad1):",
            " +  pulumi:pulumi:Stack istio-ca-bad1 create error: invalid stack configuration:",
            " +  pulumi:pulumi:Stack istio-ca-bad1 create 1 error",
            "Diagnostics:",
            "  pulumi:pulumi:Stack (istio-ca-bad1):",
            "    error: invalid stack configuration:",
            "      - istio-ca:restartConcurrency must be between 1 and 200, got 0",
            "",
            "Resources:",
            "    + 1 to create",
        ].join("\n");
        assert.deepEqual(cliErrorLines(cliFailure(stderr).message),
            ["error: invalid stack configuration:\n  - istio-ca:restartConcurrency must be between 1 and 200, got 0"]);
    });

    it("a failed step: its error with the step's output (continued at the same indent), without the CLI's generic line", () => {
        const stderr = [
            "Command failed with exit code 255: pulumi up --yes --skip-preview --stack s",
            "Updating (s):",
            "Diagnostics:",
            "  command:local:Command (mesh-wait-root-cert):",
            "    error: exit status 1: running \"node dist/lib/cli/main.js wait-root-cert\":",
            "    [wait-root-cert] waiting for istio-ca-root-cert in 3 namespace(s)",
            "    istio-ca-root-cert still holds the old root in bookinfo after 30s (istio-ca:rootCertTimeoutSeconds)",
            "",
            "  pulumi:pulumi:Stack (istio-ca-s):",
            "    error: update failed",
            "",
            "Resources:",
        ].join("\n");
        assert.deepEqual(cliErrorLines(cliFailure(stderr).message), [[
            "error: exit status 1: running \"node dist/lib/cli/main.js wait-root-cert\":",
            "[wait-root-cert] waiting for istio-ca-root-cert in 3 namespace(s)",
            "istio-ca-root-cert still holds the old root in bookinfo after 30s (istio-ca:rootCertTimeoutSeconds)",
        ].join("\n")]);
        assert.deepEqual(cliErrorLines(cliFailure("Command failed\n    error: update failed\n").message), ["error: update failed"], "alone, it stays");
    });

    it("an error that is not the CLI's keeps its message", () => {
        assert.equal(describeFailure(new Error("stack east does not exist on x")), "stack east does not exist on x");
    });
});
