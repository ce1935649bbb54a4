// Safe under takeover, on the real engine and a local API server: a stack's first `up` over a
// hand-made cacerts (made here with openssl, as Istio's tools/certs Makefile would) backs it up
// byte for byte before changing it, every rotation backs up the content it replaces, a backup can
// be restored with istio-ca:restoreCacertsFrom, and `pulumi destroy` leaves cacerts and every
// backup in place; rotations beyond istio-ca:keepBackups prune the oldest backups (never the one
// just taken nor the one to restore) and the backup step names them. Real istiod serves each
// cacerts (see rotation.test.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Cluster, seedMesh, startCluster } from "../harness/cluster";
import { createTestStack, OpRecorder, TestStack } from "../support/engine";
import { RealIstio } from "../harness/realIstio";
import { localClusterConfig, readSecret } from "../support/localCluster";
import { issuedBy, selfSignedCa, writeTemp } from "../support/testCerts";
import { backupNameOf, BACKUP_SELECTOR } from "../../common/cacertsFiles";
import { inlineProgram as program } from "../../program/inline";

const BACKUP_NAMESPACE = "istio-ca-backups";

async function backupNames(cluster: Cluster): Promise<string[]> {
    const out = (await cluster.kubectl(["get", "secret", "-n", BACKUP_NAMESPACE, "-l", BACKUP_SELECTOR, "-o", "jsonpath={.items[*].metadata.name}"])).stdout;
    return out.split(" ").filter(Boolean).sort();
}

/** The last stdout line (JSON summary) of the backup step, as the state keeps it. */
async function backupStepSummary(stack: TestStack["stack"]): Promise<{ backup?: string; created: boolean; pruned: string[]; summary: string }> {
    const state = await stack.exportStack();
    const step = (state.deployment.resources as { urn: string; outputs?: { stdout?: string } }[]).find((r) => r.urn.endsWith("::backup-cacerts"))!;
    return JSON.parse(step.outputs!.stdout!.trim().split("\n").pop()!);
}

