// The backup step: which name a content gets, the manifest it creates (byte-identical data,
// labels, annotations), and what it does with kubectl (manifest on stdin, never overwrite).
import { test } from "node:test";
import assert from "node:assert/strict";
import { ANNOTATION_BACKED_UP_AT, ANNOTATION_CONTENT_HASH, backupCacerts, backupManifest, BackupEntry, choosePrune, SecretObject } from "../../steps/backupCacerts";
import { BACKUP_SELECTOR, backupName, backupNameOf, cacertsFingerprint, publicContentHash } from "../../common/cacertsFiles";
import { Kubectl, ToolError } from "../../kube/kubectl";
import { ConfigError, parseConfig } from "../../plan/config";
import { BACKUP_STEP, readStepSettings, runSettings, stepEnvironment } from "../../steps/stepEnv";
import { handMadeCacerts, openssl } from "../support/testCerts";

const KEY_MARKER = ["PRIVATE", "KEY"].join(" ");
const b64 = (s: string): string => Buffer.from(s, "utf8").toString("base64");


const secretOf = (files: Record<string, string>): SecretObject => ({
    metadata: { name: "cacerts", namespace: "istio-system", uid: "u-1", resourceVersion: "42" },
    type: "Opaque",
    data: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, b64(v)])),
});

test("a backup is named after the SHA-256 of ca-cert.pem's DER, as openssl prints it", () => {
    const { intermediate, files } = handMadeCacerts();
    const opensslFp = openssl(["x509", "-in", intermediate.certPath, "-noout", "-fingerprint", "-sha256"]).split("=")[1].trim().replace(/:/g, "").toLowerCase();
    const asBuffers = Object.fromEntries(Object.entries(files).map(([k, v]) => [k, Buffer.from(v)]));
    assert.equal(cacertsFingerprint(asBuffers), opensslFp);
    assert.equal(backupNameOf(files), `cacerts-backup-${opensslFp.slice(0, 12)}`);
    // Re-encoded PEM (other line breaks), same certificate: same name.
    assert.equal(backupNameOf({ ...files, "ca-cert.pem": "\n\n" + intermediate.certPem.replace(/\n/g, "\r\n") }), backupNameOf(files));
});

test("without a parsable ca-cert.pem the name comes from the raw content", () => {
    const a = backupNameOf({ "ca-key.pem": "x", "root-cert.pem": "y" });
    assert.match(a, /^cacerts-backup-[0-9a-f]{12}$/);
    assert.notEqual(a, backupNameOf({ "ca-key.pem": "x", "root-cert.pem": "z" }), "different content, different name");
    assert.equal(backupNameOf({ "root-cert.pem": "y", "ca-key.pem": "x" }), a, "order of keys does not matter");
    assert.notEqual(backupNameOf({ "ca-cert.pem": "-----BEGIN CERTIFICATE-----\nnot der\n-----END CERTIFICATE-----\n" }), a);
});

test("the manifest copies type and data as read (base64, byte for byte), labelled, annotated, immutable", () => {
    const { files } = handMadeCacerts();
    const source = secretOf({ ...files, "extra.txt": "\u00ff binary-ish" });
    const now = new Date("2026-11-25T10:00:00Z");
    const m = backupManifest(source, "istio-system", now) as any;
    assert.equal(m.kind, "Secret");
    assert.equal(m.metadata.name, backupNameOf(files));
    assert.equal(m.metadata.namespace, "istio-system");
    assert.deepEqual(m.metadata.labels, { "app.kubernetes.io/managed-by": "istio-ca", "istio-ca/backup-of": "cacerts" });
    assert.equal(BACKUP_SELECTOR, "istio-ca/backup-of=cacerts");
    assert.equal(m.metadata.annotations[ANNOTATION_BACKED_UP_AT], "2026-11-25T10:00:00.000Z");
    assert.equal(m.metadata.annotations[ANNOTATION_CONTENT_HASH], publicContentHash({
        caCertPem: files["ca-cert.pem"], rootCertPem: files["root-cert.pem"], certChainPem: files["cert-chain.pem"],
    }), "the same hash as the stack output cacertsContentHash");
    assert.match(m.metadata.annotations["istio-ca/source"], /istio-system\/cacerts uid u-1 resourceVersion 42/);
    assert.equal(m.immutable, true);
    assert.equal(m.type, "Opaque");
    assert.deepEqual(m.data, source.data, "data is the base64 read, untouched");
    assert.doesNotMatch(JSON.stringify(m.metadata), new RegExp(KEY_MARKER));
});

