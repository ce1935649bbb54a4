// What the driver makes of a killed `up`: locks of dead processes, pending operations, and which
// of them it may clear by itself (cli/interrupted.ts). The real thing is tests/e2e/interrupted.test.ts.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileBackendDir, isRunningPulumi, isStale, pendingOperations, planRecovery, readStackLocks, StackLock } from "../../cli/interrupted";

const lock = (over: Partial<StackLock> = {}): StackLock => ({ file: "/b/.pulumi/locks/organization/istio-ca/dev/1.json", pid: 4242, username: "ci", hostname: os.hostname(), timestamp: "2026-11-25T10:00:00Z", ...over });
const urn = (type: string, name: string) => `urn:pulumi:dev::istio-ca::${type}::${name}`;
const op = (type: string, resourceType: string, name: string) => ({ type, urn: urn(resourceType, name), resourceType });

describe("locks", () => {
    test("file backends only; relative to the project, ~ to the home directory", () => {
        assert.equal(fileBackendDir("file://./.pulumi-state", "/p"), "/p/.pulumi-state");
        assert.equal(fileBackendDir("file:///var/state?no_tmp_dir=true", "/p"), "/var/state");
        assert.equal(fileBackendDir("file://~/state", "/p"), path.join(os.homedir(), "state"));
        assert.equal(fileBackendDir("s3://bucket", "/p"), undefined);
        assert.equal(fileBackendDir("https://api.pulumi.com", "/p"), undefined);
    });

    test("reads the stack's lock files (not the .attrs beside them, not other stacks')", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "istio-ca-locks-"));
        try {
            assert.deepEqual(readStackLocks(dir, "istio-ca", "dev"), [], "no lock directory: no lock");
            const stackDir = path.join(dir, ".pulumi/locks/organization/istio-ca/dev");
            fs.mkdirSync(stackDir, { recursive: true });
            fs.mkdirSync(path.join(dir, ".pulumi/locks/organization/istio-ca/prod"), { recursive: true });
            fs.writeFileSync(path.join(stackDir, "a.json"), JSON.stringify({ pid: 77, username: "u", hostname: "h", timestamp: "t" }));
            fs.writeFileSync(path.join(stackDir, "a.json.attrs"), "{}");
            fs.writeFileSync(path.join(dir, ".pulumi/locks/organization/istio-ca/prod/b.json"), JSON.stringify({ pid: 1 }));
            assert.deepEqual(readStackLocks(dir, "istio-ca", "dev"), [{ file: path.join(stackDir, "a.json"), pid: 77, username: "u", hostname: "h", timestamp: "t" }]);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    test("stale: this host, and the pid runs no pulumi; another host's lock is never taken for stale", () => {
        assert.equal(isStale(lock(), os.hostname(), () => false), true);
        assert.equal(isStale(lock(), os.hostname(), () => true), false);
        assert.equal(isStale(lock({ hostname: "other-host" }), os.hostname(), () => false), false);
        assert.equal(isStale(lock({ pid: NaN }), os.hostname(), () => false), false);
    });

    test("isRunningPulumi: this node process is running, but it is not pulumi", () => {
        assert.equal(isRunningPulumi(process.pid), process.argv.join(" ").includes("pulumi"));
        assert.equal(isRunningPulumi(2 ** 22 + 7), false, "a pid above pid_max does not run");
    });
});

describe("pending operations", () => {
    test("read from `pulumi stack export` output; none when absent", () => {
        assert.deepEqual(pendingOperations({ deployment: {} }), []);
        assert.deepEqual(pendingOperations({
            version: 3,
            deployment: { pending_operations: [{ type: "creating", resource: { urn: urn("command:local:Command", "mesh-restart-workloads"), type: "command:local:Command" } }] },
        }), [op("creating", "command:local:Command", "mesh-restart-workloads")]);
    });
});

describe("planRecovery", () => {
    const stale = () => true;

    test("a dead process's lock and a step's pending create: both cleared, and said why", () => {
        const plan = planRecovery("dev", [lock()], [op("creating", "command:local:Command", "mesh-restart-workloads")], stale);
        assert.equal(plan.staleLocks.length, 1);
        assert.equal(plan.clearable.length, 1);
        assert.deepEqual(plan.blocking, []);
        assert.deepEqual(plan.liveLocks, []);
        const text = plan.explanation.join("\n");
        assert.match(text, /dev: the update started 2026-11-25T10:00:00Z by pulumi \(pid 4242\) was interrupted \(the process is gone\) and left its lock .*1\.json; removing it \(`pulumi cancel`\)/);
        assert.match(text, /was creating mesh-restart-workloads; nothing of those exists outside the state/);
    });

    test("tls keys and certificates and providers are clearable too", () => {
        const plan = planRecovery("dev", [], [
            op("creating", "tls:index/privateKey:PrivateKey", "intermediate-key"),
            op("creating", "tls:index/locallySignedCert:LocallySignedCert", "intermediate-cert"),
            op("creating", "pulumi:providers:kubernetes", "cluster-dev"),
        ], stale);
        assert.equal(plan.clearable.length, 3);
        assert.deepEqual(plan.blocking, []);
    });

    test("a pending create of a Kubernetes object blocks, with the import and clear commands", () => {
        const plan = planRecovery("dev", [], [op("creating", "kubernetes:core/v1:Secret", "cacerts-secret")], stale);
        assert.equal(plan.blocking.length, 1);
        assert.match(plan.explanation[0], /pulumi refresh --stack dev --import-pending-creates 'urn:pulumi:dev::istio-ca::kubernetes:core\/v1:Secret::cacerts-secret' <id>/);
        assert.match(plan.explanation[0], /pulumi refresh --stack dev --clear-pending-creates/);
    });

    test("a lock of a running process is not touched", () => {
        const plan = planRecovery("dev", [lock()], [], () => false);
        assert.deepEqual(plan.staleLocks, []);
        assert.equal(plan.liveLocks.length, 1);
        assert.match(plan.explanation[0], /dev is locked by ci@.* \(pid 4242, since 2026-11-25T10:00:00Z\), which may still be running an update: wait for it/);
    });

    test("pending updates and deletes are redone by the next up: nothing to clear", () => {
        const plan = planRecovery("dev", [], [op("updating", "kubernetes:core/v1:Secret", "cacerts-secret"), op("deleting", "tls:index/privateKey:PrivateKey", "intermediate-key")], stale);
        assert.deepEqual(plan.clearable, []);
        assert.deepEqual(plan.blocking, []);
        assert.equal(plan.redone.length, 2);
        assert.match(plan.explanation[0], /was updating cacerts-secret, deleting intermediate-key; this up compares with the last recorded state and applies the change again/);
    });
});
