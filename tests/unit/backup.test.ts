// The backup step: which name a content gets, the manifest it creates (byte-identical data,
// labels, annotations), and what it does with kubectl (manifest on stdin, never overwrite).
import { test } from "node:test";
import assert from "node:assert/strict";
import { ANNOTATION_BACKED_UP_AT, ANNOTATION_CONTENT_HASH, backupCacerts, backupManifest, SecretObject } from "../../lib/backup";
import { BACKUP_SELECTOR, backupName, backupNameOf, cacertsFingerprint, publicContentHash } from "../../lib/cacertsFiles";
import { Kubectl, ToolError } from "../../lib/kubectl";
import { parseConfig } from "../../components/config";
import { BACKUP_STEP, readStepSettings, runSettings, stepEnvironment } from "../../lib/stepEnv";
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

test("no cacerts: nothing to back up, nothing created", async () => {
    const { kubectl, calls } = fakeKubectl([() => ""]);
    const r = await backupCacerts({ kubectl, namespace: "istio-system", log: quiet });
    assert.deepEqual(r, { created: false, summary: "no cacerts to back up" });
    assert.deepEqual(calls[0].args, ["get", "secret", "cacerts", "-n", "istio-system", "--ignore-not-found", "-o", "json"]);
});

test("a backup is created with the manifest on stdin; no key material on the command line", async () => {
    const { files } = handMadeCacerts();
    const source = secretOf(files);
    const { kubectl, calls } = fakeKubectl([() => JSON.stringify(source), () => "secret/x\n"]);
    const r = await backupCacerts({ kubectl, namespace: "istio-system", log: quiet });
    const name = backupNameOf(files);
    assert.deepEqual(r, { backup: name, created: true, summary: `backed up istio-system/cacerts as istio-system/${name}` });
    assert.deepEqual(calls[1].args, ["create", "-f", "-", "-o", "name"], "create, never apply or replace: an existing backup is not overwritten");
    const sent = JSON.parse(calls[1].input!);
    assert.equal(sent.metadata.name, name);
    assert.deepEqual(sent.data, source.data);
    for (const call of calls) {
        assert.doesNotMatch(call.args.join(" "), /BEGIN|LS0t/, "no PEM (plain or base64) in arguments");
    }
});

test("an existing backup is kept: same content is fine, other content is reported, never overwritten", async () => {
    const { files } = handMadeCacerts();
    const source = secretOf(files);
    const exists = new ToolError('kubectl create -f - -o name failed: Error from server (AlreadyExists): error when creating "STDIN": secrets "x" already exists');
    const same = fakeKubectl([() => JSON.stringify(source), () => exists, () => JSON.stringify({ ...source, metadata: { name: "b" } })]);
    const r1 = await backupCacerts({ kubectl: same.kubectl, namespace: "istio-system", log: quiet });
    assert.equal(r1.created, false);
    assert.match(r1.summary, /already backed up as istio-system\/cacerts-backup-/);
    assert.equal(same.calls.length, 3, "no further write after AlreadyExists");

    const other = fakeKubectl([() => JSON.stringify(source), () => exists, () => JSON.stringify({ ...source, data: { "ca-cert.pem": b64("older") } })]);
    const r2 = await backupCacerts({ kubectl: other.kubectl, namespace: "istio-system", log: quiet });
    assert.equal(r2.created, false);
    assert.match(r2.summary, /already exists with other content and is kept \(never overwritten\)/);
});

test("any other kubectl failure fails the step (and so the up, before cacerts changes)", async () => {
    const { files } = handMadeCacerts();
    const { kubectl } = fakeKubectl([() => JSON.stringify(secretOf(files)), () => new ToolError("kubectl create -f - failed: secrets is forbidden")]);
    await assert.rejects(backupCacerts({ kubectl, namespace: "istio-system", log: quiet }), /forbidden/);
});

test("Kubectl.run writes its input to the tool's stdin", async () => {
    // `cat` stands in for kubectl: what it prints is what it read.
    const out = await new Kubectl({ binary: "cat" }).run([], "manifest on stdin");
    assert.equal(out, "manifest on stdin");
});

test("the backup step's environment: the namespace only (cluster access is in the settings file)", () => {
    const config = parseConfig((k) => ({ clusterName: "c", kubeconfig: "/k", kubeContext: "ctx", istioNamespace: "mesh-ca" } as Record<string, string>)[k]);
    const env = stepEnvironment(config, {}, BACKUP_STEP);
    assert.deepEqual(Object.keys(env).sort(), ["ISTIO_CA_ISTIO_NAMESPACE"]);
    const settings = readStepSettings(env, runSettings(config));
    assert.equal(settings.istioNamespace, "mesh-ca");
    assert.equal(settings.kubeconfig, "/k");
    assert.equal(settings.context, "ctx");
    assert.equal(backupName("0123456789abcdef"), "cacerts-backup-0123456789ab");
});

test("an existing backup the identity may not read (create-only RBAC) is kept and does not fail the step", async () => {
    const { files } = handMadeCacerts();
    const exists = new ToolError('kubectl create -f - -o name failed: Error from server (AlreadyExists): secrets "x" already exists');
    const forbidden = new ToolError('kubectl get secret x failed: Error from server (Forbidden): secrets "x" is forbidden');
    const { kubectl } = fakeKubectl([() => JSON.stringify(secretOf(files)), () => exists, () => forbidden]);
    const r = await backupCacerts({ kubectl, namespace: "istio-system", log: quiet });
    assert.equal(r.created, false);
    assert.match(r.summary, /already exists \(kept, never overwritten; not compared: it cannot be read\)/);
});