/** A kubectl that answers from a script and records every call. */
function fakeKubectl(answers: ((args: string[], input?: string) => string | Error)[]): { kubectl: Kubectl; calls: { args: string[]; input?: string }[] } {
    const calls: { args: string[]; input?: string }[] = [];
    const kubectl = {
        async run(args: string[], input?: string): Promise<string> {
            calls.push({ args, input });
            const answer = answers[calls.length - 1];
            if (!answer) {
                throw new Error(`unexpected kubectl ${args.join(" ")}`);
            }
            const out = answer(args, input);
            if (out instanceof Error) {
                throw out;
            }
            return out;
        },
    } as unknown as Kubectl;
    return { kubectl, calls };
}

const quiet = (): void => undefined;
/** Where the tests' backups go, and how many are kept. */
const ctxOf = (kubectl: Kubectl, extra: Partial<Parameters<typeof backupCacerts>[0]> = {}): Parameters<typeof backupCacerts>[0] =>
    ({ kubectl, namespace: "istio-system", backupNamespace: "istio-ca-backups", keep: 3, log: quiet, ...extra });
/** kubectl's answer to the list of backups: none. */
const noBackups = (): string => JSON.stringify({ items: [] });

test("no cacerts: nothing to back up, nothing created", async () => {
    const { kubectl, calls } = fakeKubectl([() => ""]);
    const r = await backupCacerts(ctxOf(kubectl));
    assert.deepEqual(r, { created: false, pruned: [], prunedCount: 0, summary: "no cacerts to back up" });
    assert.deepEqual(calls[0].args, ["get", "secret", "cacerts", "-n", "istio-system", "--ignore-not-found", "-o", "json"]);
});

test("a backup is created with the manifest on stdin; no key material on the command line", async () => {
    const { files } = handMadeCacerts();
    const source = secretOf(files);
    const { kubectl, calls } = fakeKubectl([() => JSON.stringify(source), () => "secret/x\n", noBackups]);
    const r = await backupCacerts(ctxOf(kubectl));
    const name = backupNameOf(files);
    assert.deepEqual(r, { backup: name, created: true, pruned: [], prunedCount: 0, summary: `backed up istio-system/cacerts as istio-ca-backups/${name}` });
    assert.deepEqual(calls[1].args, ["create", "-f", "-", "-o", "name"], "create, never apply or replace: an existing backup is not overwritten");
    const sent = JSON.parse(calls[1].input!);
    assert.equal(sent.metadata.name, name);
    assert.equal(sent.metadata.namespace, "istio-ca-backups", "in the backup namespace, not the Istio namespace");
    assert.deepEqual(sent.data, source.data);
    for (const call of calls) {
        assert.doesNotMatch(call.args.join(" "), /BEGIN|LS0t/, "no PEM (plain or base64) in arguments");
    }
});

test("an existing backup is kept: same content is fine, other content is reported, never overwritten", async () => {
    const { files } = handMadeCacerts();
    const source = secretOf(files);
    const exists = new ToolError('kubectl create -f - -o name failed: Error from server (AlreadyExists): error when creating "STDIN": secrets "x" already exists');
    const same = fakeKubectl([() => JSON.stringify(source), () => exists, () => JSON.stringify({ ...source, metadata: { name: "b" } }), noBackups]);
    const r1 = await backupCacerts(ctxOf(same.kubectl));
    assert.equal(r1.created, false);
    assert.match(r1.summary, /already backed up as istio-ca-backups\/cacerts-backup-/);
    assert.equal(same.calls.length, 4, "no further write after AlreadyExists (the 4th call lists the backups to prune)");
    assert.deepEqual(same.calls[3].args.slice(0, 2), ["get", "secrets"]);

    const other = fakeKubectl([() => JSON.stringify(source), () => exists, () => JSON.stringify({ ...source, data: { "ca-cert.pem": b64("older") } }), noBackups]);
    const r2 = await backupCacerts(ctxOf(other.kubectl));
    assert.equal(r2.created, false);
    assert.match(r2.summary, /already exists with other content and is kept \(never overwritten\)/);
});

