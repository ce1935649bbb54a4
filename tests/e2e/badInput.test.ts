// Safe under bad input, secrets, least privilege: one local control plane, the real engine.
//
// 1. Bad input against the real API server: each case runs `pulumi preview` and `pulumi up` and
//    must fail with a message that names the config key or the Kubernetes object, without a
//    JavaScript stack trace, and with nothing applied (no resource in the stack's state, no
//    cacerts Secret, no Deployment restarted).
// 2. Least privilege and secrets: `up` and an intermediate rotation as the ServiceAccount of
//    deploy/rbac.yaml (and nothing else), with the engine's most detailed logging that Pulumi
//    keeps free of resource values (see SAFE_VERBOSITY), while every process's command line and
//    environment is sampled; no private key (PEM, PEM body, base64 of the PEM) may appear in the
//    logs, the samples, `pulumi stack export`, the backend's files or the stack outputs.
import { test } from "node:test";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { Cluster, seedMesh, startCluster } from "../harness/cluster";
import { createTestStack, PROJECT_ROOT, TestStack } from "../support/engine";
import { RealIstio } from "../harness/realIstio";
import { SEED_SWAP } from "../support/localCluster";
import { ProcessSampler } from "../support/processes";
import { tolerateRefusalEchoes } from "../../plan/refusal";
import { applyTrustState } from "../../cli/stackTrustState";
import { inlineProgram as program } from "../../program/inline";

const PRIVATE_KEY = "PRIVATE" + " KEY"; // spelt apart: no PEM key marker in the repository
/** A V8 stack frame: `    at fn (/path/file.js:12:34)` or `    at /path/file.js:12:34`. */
const STACK_FRAME = /^\s*at (?:.+ \()?(?:\/|node:|file:).*:\d+:\d+\)?\s*$/m;
const RBAC_YAML = path.join(PROJECT_ROOT, "deploy", "rbac.yaml");
/** Secret create in the Istio namespace, granted for the first up (no cacerts yet) only. */
const FIRST_CACERTS_YAML = path.join(PROJECT_ROOT, "deploy", "rbac-first-cacerts.yaml");
const BACKUP_NAMESPACE = "istio-ca-backups";
/**
 * The highest `pulumi --verbose` level whose log holds no resource values. From 7 on, the engine
 * itself writes resource inputs in plaintext, secrets included (pkg/resource/deploy/
 * step_generator.go: "Planner decided to create … (inputs=…)" at V(7); every RPC property at V(9),
 * sdk/go/common/resource/plugin/rpc.go): Pulumi masks only secret config values there.
 */
const SAFE_VERBOSITY = 6;

function kubeconfigWith(server: string, caPem: string, token: string): string {
    return [
        "apiVersion: v1", "kind: Config",
        "clusters:", "- name: c", "  cluster:", `    server: ${server}`, `    certificate-authority-data: ${Buffer.from(caPem).toString("base64")}`,
        "users:", "- name: u", "  user:", `    token: ${token}`,
        "contexts:", "- name: c", "  context:", "    cluster: c", "    user: u",
        "current-context: c", "",
    ].join("\n");
}

/** A kubeconfig file for a ServiceAccount of the cluster (a TokenRequest token, no Secret). */
async function serviceAccountKubeconfig(cluster: Cluster, namespace: string, name: string): Promise<string> {
    const token = (await cluster.kubectl(["create", "token", name, "-n", namespace, "--duration=1h"])).stdout.trim();
    const file = path.join(cluster.dir, `${namespace}-${name}.kubeconfig`);
    fs.writeFileSync(file, kubeconfigWith(cluster.server, cluster.caPem, token), { mode: 0o600 });
    return file;
}

function closedPort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const srv = net.createServer().on("error", reject).listen(0, "127.0.0.1", () => {
            const port = (srv.address() as net.AddressInfo).port;
            srv.close(() => resolve(port));
        });
    });
}

