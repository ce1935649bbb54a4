// Early renewal of the intermediate, end to end: the real engine, the real tls provider (whose
// LocallySignedCert decides, when it plans, that a certificate within early_renewal_hours of its
// notAfter must be replaced), a real API server and real Istio (see rotation.test.ts).
//
// Time cannot be moved for the provider (a static Go binary: no faketime), so the test ages the
// intermediate instead: after the first `up` it issues, with openssl, the certificate that same
// `up` would have issued 47 hours earlier (same CSR, same root, notBefore now-47h, notAfter now+1h,
// 48 h of validity as configured) and puts it into the stack's state, exactly as a 47-hour-old
// deployment would hold it. Nothing of the provider or the program is stubbed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Cluster, seedMesh, startCluster } from "../harness/cluster";
import { createTestStack, OpRecorder, PROJECT_ROOT, TestStack } from "../support/engine";
import { RealIstio } from "../harness/realIstio";
import { localClusterConfig, SEED_SWAP } from "../support/localCluster";
import { tolerateRefusalEchoes } from "../../plan/refusal";
import { inlineProgram as program } from "../../program/inline";
import type { EngineEvent } from "@pulumi/pulumi/automation";

const HOUR = 3_600_000;

async function cacertsData(cluster: Cluster): Promise<Record<string, string>> {
    const secret = JSON.parse((await cluster.kubectl(["get", "secret", "cacerts", "-n", "istio-system", "-o", "json"])).stdout);
    return Object.fromEntries(Object.entries(secret.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]));
}

async function restartMarks(cluster: Cluster): Promise<Record<string, string | undefined>> {
    const list = JSON.parse((await cluster.kubectl(["get", "deployments", "-A", "-o", "json"])).stdout);
    return Object.fromEntries(list.items.map((d: any) => [
        `${d.metadata.namespace}/${d.metadata.name}`,
        d.spec.template.metadata?.annotations?.["kubectl.kubernetes.io/restartedAt"],
    ]));
}

/** A resource's outputs in an exported deployment, by resource name. */
function outputsOf(deployment: any, name: string): Record<string, any> {
    const found = deployment.deployment.resources.filter((r: any) => r.urn.endsWith(`::${name}`) && !r.delete);
    assert.equal(found.length, 1, `one ${name} in the state`);
    return found[0].outputs;
}

/** A string output; secret ones come decrypted from the Automation API's exportStack as {plaintext: JSON}. */
function plain(value: any): string {
    return typeof value === "string" ? value : JSON.parse(value.plaintext);
}

const asn1Time = (d: Date): string => d.toISOString().replace(/[-:T]/g, "").replace(/\.\d+Z$/, "Z");
const rfc3339 = (d: Date): string => d.toISOString().replace(/\.\d+Z$/, "Z");

/**
 * The certificate `openssl ca` issues for `csrPem` under the root, valid [notBefore, notAfter], with
 * the intermediate's extensions. The root key goes through stdin only.
 */