test("takeover of a hand-made cacerts: backup before change, backup per rotation, restore, destroy keeps backups", { timeout: 10 * 60_000 }, async (t) => {
    const cluster = await startCluster({ log: (m) => t.diagnostic(m) });
    let istio: RealIstio | undefined;
    let ts: TestStack | undefined;
    try {
        await seedMesh(cluster);
        // The hand-made CA, as after Istio's "Plug in CA certificates" task.
        const root = selfSignedCa("Hand Root");
        const intermediate = issuedBy(root, "/O=Istio/CN=Intermediate CA/L=by-hand");
        const chainPath = writeTemp("cert-chain.pem", intermediate.certPem + root.certPem);
        await cluster.kubectl(["create", "secret", "generic", "cacerts", "-n", "istio-system",
            `--from-file=ca-cert.pem=${intermediate.certPath}`, `--from-file=ca-key.pem=${intermediate.keyPath}`,
            `--from-file=root-cert.pem=${root.certPath}`, `--from-file=cert-chain.pem=${chainPath}`]);
        const handMade = (await readSecret(cluster, "cacerts"))!;
        const handMadeBackup = backupNameOf(handMade.data);
        // Real istiod starts on the hand-made cacerts, as in the cluster being taken over.
        istio = await RealIstio.start(cluster, { log: (m) => t.diagnostic(m) });

        ts = await createTestStack("takeover", program, localClusterConfig(cluster, "e2e", istio.stackConfig));
        const { stack } = ts;
        const log = (line: string) => t.diagnostic(line.trimEnd());

        // 1. The preview of the first up says what will happen to the existing cacerts.
        let previewText = "";
        await stack.preview({ onOutput: (line) => { previewText += line; } });
        assert.match(previewText, /TAKEOVER: Secret istio-system\/cacerts exists/);
        assert.ok(previewText.includes(`backs it up as Secret ${BACKUP_NAMESPACE}/${handMadeBackup}`), "the backup is named in preview");
        assert.match(previewText, /ROOT SWAP/);
        assert.ok(previewText.includes("pulumi config set --secret istio-ca:rootKeyPem < root-key.pem"));
        assert.deepEqual(await backupNames(cluster), [], "preview changes nothing");

        // 2. up: the hand-made content is backed up byte for byte, then cacerts is updated in place.
        await stack.up({ onOutput: log });
        const backup1 = await readSecret(cluster, handMadeBackup, BACKUP_NAMESPACE);
        assert.ok(backup1, `${handMadeBackup} exists`);
        assert.deepEqual(backup1.data, handMade.data, "the backup holds exactly the hand-made content");
        assert.equal(backup1.labels["app.kubernetes.io/managed-by"], "istio-ca");
        assert.equal(backup1.labels["istio-ca/backup-of"], "cacerts");
        assert.match(backup1.annotations["istio-ca/backed-up-at"], /^\d{4}-\d\d-\d\dT/);
        assert.match(backup1.annotations["istio-ca/content-hash"], /^[0-9a-f]{64}$/);
        const managed1 = (await readSecret(cluster, "cacerts"))!;
        assert.equal(managed1.uid, handMade.uid, "the same Secret object, updated in place");
        assert.notEqual(managed1.data["ca-cert.pem"], handMade.data["ca-cert.pem"], "cacerts now holds the program's intermediate");
        assert.notEqual(managed1.data["root-cert.pem"], handMade.data["root-cert.pem"], "and its root");
        assert.match(managed1.data["ca-cert.pem"], /BEGIN CERTIFICATE/);

        // 3. A no-op: nothing changes, the backup step is not shown as changed, no takeover warning.
        let noopText = "";
        await stack.preview({ expectNoChanges: true, onOutput: (line) => { noopText += line; } });
        assert.doesNotMatch(noopText, /TAKEOVER/);

        // 4. Intermediate rotation: the first managed content is backed up before it is replaced.
        await stack.setConfig("istio-ca:intermediateVersion", { value: "2" });
        await stack.up({ onOutput: log });
        const managedBackup = backupNameOf(managed1.data);
        const backup2 = await readSecret(cluster, managedBackup, BACKUP_NAMESPACE);
        assert.ok(backup2, `${managedBackup} exists`);
        assert.deepEqual(backup2.data, managed1.data, "the second backup holds the first managed content");
        assert.deepEqual(await backupNames(cluster), [handMadeBackup, managedBackup].sort());
        const managed2 = (await readSecret(cluster, "cacerts"))!;
        assert.notEqual(managed2.data["ca-cert.pem"], managed1.data["ca-cert.pem"]);
        assert.equal(managed2.uid, handMade.uid);

        // 5. Rollback to the first managed content.
        await stack.setConfig("istio-ca:restoreCacertsFrom", { value: managedBackup });
        const restorePreview = new OpRecorder();
        await stack.preview({ onEvent: restorePreview.onEvent });
        assert.deepEqual(restorePreview.with("update"), ["cacerts-secret"], "cacerts is updated in place");
        assert.ok(restorePreview.only("same").includes("intermediate-cert"), "the generated intermediate stays in the state");
        const restored = await stack.up({ onOutput: log });
        const managed3 = (await readSecret(cluster, "cacerts"))!;
        assert.deepEqual(managed3.data, backup2.data, "cacerts holds exactly the backup's files");
        assert.equal(managed3.uid, handMade.uid);
        assert.equal(restored.outputs.restoredFrom.value.secret, `${BACKUP_NAMESPACE}/${managedBackup}`);
        assert.deepEqual(restored.outputs.trustState.value, { keyVersion: 1, trustedKeyVersions: [1], intermediateVersion: 2 }, "trustState stays as the config says");
        const beforeRestore = backupNameOf(managed2.data);
        assert.deepEqual((await readSecret(cluster, beforeRestore, BACKUP_NAMESPACE))?.data, managed2.data, "the content replaced by the restore was backed up too");

        // 6. Removing the key serves the generated material again.
        await stack.removeConfig("istio-ca:restoreCacertsFrom");
        const back = await stack.up({ onOutput: log });
        assert.deepEqual((await readSecret(cluster, "cacerts"))!.data, managed2.data, "back to the generated intermediate 2");
        assert.equal(back.outputs.restoredFrom, undefined);

        const backups = await backupNames(cluster);
        assert.equal(backups.length, 3);
        assert.deepEqual((await backupStepSummary(stack)).pruned, [], "istio-ca:keepBackups 3 (the default): none of the 3 pruned");

        // 7. Beyond istio-ca:keepBackups the oldest backups are pruned, the step names them; the
        // backup just taken and the one istio-ca:restoreCacertsFrom names are kept however old.
        await stack.setConfig("istio-ca:intermediateVersion", { value: "3" });
        await stack.up({ onOutput: log });
        const managed4 = (await readSecret(cluster, "cacerts"))!;
        assert.deepEqual((await backupStepSummary(stack)).pruned, [], "intermediate 2's content was backed up already: still 3");
        await stack.setConfig("istio-ca:intermediateVersion", { value: "4" });
        await stack.up({ onOutput: log });
        const fourth = await backupStepSummary(stack);
        assert.equal(fourth.backup, backupNameOf(managed4.data));
        assert.equal(fourth.created, true);
        assert.deepEqual(fourth.pruned, [handMadeBackup], "a fourth backup prunes the oldest: the hand-made one");
        assert.ok(fourth.summary.includes(`pruned 1 older backup(s) beyond istio-ca:keepBackups 3: ${BACKUP_NAMESPACE}/${handMadeBackup}`), fourth.summary);
        assert.deepEqual(await backupNames(cluster), [managedBackup, beforeRestore, fourth.backup].sort(), "the 3 most recent are kept");

        const managed5 = (await readSecret(cluster, "cacerts"))!;
        await stack.setConfig("istio-ca:keepBackups", { value: "1" });
        await stack.setConfig("istio-ca:restoreCacertsFrom", { value: managedBackup }); // the oldest left
        let restoreOutput = "";
        await stack.up({ onOutput: (line) => { restoreOutput += line; log(line); } });
        const last = await backupStepSummary(stack);
        assert.equal(last.backup, backupNameOf(managed5.data), "intermediate 4's content, replaced by the restore, was backed up");
        assert.deepEqual([...last.pruned].sort(), [beforeRestore, fourth.backup].sort(), "keepBackups 1: all but the newest and the one to restore pruned");
        assert.deepEqual(await backupNames(cluster), [managedBackup, last.backup!].sort());
        assert.deepEqual((await readSecret(cluster, "cacerts"))!.data, managed1.data, "the restore read its backup, which pruning kept");
        t.diagnostic(`backup step: ${last.summary}`);
        assert.match(last.summary, new RegExp(`pruned 2 older backup\\(s\\) beyond istio-ca:keepBackups 1: ${BACKUP_NAMESPACE}/cacerts-backup-`));
        t.diagnostic(`the up's own output ${restoreOutput.includes("pruned 2 older backup(s)") ? "shows" : "does not show"} the step's prune line`);

        // 8. destroy: cacerts and every backup stay.
        const kept = await backupNames(cluster);
        await stack.destroy({ onOutput: log });
        assert.deepEqual(await backupNames(cluster), kept, "pulumi destroy deletes no backup");
        for (const name of kept) {
            assert.ok((await readSecret(cluster, name, BACKUP_NAMESPACE))?.data["ca-key.pem"], `${name} still holds its content`);
        }
        assert.equal((await readSecret(cluster, "cacerts"))?.uid, handMade.uid, "cacerts is left in place");
    } finally {
        await istio?.stop();
        await ts?.dispose();
        await cluster.stop();
    }
});