/** `kubectl.kubernetes.io/restartedAt` of every Deployment, by namespace/name. */
async function restartMarks(cluster: Cluster): Promise<Record<string, string | undefined>> {
    const list = JSON.parse((await cluster.kubectl(["get", "deployments", "-A", "-o", "json"])).stdout);
    return Object.fromEntries(list.items.map((d: any) => [
        `${d.metadata.namespace}/${d.metadata.name}`,
        d.spec.template.metadata?.annotations?.["kubectl.kubernetes.io/restartedAt"],
    ]));
}

/** name -> resourceVersion of every Secret in the namespace. */
async function secretsIn(cluster: Cluster, namespace: string): Promise<Record<string, string>> {
    const list = JSON.parse((await cluster.kubectl(["get", "secrets", "-n", namespace, "-o", "json"])).stdout);
    return Object.fromEntries(list.items.map((s: any) => [s.metadata.name, s.metadata.resourceVersion]));
}

interface Needle {
    text: string;
    /** Which key and which fragment, for the report (never the fragment itself). */
    label: string;
}

/**
 * Substrings that betray a private key: the base64 lines of its PEM body, and windows of the
 * base64 of the whole PEM (a Secret's `data` value, as in a Kubernetes request or response).
 * Fragments that also occur in public material (`publicOnly`: a private key's encodings embed its
 * public key, e.g. OpenSSH's header or SEC1's trailing point, which the state keeps as
 * publicKeyPem / publicKeyOpenssh) prove nothing and are left out.
 */
function keyNeedles(keyPem: string, key: string, publicOnly: string): Needle[] {
    const kind = /BEGIN ([A-Z ]*)PRIVATE/.exec(keyPem)?.[1].trim() || "PKCS#8";
    const lines = keyPem.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("-----") && l.length >= 16);
    const b64 = Buffer.from(keyPem).toString("base64");
    const needles: Needle[] = lines.map((text, i) => ({ text, label: `${key} (${kind}) PEM line ${i + 1}` }));
    for (let i = 0; i + 40 <= b64.length; i += 40) {
        needles.push({ text: b64.slice(i, i + 40), label: `${key} (${kind}) base64 of the PEM, offset ${i}` });
    }
    return needles.filter((n) => !publicOnly.includes(n.text));
}

/**
 * Every private-key PEM block (PKCS#1/SEC1, PKCS#8, OpenSSH) in a decrypted state export, with
 * its line ends restored (secret values are JSON inside JSON there: `\\n` escaped once or twice).
 */
function privateKeysIn(text: string): string[] {
    const dashes = "-".repeat(5);
    const re = new RegExp(`${dashes}BEGIN ([A-Z ]*)${PRIVATE_KEY}${dashes}[\\s\\S]*?${dashes}END \\1${PRIVATE_KEY}${dashes}`, "g");
    return [...new Set((text.match(re) ?? []).map((k) => k.replace(/\\+n/g, "\n")))];
}

/** Pulumi's marker of a secret value in a state export. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

/** A decrypted state export with every secret value taken out: what is left is public. */
function withoutSecretValues(value: unknown): unknown {
    if (Array.isArray(value)) {
        return value.map(withoutSecretValues);
    }
    if (value !== null && typeof value === "object") {
        if (SECRET_SIG in value) {
            return null;
        }
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withoutSecretValues(v)]));
    }
    return value;
}

/** Where (by name) any needle, or the PEM marker, occurs. */
function leaks(haystacks: Record<string, string>, needles: Needle[]): string[] {
    return Object.entries(haystacks).flatMap(([where, text]) => {
        const found = needles.filter((n) => text.includes(n.text)).map((n) => n.label);
        return [
            ...(found.length > 0 ? [`${where}: ${found.length} fragment(s) of key material: ${found.slice(0, 5).join("; ")}`] : []),
            ...(text.includes(PRIVATE_KEY) ? [`${where}: a ${PRIVATE_KEY} marker`] : []),
        ];
    });
}

