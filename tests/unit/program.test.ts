// The program as a whole, with Pulumi mocks: what it registers, in which order, with which
// options, and that no output carries key material.
import { test } from "node:test";
import assert from "node:assert/strict";
import { clusterFacts, promiseOf, setupMocks } from "../support/mocks";
import type { RunSettings } from "../../steps/stepEnv";

const world = setupMocks(
    { clusterName: "east", restartConcurrency: "7" },
    { "restart-workloads": 'restarting bookinfo\n{"restartedNamespaces":{"count":2,"first":["bookinfo","payments"],"list":".istio-ca/p.s/restarted-namespaces.txt"}}\n' },
);
// Imported after the mocks, as a real run would load it.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { loadConfig } = require("../../plan/config") as typeof import("../../plan/config");
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { istioCa } = require("../../program/istioCa") as typeof import("../../program/istioCa");
let inspections = 0;
const savedSettings: { stackDir: string; settings: RunSettings }[] = [];
const program = world.run(() => istioCa(loadConfig(), {
    saveStepSettings: (stackDir, settings) => savedSettings.push({ stackDir, settings }),
    previousOutputs: async () => undefined,
    readRootStack: async () => undefined,
    // istiod lacks ISTIO_MULTIROOT_MESH: a single-root deployment must not need it.
    inspectCluster: async () => { inspections++; return clusterFacts({ istiodsWithoutMultiRoot: ["istiod"] }); },
}));

const TLS = {
    key: "tls:index/privateKey:PrivateKey",
    selfSigned: "tls:index/selfSignedCert:SelfSignedCert",
    csr: "tls:index/certRequest:CertRequest",
    signed: "tls:index/locallySignedCert:LocallySignedCert",
};

let outputs: Awaited<typeof program>;
test.before(async () => {
    outputs = await program;
});

test("the root is self-signed with Istio's root profile", async () => {
    const root = world.one(TLS.selfSigned, "root-v1-cert");
    assert.deepEqual(await promiseOf(root.inputs.subject), { organization: "Istio", commonName: "Root CA" });
    assert.equal(root.inputs.isCaCertificate, true);
    assert.equal(root.inputs.maxPathLength, 1, "pathlen:1 on the root keeps anything below the intermediate from being a CA");
    assert.ok(root.inputs.allowedUses.includes("cert_signing"));
    assert.equal(root.inputs.validityPeriodHours, 3650 * 24);
});

test("the intermediate carries O=Istio, CN=Intermediate CA, L=<cluster> and istiod's SAN, signed by the root", async () => {
    const csr = world.one(TLS.csr, "intermediate-csr");
    assert.deepEqual(await promiseOf(csr.inputs.subject), { organization: "Istio", commonName: "Intermediate CA", locality: "east" });
    assert.deepEqual(await promiseOf(csr.inputs.dnsNames), ["istiod.istio-system.svc"]);
    const signed = world.one(TLS.signed, "intermediate-cert");
    assert.equal(signed.inputs.isCaCertificate, true);
    assert.ok(signed.inputs.allowedUses.includes("cert_signing"));
    assert.equal(await promiseOf(signed.inputs.caCertPem), world.roots.get("root-v1")!.certPem);
    assert.equal(signed.inputs.validityPeriodHours, 1825 * 24);
});

test("keys are RSA 4096 by default and are replaced by generation", async () => {
    const keys = world.byType(TLS.key);
    assert.deepEqual(keys.map((k) => k.name).sort(), ["intermediate-key", "root-v1-key"]);
    for (const key of keys) {
        assert.equal(key.inputs.algorithm, "RSA");
        assert.equal(key.inputs.rsaBits, 4096);
    }
    assert.equal(world.one(TLS.key, "root-v1-key").opts.replacementTrigger, "root-v1");
    assert.equal(world.one(TLS.key, "intermediate-key").opts.replacementTrigger, "root-v1/intermediate-v1");
});

test("the provider mutates Secrets in place and cacerts has exactly Istio's four keys", async () => {
    const provider = world.one("pulumi:providers:kubernetes");
    assert.ok([true, "true"].includes(await promiseOf(provider.inputs.enableSecretMutable)));
    const secret = world.one("kubernetes:core/v1:Secret");
    const metadata = await promiseOf(secret.inputs.metadata);
    assert.equal(metadata.name, "cacerts");
    assert.equal(metadata.namespace, "istio-system");
    const data = await promiseOf(secret.inputs.stringData) as Record<string, string>;
    assert.deepEqual(Object.keys(data).sort(), ["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"]);
    assert.equal(secret.opts.retainOnDelete, true, "destroy must not delete cacerts");
    const root = world.roots.get("root-v1")!.certPem.trim();
    assert.equal(data["root-cert.pem"].trim(), root);
    assert.ok(data["cert-chain.pem"].trim().endsWith(root), "cert-chain.pem ends with the root");
    assert.ok(data["cert-chain.pem"].startsWith(data["ca-cert.pem"].trim()), "cert-chain.pem starts with the intermediate");
    assert.equal(data["ca-key.pem"], "mock private key of intermediate-key");
});