test("any other kubectl failure fails the step (and so the up, before cacerts changes)", async () => {
    const { files } = handMadeCacerts();
    const { kubectl } = fakeKubectl([() => JSON.stringify(secretOf(files)), () => new ToolError("kubectl create -f - failed: secrets is forbidden")]);
    await assert.rejects(backupCacerts(ctxOf(kubectl)), /forbidden/);
});

test("Kubectl.run writes its input to the tool's stdin", async () => {
    // `cat` stands in for kubectl: what it prints is what it read.
    const out = await new Kubectl({ binary: "cat" }).run([], "manifest on stdin");
    assert.equal(out, "manifest on stdin");
});

test("the backup step's environment: the namespace only (cluster access is in the settings file)", () => {
    const config = parseConfig((k) => ({ clusterName: "c", kubeconfig: "/k", kubeContext: "ctx", istioNamespace: "mesh-ca" } as Record<string, string>)[k]);
    const env = stepEnvironment(config, {}, BACKUP_STEP);
    assert.deepEqual(Object.keys(env).sort(), ["ISTIO_CA_BACKUP_NAMESPACE", "ISTIO_CA_ISTIO_NAMESPACE", "ISTIO_CA_KEEP_BACKUPS"]);
    const settings = readStepSettings(env, runSettings(config));
    assert.equal(settings.istioNamespace, "mesh-ca");
    assert.equal(settings.kubeconfig, "/k");
    assert.equal(settings.context, "ctx");
    assert.deepEqual(settings.backup, { namespace: "istio-ca-backups", keep: 3, restoreFrom: undefined });
    assert.equal(backupName("0123456789abcdef"), "cacerts-backup-0123456789ab");
});

test("an existing backup the identity may not read (create-only RBAC) is kept and does not fail the step", async () => {
    const { files } = handMadeCacerts();
    const exists = new ToolError('kubectl create -f - -o name failed: Error from server (AlreadyExists): secrets "x" already exists');
    const forbidden = new ToolError('kubectl get secret x failed: Error from server (Forbidden): secrets "x" is forbidden');
    const { kubectl } = fakeKubectl([() => JSON.stringify(secretOf(files)), () => exists, () => forbidden, noBackups]);
    const r = await backupCacerts(ctxOf(kubectl));
    assert.equal(r.created, false);
    assert.match(r.summary, /already exists \(kept, never overwritten; not compared: it cannot be read\)/);
});

// Pruning (istio-ca:keepBackups): each backup holds a signing key, so only the most recent stay.

const at = (name: string, iso: string): BackupEntry => ({ name, backedUpAt: iso });
const five = [
    at("cacerts-backup-000000000003", "2026-11-03T00:00:00Z"),
    at("cacerts-backup-000000000001", "2026-11-01T00:00:00Z"),
    at("cacerts-backup-000000000005", "2026-11-05T00:00:00Z"),
    at("cacerts-backup-000000000002", "2026-11-02T00:00:00Z"),
    at("cacerts-backup-000000000004", "2026-11-04T00:00:00Z"),
];

test("choosePrune keeps the keepBackups most recent and prunes the rest, oldest last", () => {
    assert.deepEqual(choosePrune(five, 3, []), {
        kept: ["cacerts-backup-000000000005", "cacerts-backup-000000000004", "cacerts-backup-000000000003"],
        pruned: ["cacerts-backup-000000000002", "cacerts-backup-000000000001"],
    });
    assert.deepEqual(choosePrune(five, 5, []).pruned, [], "no more than keepBackups: nothing pruned");
    assert.deepEqual(choosePrune(five, 9, []).pruned, []);
    assert.deepEqual(choosePrune([], 1, ["cacerts-backup-x"]), { kept: [], pruned: [] });
});

test("choosePrune never prunes the backup just taken nor the one istio-ca:restoreCacertsFrom names, however old", () => {
    const r = choosePrune(five, 1, ["cacerts-backup-000000000001", "cacerts-backup-000000000002", undefined]);
    assert.deepEqual(r.kept, ["cacerts-backup-000000000005", "cacerts-backup-000000000002", "cacerts-backup-000000000001"]);
    assert.deepEqual(r.pruned, ["cacerts-backup-000000000004", "cacerts-backup-000000000003"]);
});