interface BadCase {
    name: string;
    /** Stack config (istio-ca: keys), over the base. */
    config?: Record<string, string>;
    /** Secret config, over the base. */
    secrets?: Record<string, string>;
    trust?: { keyVersion: number; trustedKeyVersions: number[] };
    /** Each must match what `preview` and `up` print. */
    expect: RegExp[];
    /** Whether the case reaches the API server (the catalogue counts them). */
    api: boolean;
    /** Refused by the CLI against Pulumi.yaml before the program runs (no diagnostic event). */
    checkedByCli?: boolean;
    setup?: () => Promise<void>;
    teardown?: () => Promise<void>;
}

test("bad input refused before anything is applied; least privilege; no private key in logs, process args or state", { timeout: 15 * 60_000 }, async (t) => {
    // Refusals leave rejected promises behind in an inline program's process: see plan/refusal.ts.
    tolerateRefusalEchoes();
    const cluster = await startCluster({ log: (m) => t.diagnostic(m) });
    let istio: RealIstio | undefined;
    const backendDir = fs.mkdtempSync(path.join(os.tmpdir(), "istio-ca-backend-"));
    const stacks: TestStack[] = [];
    try {
        await seedMesh(cluster);
        await cluster.apply(fs.readFileSync(RBAC_YAML, "utf8"));
        await cluster.apply(fs.readFileSync(FIRST_CACERTS_YAML, "utf8"));
        await cluster.kubectl(["create", "serviceaccount", "nobody", "-n", "default"]);
        const deployer = await serviceAccountKubeconfig(cluster, "istio-system", "istio-ca-deployer");
        const nobody = await serviceAccountKubeconfig(cluster, "default", "nobody");
        const unreachable = path.join(cluster.dir, "unreachable.kubeconfig");
        const port = await closedPort();
        fs.writeFileSync(unreachable, kubeconfigWith(`https://127.0.0.1:${port}`, cluster.caPem, cluster.token), { mode: 0o600 });
        const rejected = path.join(cluster.dir, "rejected.kubeconfig");
        fs.writeFileSync(rejected, kubeconfigWith(cluster.server, cluster.caPem, "not-a-valid-token"), { mode: 0o600 });
        const base = {
            clusterName: "e2e",
            kubeconfig: cluster.kubeconfig,
            kubectlPath: path.join(cluster.binDir, "kubectl"),
            keyAlgorithm: "ECDSA",
            verifyProxyStatus: "false",
            verifyWorkloadCertificates: "false",
            rootCertTimeoutSeconds: "60",
            rolloutTimeoutSeconds: "120",
        };

        await t.test("bad input: each refusal names the key or object, prints no stack trace, applies nothing", async () => {
            const incomplete = (): Promise<void> => cluster.apply([{
                apiVersion: "v1", kind: "Secret", type: "Opaque",
                metadata: { name: "cacerts", namespace: "istio-system" },
                stringData: { "root-cert.pem": cluster.caPem },
            }]);
            const cases: BadCase[] = [
                { name: "kube context that does not exist", api: true, config: { kubeContext: "nope" },
                    expect: [/kube context nope \(istio-ca:kubeContext\) is not defined in the kubeconfig/] },
                { name: "kubeconfig file that does not exist", api: true, config: { kubeconfig: "/nonexistent/istio-ca/kubeconfig" },
                    expect: [/kubeconfig file \/nonexistent\/istio-ca\/kubeconfig does not exist \(istio-ca:kubeconfig/] },
                { name: "API server unreachable (a closed port)", api: true, config: { kubeconfig: unreachable },
                    expect: [/cannot reach the Kubernetes API of the current kube context of \S+unreachable\.kubeconfig \(istio-ca:kubeconfig \/ istio-ca:kubeContext\)/, new RegExp(`127\\.0\\.0\\.1:${port} was refused`)] },
                { name: "credentials the API server rejects", api: true, config: { kubeconfig: rejected },
                    expect: [/the Kubernetes API of .*rejected\.kubeconfig rejected the credentials \(istio-ca:kubeconfig \/ istio-ca:kubeContext\)/] },
                { name: "an identity without the role of deploy/rbac.yaml", api: true, config: { kubeconfig: nobody },
                    expect: [/the identity of .*nobody\.kubeconfig may not read namespace istio-system: grant it deploy\/rbac\.yaml/, /system:serviceaccount:default:nobody/] },
                { name: "Istio namespace that does not exist", api: true, config: { istioNamespace: "istio-missing" },
                    expect: [/namespace istio-missing \(istio-ca:istioNamespace\) does not exist in the current kube context of /] },
                { name: "no istiod Deployment matches istiodSelector", api: true, config: { istiodSelector: "app=istiod-canary" },
                    expect: [/no istiod Deployment matches app=istiod-canary \(istio-ca:istiodSelector\) in namespace istio-system/] },
                { name: "an Istio namespace without istiod", api: true, config: { istioNamespace: "plain" },
                    expect: [/no istiod Deployment matches app=istiod \(istio-ca:istiodSelector\) in namespace plain/] },
                { name: "kubectlPath that does not exist", api: false, config: { kubectlPath: "/nonexistent/kubectl" },
                    expect: [/kubectl not found: looked for "\/nonexistent\/kubectl"; put kubectl on PATH or set istio-ca:kubectlPath/] },
                { name: "a multi-root bundle for an istiod without ISTIO_MULTIROOT_MESH", api: true, trust: { keyVersion: 1, trustedKeyVersions: [1, 2] },
                    expect: [/istiod Deployment\(s\) istiod in istio-system lack ISTIO_MULTIROOT_MESH=true/] },
                { name: "an existing cacerts that is not a complete Istio CA", api: true, setup: incomplete,
                    teardown: async () => { await cluster.kubectl(["delete", "secret", "cacerts", "-n", "istio-system"]); },
                    expect: [/Secret istio-system\/cacerts exists but is not a complete Istio CA/, /missing ca-cert\.pem, ca-key\.pem, cert-chain\.pem/] },
                { name: "a value out of range", api: false, config: { restartConcurrency: "0" },
                    expect: [/istio-ca:restartConcurrency must be between 1 and 200/] },
                { name: "an intermediate that would outlive its root", api: false, config: { rootValidityDays: "100", intermediateValidityDays: "200" },
                    expect: [/istio-ca:intermediateValidityDays \(200\) must not exceed rootValidityDays \(100\)/] },
                { name: "a value of the wrong type (checked by the CLI against Pulumi.yaml)", api: false, checkedByCli: true, config: { restartConcurrency: "many" },
                    expect: [/restartConcurrency' must be of type 'integer'/] },
                { name: "two root sources at once", api: false, config: { rootStack: "organization/istio-ca/root", rootCertPem: "x" }, secrets: { rootKeyPem: "y" },
                    expect: [/istio-ca:rootStack and istio-ca:rootCertPem\/rootKeyPem are two different root sources/] },
                { name: "an external root that is not PEM", api: false, config: { rootCertPem: "not a certificate" }, secrets: { rootKeyPem: "not a key" },
                    expect: [/istio-ca:rootCertPem \/ istio-ca:rootKeyPem: (the )?root certificate is not PEM/] },
            ];
            const marksBefore = await restartMarks(cluster);
            for (const [i, c] of cases.entries()) {
                await c.setup?.();
                const secretsBefore = await secretsIn(cluster, "istio-system");
                const ts = await createTestStack(`bad${i}`, program, { ...base, ...c.config }, { backendDir });
                stacks.push(ts); // disposed here, or by the finally below if the case fails
                for (const [key, value] of Object.entries(c.secrets ?? {})) {
                    await ts.stack.setConfig(`istio-ca:${key}`, { value, secret: true });
                }
                if (c.trust) {
                    await applyTrustState(ts.stack, { ...c.trust, intermediateVersion: 1 });
                }
                for (const op of ["preview", "up"] as const) {
                    let printed = "";
                    const onOutput = (line: string): void => { printed += line; };
                    const errors: string[] = [];
                    const onEvent = (e: EngineEvent): void => {
                        if (e.diagnosticEvent?.severity === "error") {
                            errors.push(e.diagnosticEvent.message);
                        }
                    };
                    let message = "";
                    await assert.rejects(op === "preview" ? ts.stack.preview({ onOutput, onEvent }) : ts.stack.up({ onOutput, onEvent }), (err: Error) => {
                        message = err.message;
                        return true;
                    }, `${c.name}: ${op} must fail`);
                    const all = `${message}\n${printed}`;
                    for (const re of c.expect) {
                        assert.match(all, re, `${c.name}: ${op} names the key or object`);
                    }
                    assert.doesNotMatch(all, STACK_FRAME, `${c.name}: ${op} prints no JavaScript stack trace`);
                    assert.doesNotMatch(all, /Unhandled exception/, `${c.name}: ${op} is reported as a refusal`);
                    // One problem, one error: the engine's report of the thrown refusal, no echo of it.
                    assert.equal(errors.length, c.checkedByCli ? 0 : 1, `${c.name}: ${op} reports ${errors.length} error diagnostics: ${JSON.stringify(errors)}`);
                    assert.doesNotMatch(printed, /\b\d+ errors\b/, `${c.name}: ${op} counts one error`);
                }
                const state = await ts.stack.exportStack();
                const registered = ((state.deployment as { resources?: { type: string; urn: string }[] }).resources ?? [])
                    .filter((r) => !r.type.startsWith("pulumi:"));
                assert.deepEqual(registered.map((r) => r.urn), [], `${c.name}: no resource in the state`);
                assert.deepEqual(await secretsIn(cluster, "istio-system"), secretsBefore, `${c.name}: no Secret created or changed`);
                await c.teardown?.();
                await stacks.pop()!.dispose();
                t.diagnostic(`refused as expected: ${c.name}`);
            }
            assert.equal((await secretsIn(cluster, "istio-system")).cacerts, undefined, "no cacerts was created");
            assert.equal((await secretsIn(cluster, "plain")).cacerts, undefined);
            assert.deepEqual(await restartMarks(cluster), marksBefore, "no Deployment was restarted");
            const onApi = cases.filter((c) => c.api).length;
            t.diagnostic(`${cases.length} bad-input cases through the engine, ${onApi} against the API server`);
            assert.ok(cases.length >= 15 && onApi >= 6);
        });

        await t.test(`least privilege and secrets: up, an intermediate rotation, root phases 1-2 as deploy/rbac.yaml's ServiceAccount, --verbose ${SAFE_VERBOSITY} --logflow --debug`, async () => {
            const ts = await createTestStack("leastpriv", program, { ...base, kubeconfig: deployer, ...SEED_SWAP }, { backendDir });
            stacks.push(ts);
            // Without the rendered bindings, preview says where restarts would be refused, and what to run.
            let unbound = "";
            await ts.stack.preview({ onOutput: (line) => { unbound += line; } });
            assert.match(unbound, /may not restart Deployments \(patch\) in namespace\(s\) bookinfo, canary, payments, which this stack restarts/);
            assert.ok(unbound.includes(`npm run rbac -- --stack ${ts.name} | kubectl apply -f -`), "the warning names the command");
            // The restart rights, rendered for this stack's namespaces as a person would (npm run rbac), as the deployer.
            const rendered = execFileSync("node", [path.join(PROJECT_ROOT, "dist", "cli", "rbac.js"), "--stack", ts.name], {
                cwd: PROJECT_ROOT, encoding: "utf8", env: { ...process.env, ...ts.envVars },
            });
            // Each document's first `namespace:` is its metadata's (the subject's comes after).
            const boundIn = rendered.split(/^---$/m).slice(1).map((doc) => /^ {2}namespace: (\S+)$/m.exec(doc)?.[1]);
            assert.deepEqual(boundIn, ["bookinfo", "canary", "payments"], "bindings for the labelled namespaces only (not plain, not istio-system)");
            assert.doesNotMatch(rendered, /portforward/, "no proxy-check bindings: the checks are off in this stack");
            await cluster.apply(rendered);

            // What the identity may not do (SelfSubjectAccessReview, as the identity itself).
            const canI = async (...args: string[]): Promise<string> =>
                (await cluster.kubectl(["--kubeconfig", deployer, "auth", "can-i", ...args], { allowFailure: true })).stdout.trim();
            for (const forbidden of [
                ["delete", "secret/cacerts", "-n", "istio-system"],
                ["list", "secrets", "-n", "istio-system"],
                ["get", "secret/istio-reader-token", "-n", "istio-system"],
                ["get", "secrets", "-n", "bookinfo"],
                ["update", "secret/cacerts", "-n", "istio-system"],
                ["create", "secrets", "-n", "bookinfo"],
                ["delete", "deployments", "-n", "bookinfo"],
                ["create", "deployments", "-n", "bookinfo"],
                ["list", "configmaps", "-A"],
                ["get", "configmap/istio-ca-root-cert", "-n", "bookinfo"],
                ["create", "pods/exec", "-n", "bookinfo"],
                ["patch", "namespaces"],
                // Restarts only where rendered (and istiod's namespace); proxy checks not granted.
                ["patch", "deployments", "-n", "plain"],
                ["patch", "deployments", "-n", "kube-system"],
                ["patch", "deployments", "--all-namespaces"],
                ["create", "pods/portforward", "-n", "bookinfo"],
                ["create", "pods/portforward", "-n", "istio-system"],
                ["create", "serviceaccounts/token", "-n", "istio-system"],
                ["list", "pods", "-A"],
                // Backups: their namespace only.
                ["update", "secrets", "-n", BACKUP_NAMESPACE],
                ["delete", "secrets", "-n", "istio-system"],
            ]) {
                assert.equal(await canI(...forbidden), "no", `the deployer may not: ${forbidden.join(" ")}`);
            }
            assert.equal(await canI("patch", "secret/cacerts", "-n", "istio-system"), "yes");
            for (const ns of ["bookinfo", "payments", "canary", "istio-system"]) {
                assert.equal(await canI("patch", "deployments", "-n", ns), "yes", `restarts in ${ns}`);
            }
            for (const verb of ["create", "get", "list", "delete"]) {
                assert.equal(await canI(verb, "secrets", "-n", BACKUP_NAMESPACE), "yes", `${verb} backups in ${BACKUP_NAMESPACE}`);
            }
            assert.equal(await canI("create", "secrets", "-n", "istio-system"), "yes", "deploy/rbac-first-cacerts.yaml, for the first up");
            const denied = await cluster.kubectl(["--kubeconfig", deployer, "get", "secrets", "-n", "kube-system"], { allowFailure: true });
            assert.notEqual(denied.code, 0);
            assert.match(denied.stderr, /Forbidden/);

            // Real istiod from here on (it publishes the bundle the wait step waits for); it starts on
            // its own CA, so the first up is the seed's switch, asked for below.
            istio = await RealIstio.start(cluster, { withoutAgents: true, log: (m) => t.diagnostic(m) });
            const sampler = new ProcessSampler();
            const logs: string[] = [];
            const verbose = {
                logVerbosity: SAFE_VERBOSITY,
                logFlow: true, // the providers log at the same level
                logToStdErr: true, // the engine's log, on stderr instead of a file
                debug: true, // debug diagnostics of the program and the runtime
                onOutput: (line: string) => logs.push(line),
                onError: (line: string) => logs.push(line),
            };
            sampler.start();
            const stateKeys = new Set<string>();
            /** The decrypted state after each `up`: a rotation deletes the old intermediate's public values too. */
            const states: unknown[] = [];
            const cacertsKeys: string[] = [];
            const cacertsKey = async (): Promise<string> => {
                const secret = JSON.parse((await cluster.kubectl(["get", "secret", "cacerts", "-n", "istio-system", "-o", "json"])).stdout);
                return Buffer.from(secret.data["ca-key.pem"], "base64").toString("utf8");
            };
            try {
                await ts.stack.preview(verbose);
                await ts.stack.up(verbose);
                cacertsKeys.push(await cacertsKey());
                states.push(await ts.stack.exportStack());
                // cacerts exists now: every later up changes it in place, without Secret create in istio-system.
                await cluster.kubectl(["delete", "-f", FIRST_CACERTS_YAML]);
                assert.equal(await canI("create", "secrets", "-n", "istio-system"), "no", "Secret create in istio-system is taken away after the first up");
                await ts.stack.setConfig("istio-ca:intermediateVersion", { value: "2" });
                await ts.stack.preview(verbose);
                await ts.stack.up(verbose);
                cacertsKeys.push(await cacertsKey());
                states.push(await ts.stack.exportStack());
                // Root rotation phases 1 (trust root 2) and 2 (sign with it): the multi-root
                // preflight (istiod's env, the mesh ConfigMap), and in phase 2 a backup name that
                // exists already (same ca-cert.pem as phase 1), which this identity may not read.
                await cluster.apply([{
                    apiVersion: "v1", kind: "ConfigMap", metadata: { name: "istio", namespace: "istio-system" },
                    data: { mesh: "defaultConfig:\n  proxyMetadata:\n    PROXY_CONFIG_XDS_AGENT: \"true\"\n" },
                }]);
                await cluster.kubectl(["set", "env", "deployment/istiod", "-n", "istio-system", "ISTIO_MULTIROOT_MESH=true"]);
                await cluster.kubectl(["rollout", "status", "deployment/istiod", "-n", "istio-system", "--timeout=120s"]);
                for (const keyVersion of [1, 2]) {
                    await applyTrustState(ts.stack, { keyVersion, trustedKeyVersions: [1, 2], intermediateVersion: 2 });
                    await ts.stack.preview(verbose);
                    await ts.stack.up(verbose);
                    cacertsKeys.push(await cacertsKey());
                    states.push(await ts.stack.exportStack());
                }
            } finally {
                await sampler.stop();
            }
            const roots = (await ts.stack.outputs()).trustedRoots?.value as Record<string, unknown>;
            assert.deepEqual(Object.keys(roots).sort(), ["v1", "v2"], "phase 2 reached: both roots trusted");
            assert.equal(new Set(cacertsKeys).size, 3, "cacerts got a new key from the intermediate rotation and from phase 2, none from phase 1");
            const backups = Object.keys(await secretsIn(cluster, BACKUP_NAMESPACE)).filter((n) => n.startsWith("cacerts-backup-"));
            assert.equal(backups.length, 2, `a backup before each new signing certificate (${backups.join(", ")})`);
            assert.deepEqual(Object.keys(await secretsIn(cluster, "istio-system")).filter((n) => n.startsWith("cacerts-backup-")), [], "no backup in the Istio namespace");
            // The decrypted state holds every key of the stack (the root's too), in every encoding.
            states.forEach((s) => privateKeysIn(JSON.stringify(s)).forEach((k) => stateKeys.add(k)));
            assert.ok(stateKeys.size >= 5, `the state's keys were found: both roots and the intermediates (${stateKeys.size} PEM blocks)`);
            const decrypted = JSON.stringify(states);
            // The state's values that are not secrets: public keys, certificates, CSRs, hashes.
            const publicOnly = JSON.stringify(withoutSecretValues(states));
            assert.ok(!publicOnly.includes(PRIVATE_KEY), "no private key is kept as a plain (non-secret) value");
            const keyList = [...new Set([...cacertsKeys, ...stateKeys])];
            const perKey = keyList.map((k, i) => keyNeedles(k, `key ${i + 1}`, publicOnly));
            perKey.forEach((n, i) => {
                assert.ok(n.length >= 3, `key ${i + 1}: its secret part is in no plain value of the state (${n.length} fragments left)`);
                assert.ok(n.some((x) => x.label.endsWith("base64 of the PEM, offset 0")), `key ${i + 1}: its base64 form is in no plain value of the state`);
            });
            const needles = perKey.flat();

            const log = logs.join("");
            assert.ok(log.length > 100_000, `verbose logs were captured (${log.length} characters)`);
            assert.match(log, /"v":6/, "the engine logged at level 6");
            assert.doesNotMatch(log, /may not restart Deployments/, "with the rendered bindings, no warning about restart rights");
            assert.ok(sampler.samples > 50, `processes were sampled (${sampler.samples} times)`);
            assert.ok([...sampler.seen].some((s) => s.includes("dist/lib/cli/main.js")), "the step commands were sampled");
            assert.ok([...sampler.seen].some((s) => s.includes("pulumi-resource-kubernetes")), "the providers were sampled");

            const exported = execFileSync("pulumi", ["stack", "export", "--stack", ts.name], {
                cwd: PROJECT_ROOT, encoding: "utf8", maxBuffer: 64 << 20, env: { ...process.env, ...ts.envVars },
            });
            const backendFiles = execFileSync("find", [backendDir, "-type", "f"], { encoding: "utf8" }).trim().split("\n");
            const haystacks: Record<string, string> = {
                [`engine, provider and program logs (--verbose ${SAFE_VERBOSITY} --logflow --logtostderr --debug)`]: log,
                "command lines and environments of all processes": [...sampler.seen].join("\n"),
                "pulumi stack export": exported,
                "stack outputs": JSON.stringify(await ts.stack.outputs()),
                ...Object.fromEntries(backendFiles.map((f) => [f, fs.readFileSync(f, "utf8")])),
            };
            // The search finds key material where it is (the decrypted state), so an empty result means something.
            assert.ok(leaks({ decrypted }, needles).length > 0);
            assert.deepEqual(leaks(haystacks, needles), [], "no private key in plaintext, PEM body or base64 form");
            assert.match(log, /RegisterResource RPC finished: resource:cacerts-secret\[kubernetes:core\/v1:Secret\]; err: null, resp: \[withheld by istio-ca/,
                "the runtime's debug lines are kept, without the responses that quote secret outputs (program/runtimeLog.ts)");
            assert.match(exported, /"ciphertext"/, "key material is kept as ciphertext");

            // Pruning as this identity (list and delete in the backup namespace): fewer backups kept
            // re-runs the backup step alone, which deletes the older one.
            await ts.stack.setConfig("istio-ca:keepBackups", { value: "1" });
            const pruneUp = await ts.stack.up();
            const changes = pruneUp.summary.resourceChanges ?? {};
            assert.deepEqual(Object.keys(changes).filter((k) => !["same", "read", "update"].includes(k)), [], JSON.stringify(changes));
            assert.equal(changes.update, 1, "only the backup step re-runs");
            const left = Object.keys(await secretsIn(cluster, BACKUP_NAMESPACE)).filter((n) => n.startsWith("cacerts-backup-"));
            assert.equal(left.length, 1, `istio-ca:keepBackups 1 leaves one backup (${left.join(", ")})`);
        });
    } finally {
        await istio?.stop();
        for (const ts of stacks) {
            await ts.dispose();
        }
        await cluster.stop();
        fs.rmSync(backendDir, { recursive: true, force: true });
    }
});