function issueAged(csrPem: string, rootCertPem: string, rootKeyPem: string, notBefore: Date, notAfter: Date): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "istio-ca-aged-"));
    try {
        fs.writeFileSync(path.join(dir, "csr.pem"), csrPem);
        fs.writeFileSync(path.join(dir, "root.pem"), rootCertPem);
        fs.writeFileSync(path.join(dir, "index.txt"), "");
        fs.writeFileSync(path.join(dir, "serial"), "7e57\n");
        fs.writeFileSync(path.join(dir, "ca.cnf"), [
            "[ ca ]", "default_ca = aged",
            "[ aged ]", "dir = .", "database = ./index.txt", "new_certs_dir = .", "serial = ./serial", "default_md = sha256",
            "policy = any", "copy_extensions = copy", "unique_subject = no",
            "[ any ]", "organizationName = optional", "commonName = optional", "localityName = optional",
            "[ intermediate ]", "basicConstraints = critical,CA:true", "keyUsage = critical,keyCertSign,cRLSign,digitalSignature,keyEncipherment",
            "",
        ].join("\n"));
        // Node's stdin pipe is a socket, which openssl cannot open as /dev/stdin: `cat` makes it a pipe.
        execFileSync("sh", ["-c", `cat | openssl ca -batch -config ca.cnf -cert root.pem -keyfile /dev/stdin -in csr.pem -out aged.pem ` +
            `-startdate ${asn1Time(notBefore)} -enddate ${asn1Time(notAfter)} -extensions intermediate -notext -preserveDN`],
        { cwd: dir, input: rootKeyPem, stdio: ["pipe", "pipe", "pipe"] });
        return fs.readFileSync(path.join(dir, "aged.pem"), "utf8");
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/** Records the expiry warnings the program emitted (engine diagnostics: the display repeats each in its summary). */
class ExpiryWarnings {
    readonly messages: string[] = [];
    readonly onEvent = (event: EngineEvent): void => {
        const diag = event.diagnosticEvent;
        if (diag?.severity === "warning" && /istio-ca:expiryWarningDays/.test(diag.message)) {
            this.messages.push(diag.message.trim());
        }
    };
}

test("real tls provider: an intermediate within earlyRenewalHours of its notAfter is renewed by the next up (preview shows it), with the restarts", { timeout: 10 * 60_000 }, async (t) => {
    tolerateRefusalEchoes();
    const cluster = await startCluster({ log: (m) => t.diagnostic(m) });
    let istio: RealIstio | undefined;
    let ts: TestStack | undefined;
    try {
        await seedMesh(cluster);
        istio = await RealIstio.start(cluster, { log: (m) => t.diagnostic(m) });
        ts = await createTestStack("expiry", program, localClusterConfig(cluster, "expiry", {
            ...istio.stackConfig,
            ...SEED_SWAP,
            // 48 h intermediates, renewed from 24 h before notAfter, a warning 1 day ahead.
            intermediateValidityDays: "2",
            earlyRenewalHours: "24",
            expiryWarningDays: "1",
        }));
        const { stack } = ts;
        const env = { ...process.env, ...ts.envVars };
        const log = (line: string): void => t.diagnostic(line.trimEnd());

        // 1. A fresh intermediate (48 h left): no warning; a preview finds nothing due.
        const first = new ExpiryWarnings();
        await stack.up({ onOutput: log, onEvent: first.onEvent });
        assert.deepEqual(first.messages, [], "48 h left: outside the 1-day window");
        const fresh = await cacertsData(cluster);
        await stack.preview({ expectNoChanges: true });

        // 2. Age it: the certificate of a deployment made 47 h ago (1 h left, inside earlyRenewalHours 24).
        const decrypted = await stack.exportStack();
        const now = Date.now();
        const notBefore = new Date(Math.floor((now - 47 * HOUR) / 1000) * 1000);
        const notAfter = new Date(notBefore.getTime() + 48 * HOUR);
        const agedPem = issueAged(
            plain(outputsOf({ deployment: decrypted.deployment }, "intermediate-csr").certRequestPem),
            plain(outputsOf({ deployment: decrypted.deployment }, "root-v1-cert").certPem),
            plain(outputsOf({ deployment: decrypted.deployment }, "root-v1-key").privateKeyPem),
            notBefore, notAfter);
        const aged = new X509Certificate(agedPem);
        assert.ok(aged.checkIssued(new X509Certificate(fresh["root-cert.pem"])), "issued by the stack's root");
        assert.equal(aged.publicKey.export({ type: "spki", format: "der" }).toString("hex"),
            new X509Certificate(fresh["ca-cert.pem"]).publicKey.export({ type: "spki", format: "der" }).toString("hex"), "for the same intermediate key");
        // The state as `pulumi stack export` holds it (secrets stay ciphertext), with the aged certificate.
        const exported = JSON.parse(execFileSync("pulumi", ["stack", "export", "--stack", ts.name], { cwd: PROJECT_ROOT, encoding: "utf8", env, maxBuffer: 64 << 20 }));
        const certState = exported.deployment.resources.find((r: any) => r.urn.endsWith("::intermediate-cert") && !r.delete);
        assert.ok(certState.outputs.validityEndTime, "the provider records validity_end_time, which it plans with");
        certState.outputs.certPem = agedPem;
        certState.outputs.validityStartTime = rfc3339(notBefore);
        certState.outputs.validityEndTime = rfc3339(notAfter);
        certState.outputs.readyForRenewal = false;
        certState.id = BigInt(`0x${aged.serialNumber}`).toString();
        const stateFile = path.join(ts.backendDir, "aged-state.json");
        fs.writeFileSync(stateFile, JSON.stringify(exported));
        execFileSync("pulumi", ["stack", "import", "--file", stateFile, "--stack", ts.name], { cwd: PROJECT_ROOT, env, stdio: "pipe" });
        fs.rmSync(stateFile);

        // 3. Control: with earlyRenewalHours 0 the aged certificate is not due (the provider renews
        //    only inside the window); it is still valid for an hour, so the program warns about it.
        await stack.setConfig("istio-ca:earlyRenewalHours", { value: "0" });
        const control = new OpRecorder();
        const controlWarnings = new ExpiryWarnings();
        await stack.preview({ onOutput: log, onEvent: (e) => { control.onEvent(e); controlWarnings.onEvent(e); } });
        assert.ok(!control.with("replace").includes("intermediate-cert"), "not renewed without earlyRenewalHours");
        const warned = controlWarnings.messages;
        assert.equal(warned.length, 1, warned.join("\n"));
        assert.match(warned[0], /intermediate v1 expires in 0 hour\(s\), on /);
        assert.ok(warned[0].includes(notAfter.toISOString()), "names the notAfter");
        assert.match(warned[0], /pulumi config set istio-ca:intermediateVersion 2/);

        // 4. earlyRenewalHours 24, as deployed: the preview shows the renewal, without a refresh.
        await stack.setConfig("istio-ca:earlyRenewalHours", { value: "24" });
        const preview = new OpRecorder();
        const previewWarnings = new ExpiryWarnings();
        await stack.preview({ onOutput: log, onEvent: (e) => { preview.onEvent(e); previewWarnings.onEvent(e); } });
        // istiod restarts first (it signs with the renewed intermediate from its start), then the workloads.
        for (const renewed of ["intermediate-cert", "mesh-restart-istiod", "mesh-restart-workloads"]) {
            assert.ok(preview.with("replace").includes(renewed), `${renewed} is replaced`);
        }
        assert.deepEqual(previewWarnings.messages, [], "a certificate being renewed is shown as a replacement, not warned about");
        assert.deepEqual(preview.with("update"), ["cacerts-secret"]);
        for (const kept of ["intermediate-key", "intermediate-csr", "root-v1-key", "root-v1-cert", "mesh-wait-root-cert"]) {
            assert.ok(preview.only("same").includes(kept), `${kept} is kept`);
        }

        // 5. up renews it: a new certificate for the same key, in cacerts; the workloads restart.
        const marksBefore = await restartMarks(cluster);
        const upWarnings = new ExpiryWarnings();
        const renewedAt = Date.now();
        const up = await stack.up({ onOutput: log, onEvent: upWarnings.onEvent });
        assert.deepEqual(upWarnings.messages, [], "the new intermediate has 48 h: no warning");
        const renewed = await cacertsData(cluster);
        const cert = new X509Certificate(renewed["ca-cert.pem"]);
        assert.notEqual(cert.serialNumber, aged.serialNumber);
        assert.notEqual(cert.fingerprint256, new X509Certificate(fresh["ca-cert.pem"]).fingerprint256);
        assert.ok(Date.parse(cert.validFrom) >= renewedAt - 5 * 60_000, `issued now (notBefore ${cert.validFrom})`);
        assert.equal(Date.parse(cert.validTo) - Date.parse(cert.validFrom), 48 * HOUR);
        assert.equal(renewed["ca-key.pem"], fresh["ca-key.pem"], "only the certificate is renewed: same intermediate key");
        assert.equal(renewed["root-cert.pem"], fresh["root-cert.pem"], "root unchanged");
        assert.equal(up.outputs.intermediate.value.sha256Fingerprint, cert.fingerprint256);
        const marksAfter = await restartMarks(cluster);
        for (const d of ["bookinfo/productpage", "bookinfo/reviews", "payments/ledger", "payments/checkout", "canary/canary-api"]) {
            assert.notEqual(marksAfter[d], marksBefore[d], `${d} restarted`);
        }
        assert.notEqual(marksAfter["istio-system/istiod"], marksBefore["istio-system/istiod"], "istiod restarts before the workloads, to sign with the renewed intermediate");
        await stack.preview({ expectNoChanges: true });
    } finally {
        await istio?.stop();
        await ts?.dispose();
        await cluster.stop();
    }
});