test("choosePrune: a date that does not parse counts as oldest; equal dates are ordered by name", () => {
    const r = choosePrune([at("cacerts-backup-b", "2026-01-01T00:00:00Z"), at("cacerts-backup-bad", "yesterday"), at("cacerts-backup-a", "2026-01-01T00:00:00Z")], 2, []);
    assert.deepEqual(r, { kept: ["cacerts-backup-a", "cacerts-backup-b"], pruned: ["cacerts-backup-bad"] });
});

/** kubectl's list of the backup namespace: the five above, a foreign Secret with the label, one without the managed-by label. */
function listed(): string {
    const item = (name: string, annotations: Record<string, string> | undefined, labels: Record<string, string>) =>
        ({ metadata: { name, annotations, labels, creationTimestamp: "2020-01-01T00:00:00Z" }, data: { "ca-key.pem": b64("secret") } });
    const ours = { "app.kubernetes.io/managed-by": "istio-ca", "istio-ca/backup-of": "cacerts" };
    return JSON.stringify({ items: [
        ...five.map((b) => item(b.name, { [ANNOTATION_BACKED_UP_AT]: b.backedUpAt }, ours)),
        item("someone-elses-secret", undefined, ours),
        item("cacerts-backup-handlabelled", undefined, { "istio-ca/backup-of": "cacerts" }),
    ] });
}

test("after the backup, the step deletes by name the backups beyond keepBackups, says which, and keeps the one to restore", async () => {
    const { files } = handMadeCacerts();
    const { kubectl, calls } = fakeKubectl([() => JSON.stringify(secretOf(files)), () => "secret/x\n", listed, () => ""]);
    const lines: string[] = [];
    const r = await backupCacerts(ctxOf(kubectl, { keep: 2, restoreFrom: "cacerts-backup-000000000001", now: () => new Date("2026-12-01T00:00:00Z"), log: (l) => lines.push(l) }));
    const taken = backupNameOf(files);
    assert.deepEqual(calls[2].args, ["get", "secrets", "-n", "istio-ca-backups", "-l", BACKUP_SELECTOR, "-o", "json"]);
    // The list does not hold the backup just taken here (the fake kubectl): it is protected by name anyway.
    assert.deepEqual(r.pruned, ["cacerts-backup-000000000003", "cacerts-backup-000000000002"]);
    assert.deepEqual(calls[3].args, ["delete", "secret", "cacerts-backup-000000000003", "cacerts-backup-000000000002", "-n", "istio-ca-backups", "--ignore-not-found"],
        "deleted by name, only Secrets named cacerts-backup-* with both labels, never the one to restore");
    assert.equal(calls.length, 4);
    assert.equal(r.summary, `backed up istio-system/cacerts as istio-ca-backups/${taken}; pruned 2 older backup(s) beyond istio-ca:keepBackups 2: ` +
        "istio-ca-backups/cacerts-backup-000000000003, istio-ca-backups/cacerts-backup-000000000002");
    assert.ok(lines.includes(r.summary), "the step's log names the pruned backups");
    assert.doesNotMatch(lines.join("\n") + r.summary, /c2VjcmV0/, "no Secret data in what the step prints");
});

test("after keepBackups was lowered a lot, all older backups go, and the summary names the first few and counts the rest", async () => {
    const { files } = handMadeCacerts();
    const many = Array.from({ length: 30 }, (_, i) => ({
        metadata: { name: `cacerts-backup-${String(i).padStart(12, "0")}`, labels: { "app.kubernetes.io/managed-by": "istio-ca", "istio-ca/backup-of": "cacerts" },
            annotations: { [ANNOTATION_BACKED_UP_AT]: new Date(Date.UTC(2026, 0, 1 + i)).toISOString() } },
    }));
    const { kubectl, calls } = fakeKubectl([() => JSON.stringify(secretOf(files)), () => "secret/x\n", () => JSON.stringify({ items: many }), () => ""]);
    const r = await backupCacerts(ctxOf(kubectl, { keep: 1 }));
    assert.equal(r.prunedCount, 29);
    assert.equal(calls[3].args.filter((a) => a.startsWith("cacerts-backup-")).length, 29, "every one beyond keepBackups is deleted");
    assert.equal(r.pruned.length, 10);
    assert.match(r.summary, /pruned 29 older backup\(s\) beyond istio-ca:keepBackups 1: .* and 19 more$/);
    assert.ok(JSON.stringify(r).length < 4096, "the step's summary line stays short");
});