test("the cluster is read once; a single-root bundle does not need multi-root istiod", () => {
    assert.equal(inspections, 1);
});

test("the steps run in order, each after the previous, triggered by hashes of the public parts", async () => {
    // The backup step runs before cacerts changes (tests/unit/programTakeover.test.ts).
    const commands = world.byType("command:local:Command").filter((c) => c.name.startsWith("mesh-"));
    assert.deepEqual(commands.map((c) => c.name), [
        "mesh-restart-istiod", "mesh-wait-root-cert", "mesh-restart-workloads", "mesh-verify-proxies", "mesh-verify-workload-certs",
    ]);
    const secret = world.one("istio-ca:k8s:CacertsSecret").resource as unknown as { trustBundleHash: any; signerHash: any };
    const bundle = await promiseOf<string>(secret.trustBundleHash);
    const signer = await promiseOf<string>(secret.signerHash);
    assert.match(bundle, /^[0-9a-f]{64}$/);
    assert.notEqual(bundle, signer);
    const expectedTriggers: Record<string, string[]> = {
        // Workloads restart on a new intermediate by default, so istiod restarts first (it would
        // otherwise sign with the old intermediate until the kubelet syncs its mounted Secret).
        "restart-istiod": [bundle, signer],
        "wait-root-cert": [bundle],
        "restart-workloads": [bundle, signer],
        "verify-proxies": [bundle, signer],
        "verify-workload-certs": [bundle, signer],
    };
    for (const [i, cmd] of commands.entries()) {
        const step = cmd.name.replace("mesh-", "");
        assert.deepEqual(await promiseOf(cmd.inputs.triggers), expectedTriggers[step], step);
        assert.equal(cmd.inputs.create, `node dist/lib/cli/main.js ${step}`);
        const dependsOn = cmd.opts.dependsOn as unknown[];
        const expected = i === 0 ? world.one("istio-ca:k8s:CacertsSecret").resource : commands[i - 1].resource;
        assert.deepEqual(dependsOn, [expected]);
        assert.equal(cmd.inputs.update, `node dist/lib/cli/main.js unchanged ${step}`, "an input change that is no trigger runs nothing");
        const env = await promiseOf(cmd.inputs.environment) as Record<string, string>;
        assert.equal(env.ISTIO_CA_ISTIO_NAMESPACE, "istio-system");
        assert.equal(env.ISTIO_CA_STACK_DIR, ".istio-ca/istio-ca.test");
        assert.equal(env.ISTIO_CA_CONCURRENCY, undefined, "how to run is not an input: editing it re-runs nothing");
        assert.doesNotMatch(JSON.stringify(env), /PRIVATE KEY|mock private key/);
        assert.equal(env.ISTIO_CA_SIGNING_CERT_PEM !== undefined, step === "verify-workload-certs");
        assert.equal(await promiseOf(cmd.inputs.addPreviousOutputInEnv), false, `${step}: no previous output in the environment`);
    }
    // ...it is in the settings file the steps read when they run.
    assert.deepEqual(savedSettings.map((s) => [s.stackDir, s.settings.concurrency, s.settings.kubectl]), [[".istio-ca/istio-ca.test", 7, "kubectl"]]);
});

test("outputs are readable and hold no key material", async () => {
    const resolved = {
        signingRoot: await promiseOf(outputs.signingRoot),
        trustedRoots: await promiseOf(outputs.trustedRoots),
        intermediate: await promiseOf(outputs.intermediate),
        restartedNamespaces: await promiseOf(outputs.restartedNamespaces),
    };
    assert.match(resolved.signingRoot.sha256Fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    assert.ok(resolved.signingRoot.daysLeft > 3000);
    assert.deepEqual(Object.keys(resolved.trustedRoots), ["v1"]);
    assert.notEqual(resolved.intermediate.sha256Fingerprint, resolved.signingRoot.sha256Fingerprint);
    assert.deepEqual(resolved.restartedNamespaces, { count: 2, first: ["bookinfo", "payments"], list: ".istio-ca/p.s/restarted-namespaces.txt" });
    assert.doesNotMatch(JSON.stringify(resolved), /PRIVATE KEY|mock private key/);
});
