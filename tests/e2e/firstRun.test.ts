// First contact with the driver, as a newcomer meets it: `npm run ca -- preview --stack NAME` on a
// stack that does not exist yet, with its Pulumi.NAME.yaml in front of them, against the real
// engine (the built driver in a child process, the toolchain's CLI, a temporary file backend).
// No cluster: the preview's refusal (a kubeconfig that does not exist) is the end of the road.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PROJECT_ROOT, toolchainEnv } from "../support/engine";

/** What the Automation API's CommandError dump looks like; the driver never prints it without --verbose. */
const DUMP = /code: -?\d+\n stdout:|\n err\?: /;

interface Run {
    status: number | null;
    stderr: string;
    stdout: string;
}

test("first run: a missing stack is created from its Pulumi.<stack>.yaml once passphrase and backend are set; errors in a line or two", { timeout: 5 * 60_000 }, (t) => {
    const backendDir = fs.mkdtempSync(path.join(os.tmpdir(), "istio-ca-backend-"));
    const stack = `e2e-first-${process.pid}`;
    const stackFile = path.join(PROJECT_ROOT, `Pulumi.${stack}.yaml`);
    const missingKubeconfig = path.join(backendDir, "no-such-kubeconfig");
    fs.writeFileSync(stackFile, ["config:", `  istio-ca:clusterName: first`, `  istio-ca:kubeconfig: ${missingKubeconfig}`, ""].join("\n"));
    // The toolchain's CLI, and nothing of this process's own Pulumi settings.
    const base = Object.fromEntries(Object.entries({ ...process.env, ...toolchainEnv() })
        .filter(([k]) => !["PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"].includes(k)));
    const ca = (args: string[], env: Record<string, string> = {}): Run => {
        const r = spawnSync(process.execPath, [path.join(PROJECT_ROOT, "dist/cli/ca.js"), ...args], {
            cwd: PROJECT_ROOT, env: { ...base, ...env }, encoding: "utf8", timeout: 180_000,
        });
        t.diagnostic(`ca ${args.join(" ")} → ${r.status}: ${r.stderr.trim().split("\n").slice(-3).join(" | ")}`);
        return { status: r.status, stderr: r.stderr, stdout: r.stdout };
    };
    const backend = { PULUMI_BACKEND_URL: `file://${backendDir}` };
    const passphrase = { PULUMI_CONFIG_PASSPHRASE: "istio-ca-first-run" };
    const stackExists = (): boolean => fs.existsSync(path.join(backendDir, ".pulumi", "stacks", "istio-ca", `${stack}.json`));
    try {
        // Without a passphrase: one line that says what to set; nothing created.
        const noPass = ca(["preview", "--stack", stack], backend);
        assert.equal(noPass.status, 1);
        assert.equal(noPass.stderr.trim(), `to create stack ${stack} from Pulumi.${stack}.yaml, export PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE): ` +
            "it encrypts the stack's secrets, the CA keys among them; keep it, the state cannot be read without it");
        // Without a backend: one line; the project's default directory is not chosen for the user.
        const noBackend = ca(["preview", "--stack", stack], passphrase);
        assert.equal(noBackend.status, 1);
        assert.match(noBackend.stderr.trim(), new RegExp(`^to create stack ${stack} from Pulumi\\.${stack}\\.yaml, export PULUMI_BACKEND_URL: [^\\n]+$`));
        // A stack without its file: one line naming the file to copy.
        const other = ca(["preview", "--stack", `${stack}-nofile`], { ...backend, ...passphrase });
        assert.equal(other.status, 1);
        assert.match(other.stderr.trim(), new RegExp(`^stack ${stack}-nofile does not exist on file://\\S+, and there is no Pulumi\\.${stack}-nofile\\.yaml to create it from: copy Pulumi\\.dev\\.yaml[^\\n]+$`));
        assert.equal(stackExists(), false, "nothing created so far");

        // Both set: the stack is created (and said so), and the preview's refusal is one error.
        const first = ca(["preview", "--stack", stack], { ...backend, ...passphrase });
        assert.equal(first.status, 1);
        assert.ok(stackExists(), "the stack exists on the backend");
        assert.match(first.stderr, new RegExp(`${stack}: created the stack on file://${backendDir}, with the config of Pulumi\\.${stack}\\.yaml`));
        assert.match(fs.readFileSync(stackFile, "utf8"), /^encryptionsalt: /m, "Pulumi.<stack>.yaml holds the stack's salt");
        assert.doesNotMatch(first.stderr, DUMP);
        const refusal = `kubeconfig file ${missingKubeconfig} does not exist (istio-ca:kubeconfig`;
        const tail = first.stderr.trim().split("\n").slice(-2);
        assert.ok(tail[0].startsWith(`error: ${refusal}`), `the last lines are the refusal: ${JSON.stringify(tail)}`);
        assert.match(first.stderr, / 1 error\n/);
        assert.doesNotMatch(first.stderr, /\b\d+ errors\b/);
        // The engine's diagnostics once, the driver's summary once (the progress line aside).
        const reports = first.stderr.split("\n").filter((l) => l.replace(/^ {2}\S+ \| /, "").trim().startsWith(`error: ${refusal}`));
        assert.equal(reports.length, 2, first.stderr);
        assert.ok(first.stderr.split("\n").filter(Boolean).slice(0, -2).every((l) => l.startsWith(`  ${stack} | `) || /^\[ca \+\d+s\] /.test(l)),
            "every engine line carries the stack's name");

        // The second run selects it; --verbose gives the Automation API's whole error.
        const verbose = ca(["preview", "--stack", stack, "--verbose"], { ...backend, ...passphrase });
        assert.equal(verbose.status, 1);
        assert.doesNotMatch(verbose.stderr, /created the stack/);
        assert.match(verbose.stderr, DUMP);
    } finally {
        fs.rmSync(stackFile, { force: true });
        fs.rmSync(backendDir, { recursive: true, force: true });
    }
});