test("nothing beyond keepBackups: no delete", async () => {
    const { files } = handMadeCacerts();
    const { kubectl, calls } = fakeKubectl([() => JSON.stringify(secretOf(files)), () => "secret/x\n", listed]);
    const r = await backupCacerts(ctxOf(kubectl, { keep: 5 }));
    assert.deepEqual(r.pruned, []);
    assert.equal(calls.length, 3);
    assert.doesNotMatch(r.summary, /pruned/);
});

test("a prune the identity may not do fails the step (before cacerts changes), naming keepBackups, the namespace and the role", async () => {
    const { files } = handMadeCacerts();
    const forbidden = new ToolError('kubectl get secrets failed: Error from server (Forbidden): secrets is forbidden: cannot list resource "secrets" in the namespace "istio-ca-backups"');
    const { kubectl } = fakeKubectl([() => JSON.stringify(secretOf(files)), () => "secret/x\n", () => forbidden]);
    await assert.rejects(backupCacerts(ctxOf(kubectl)),
        /cannot prune the backups in istio-ca-backups beyond istio-ca:keepBackups 3 \(the identity needs list and delete on Secrets in namespace istio-ca-backups: deploy\/rbac\.yaml\): .*Forbidden/);
});

test("a missing backup namespace is created, then the backup; an identity that may not create it is told what to apply", async () => {
    const { files } = handMadeCacerts();
    const missing = new ToolError('kubectl create -f - failed: Error from server (NotFound): error when creating "STDIN": namespaces "istio-ca-backups" not found');
    const made = fakeKubectl([() => JSON.stringify(secretOf(files)), () => missing, () => "namespace/istio-ca-backups\n", () => "secret/x\n", noBackups]);
    const r = await backupCacerts(ctxOf(made.kubectl));
    assert.equal(r.created, true);
    assert.deepEqual(made.calls[2].args, ["create", "namespace", "istio-ca-backups", "-o", "name"]);
    assert.deepEqual(made.calls[3].args, ["create", "-f", "-", "-o", "name"], "the backup, once the namespace exists");

    const denied = new ToolError('kubectl create namespace failed: Error from server (Forbidden): namespaces is forbidden');
    const refused = fakeKubectl([() => JSON.stringify(secretOf(files)), () => missing, () => denied]);
    await assert.rejects(backupCacerts(ctxOf(refused.kubectl)),
        /namespace istio-ca-backups \(istio-ca:backupNamespace\) does not exist and this identity may not create it: kubectl apply -f deploy\/rbac\.yaml creates it/);
});

test("istio-ca:keepBackups (default 3, at least 1) and istio-ca:backupNamespace reach the backup step", () => {
    const parse = (extra: Record<string, string>) => parseConfig((k) => ({ clusterName: "c", ...extra } as Record<string, string>)[k]);
    assert.equal(parse({}).keepBackups, 3);
    assert.equal(parse({}).backupNamespace, "istio-ca-backups");
    const env = stepEnvironment(parse({ keepBackups: "7", backupNamespace: "ca-vault", restoreCacertsFrom: "cacerts-backup-0123456789ab" }), {}, BACKUP_STEP);
    assert.deepEqual(readStepSettings(env).backup, { namespace: "ca-vault", keep: 7, restoreFrom: "cacerts-backup-0123456789ab" });
    assert.throws(() => parse({ keepBackups: "0" }), (e: unknown) => e instanceof ConfigError && /istio-ca:keepBackups must be between 1 and 1000, got 0/.test(e.message));
    assert.throws(() => parse({ backupNamespace: "Backups!" }), (e: unknown) => e instanceof ConfigError && /istio-ca:backupNamespace must be a Kubernetes namespace name/.test(e.message));
    assert.throws(() => readStepSettings({ ...env, ISTIO_CA_KEEP_BACKUPS: "none" }), /ISTIO_CA_KEEP_BACKUPS must be an integer >= 1 \(istio-ca:keepBackups\)/);
});
