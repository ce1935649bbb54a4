import { test } from "node:test";
import assert from "node:assert/strict";
import { parseConfig } from "../../plan/config";
import { publicContentHash } from "../../common/cacertsFiles";
import { readStepSettings, RunSettings, runSettings, stepEnvironment, StepSettings } from "../../steps/stepEnv";
import { meshNamespaces } from "../../steps/meshNamespaces";
import { restartWorkloads } from "../../steps/restartWorkloads";
import { StepFailure } from "../../steps/stepContext";
import { waitRootCert } from "../../steps/waitRootCert";
import { UnreachableIstiod, verifyProxies } from "../../steps/verifyProxies";
import { Kubectl, spawnCounter, ToolError } from "../../kube/kubectl";
import { fakeKubectl } from "../support/fakeKubectl";
import { certChain, trustBundle } from "../../plan/trustBundle";
import { bundleFingerprints, splitCertificates } from "../../common/pem";
import { selfSignedCa } from "../support/testCerts";

test("step settings: what cacerts is travels in the environment, how to run in the settings file", () => {
    const config = parseConfig((k) => ({
        clusterName: "c", kubeconfig: "/k/config", kubeContext: "ctx", workloadNamespaces: '["a","b"]',
        restartConcurrency: "5", rootCertTimeoutSeconds: "7", rolloutTimeoutSeconds: "9", kubectlPath: "/opt/kubectl",
    } as Record<string, string>)[k]);
    const a = selfSignedCa("Root A").certPem;
    const b = selfSignedCa("Root B").certPem;
    const expected = { signingCertPem: "S", trustBundlePem: a + b };
    const env = stepEnvironment(config, expected, "restart-workloads");
    assert.deepEqual(Object.keys(env), ["ISTIO_CA_ISTIO_NAMESPACE"], "the restart's inputs change only with cacerts' place");
    const run = JSON.parse(JSON.stringify(runSettings(config))) as RunSettings; // as the file holds it
    const s = readStepSettings(env, run);
    const wait = readStepSettings(stepEnvironment(config, expected, "wait-root-cert"), run);
    assert.equal(s.kubectl, "/opt/kubectl");
    assert.equal(s.kubeconfig, "/k/config");
    assert.equal(s.context, "ctx");
    assert.deepEqual(s.workloadNamespaces, ["a", "b"]);
    assert.deepEqual(wait.trustFingerprints, [...bundleFingerprints(a, "a"), ...bundleFingerprints(b, "b")]);
    assert.equal(s.concurrency, 5);
    assert.equal(s.rolloutTimeoutMs, 9000);
    assert.equal(wait.rootCertTimeoutMs, 7000);
    assert.equal(s.istioNamespace, "istio-system");
    const gate = readStepSettings(stepEnvironment(config, expected, "verify-workload-certs"), run);
    assert.equal(gate.signingCertPem, "S");
    assert.equal(gate.trustBundlePem, a + b);
    // No setting of how to run is in any step's environment (a change would re-run the step).
    for (const step of ["restart-istiod", "wait-root-cert", "restart-workloads", "verify-proxies", "verify-workload-certs", "backup-cacerts"] as const) {
        const stepEnv = JSON.stringify(stepEnvironment(config, expected, step));
        for (const value of ["/opt/kubectl", "/k/config", "ctx", '"5"', '"9"', '"7"']) {
            assert.ok(!stepEnv.includes(value), `${step}: ${value} is not in the environment`);
        }
    }
});

test("istioctlXdsAddress travels in the settings file (istioctl's --xds-address), in no step's environment", () => {
    const config = parseConfig((k) => ({ clusterName: "c", istioctlXdsAddress: "127.0.0.1:15012" } as Record<string, string>)[k]);
    const expected = { signingCertPem: "S", trustBundlePem: selfSignedCa("Root A").certPem };
    const run = JSON.parse(JSON.stringify(runSettings(config))) as RunSettings;
    assert.equal(readStepSettings(stepEnvironment(config, expected, "verify-proxies"), run).istioctlXdsAddress, "127.0.0.1:15012");
    for (const step of ["restart-istiod", "restart-workloads", "verify-proxies", "verify-workload-certs"] as const) {
        assert.ok(!JSON.stringify(stepEnvironment(config, expected, step)).includes("15012"), step);
    }
    const unset = parseConfig((k) => ({ clusterName: "c" } as Record<string, string>)[k]);
    assert.equal(readStepSettings(stepEnvironment(unset, expected, "verify-proxies"), runSettings(unset)).istioctlXdsAddress, undefined);
});

test("a step run outside the program says which variable is missing", () => {
    assert.throws(() => readStepSettings({}), /ISTIO_CA_ISTIO_NAMESPACE is not set/);
});

const ns = (name: string, labels: Record<string, string> = {}, phase = "Active") => ({ metadata: { name, labels }, status: { phase } });

test("mesh namespaces: injection label or revision label, never the Istio namespace or a terminating one", () => {
    const all = [
        ns("istio-system", { "istio-injection": "enabled" }),
        ns("bookinfo", { "istio-injection": "enabled" }),
        ns("canary", { "istio.io/rev": "1-24" }),
        ns("optout", { "istio-injection": "disabled", "istio.io/rev": "1-24" }),
        ns("plain"),
        ns("leaving", { "istio-injection": "enabled" }, "Terminating"),
    ];
    assert.deepEqual(meshNamespaces(all, "istio-system"), ["bookinfo", "canary"]);
    assert.deepEqual(meshNamespaces(all, "istio-system", ["plain"]), ["plain"]);
    assert.throws(() => meshNamespaces(all, "istio-system", ["plain", "ghost"]), (e: unknown) => e instanceof StepFailure && /ghost/.test(e.message));
});

test("trust bundle: one root; phase 1 A+B; phase 2 A+B+B (same set, other bytes); phase 3 B", () => {
    const a = { generation: 1, certPem: selfSignedCa("Root CA 1").certPem };
    const b = { generation: 2, certPem: selfSignedCa("Root CA 2").certPem };
    const phase0 = trustBundle([a], 1);
    const phase1 = trustBundle([b, a], 1);
    const phase2 = trustBundle([a, b], 2);
    const phase3 = trustBundle([b], 2);
    assert.equal(splitCertificates(phase0).length, 1);
    assert.deepEqual(splitCertificates(phase1).map((p) => p.trim()), [a.certPem.trim(), b.certPem.trim()]);
    assert.deepEqual(splitCertificates(phase2).map((p) => p.trim()), [a.certPem.trim(), b.certPem.trim(), b.certPem.trim()]);
    assert.deepEqual(bundleFingerprints(phase1, "p1"), bundleFingerprints(phase2, "p2"));
    assert.notEqual(phase1, phase2);
    assert.deepEqual(bundleFingerprints(phase3, "p3"), bundleFingerprints(b.certPem, "b"));
    assert.throws(() => trustBundle([a], 2), /generation 2 signs but is not among the trusted generations 1/);
});

test("cert chain is intermediate then root", () => {
    const root = selfSignedCa();
    const chain = certChain("-----BEGIN CERTIFICATE-----\nI\n-----END CERTIFICATE-----", root.certPem);
    assert.deepEqual(splitCertificates(chain).length, 2);
    assert.ok(chain.startsWith("-----BEGIN CERTIFICATE-----\nI\n"));
});

test("the content hash follows every public part and is a plain sha256", () => {
    const base = { caCertPem: "I", rootCertPem: "R", certChainPem: "C" };
    const h = publicContentHash(base);
    assert.match(h, /^[0-9a-f]{64}$/);
    assert.notEqual(publicContentHash({ ...base, caCertPem: "I2" }), h);
    assert.notEqual(publicContentHash({ ...base, rootCertPem: "R2" }), h);
    assert.notEqual(publicContentHash({ ...base, certChainPem: "C2" }), h);
    // Boundaries are explicit: moving bytes between parts changes the hash.
    assert.notEqual(publicContentHash({ caCertPem: "IR", rootCertPem: "", certChainPem: "C" }), h);
});

// --- the steps against a stand-in kubectl (tests/support/fakeKubectl.ts): which processes they
// run, with which arguments, and what they conclude from the watch.

const settingsFor = (binary: string, over: Partial<StepSettings> = {}): StepSettings => ({
    kubectl: binary, istioctl: "istioctl", istioNamespace: "istio-system", istiodSelector: "app=istiod",
    trustFingerprints: [], concurrency: 4, rootCertTimeoutMs: 10_000, rolloutTimeoutMs: 10_000,
    proxyStatusTimeoutMs: 1, workloadCertTimeoutMs: 1, pollIntervalMs: 1000, ...over,
});
const contextFor = (settings: StepSettings, lines: string[]) => ({ settings, kubectl: new Kubectl({ binary: settings.kubectl }), log: (l: string) => lines.push(l) });

const deployment = (namespace: string, name: string, observed: number) => ({
    metadata: { namespace, name, generation: 2 },
    spec: { replicas: 1 },
    status: { observedGeneration: observed, replicas: 1, updatedReplicas: 1, availableReplicas: 1 },
});

test("restart-workloads: 30 namespaces take 2 lists, `concurrency` patch processes and one watch; no GET per Deployment", async () => {
    const mesh = Array.from({ length: 30 }, (_, i) => `mesh-${String(i).padStart(2, "0")}`);
    const namespaces = [...mesh.map((n) => ns(n, { "istio-injection": "enabled" })), ns("istio-system"), ns("plain")];
    const deployments = [
        ...mesh.flatMap((n) => [deployment(n, "api", 1), deployment(n, "web", 1)]),
        deployment("istio-system", "istiod", 1), deployment("plain", "batch", 1),
    ];
    const k = fakeKubectl([
        { match: ["get", "namespaces"], stdout: JSON.stringify({ items: namespaces }) },
        { match: ["patch"], stdout: "" },
        // The watch: the listing (spec change not yet observed), then each rollout finishing.
        { match: ["get", "deployments", "--watch"], hold: true, gapMs: 1, events: [
            ...deployments.map((d) => ({ type: "ADDED", object: d })),
            ...deployments.map((d) => ({ type: "MODIFIED", object: { ...d, status: { ...d.status, observedGeneration: 2 } } })),
        ] },
        { match: ["get", "deployments", "-A"], stdout: JSON.stringify({ items: deployments }) },
    ]);
    const lines: string[] = [];
    const before = spawnCounter.kubectl;
    const result = await restartWorkloads(contextFor(settingsFor(k.binary), lines));
    assert.deepEqual(result.restartedNamespaces, mesh);
    assert.equal(result.deployments, 60);
    assert.equal(result.slowest.length, 3);

    const runs = k.runs();
    assert.equal(spawnCounter.kubectl - before, runs.length);
    const patches = runs.filter((r) => r.args[0] === "patch");
    assert.equal(runs.length, 2 + 4 + 1, runs.map((r) => r.args.join(" ")).join("\n"));
    assert.equal(patches.length, 4, "restartConcurrency bounds the patch processes");
    assert.equal(runs.filter((r) => r.args.includes("--watch")).length, 1);
    const patched = patches.flatMap((p) => (JSON.parse(p.file!) as { items: { metadata: { namespace: string; name: string } }[] }).items
        .map((i) => `${i.metadata.namespace}/${i.metadata.name}`));
    assert.deepEqual(patched.sort(), mesh.flatMap((n) => [`${n}/api`, `${n}/web`]), "every mesh Deployment once; not istiod, not plain");
    for (const n of mesh) {
        assert.equal(patches.filter((p) => p.file!.includes(`"${n}"`)).length, 1, `${n} in one batch`);
    }
    for (const p of patches) {
        assert.ok(p.args.includes("--type=strategic") && p.args.includes("--field-manager=kubectl-rollout"));
        const body = JSON.parse(p.args[p.args.indexOf("-p") + 1]) as { spec: { template: { metadata: { annotations: Record<string, string> } } } };
        assert.match(body.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    }
    assert.ok(lines.some((l) => /^rollouts: 60\/60 done in \d+s \(last: /.test(l)), lines.join("\n"));
});

test("restart-workloads: a rollout past its progress deadline fails the step at once, naming the Deployment", async () => {
    const stuck = { ...deployment("shop", "cart", 2), status: { observedGeneration: 2, replicas: 2, updatedReplicas: 1, availableReplicas: 1,
        conditions: [{ type: "Progressing", status: "False", reason: "ProgressDeadlineExceeded" }] } };
    const k = fakeKubectl([
        { match: ["get", "namespaces"], stdout: JSON.stringify({ items: [ns("shop", { "istio-injection": "enabled" })] }) },
        { match: ["patch"], stdout: "" },
        { match: ["get", "deployments", "--watch"], hold: true, events: [{ type: "ADDED", object: stuck }] },
        { match: ["get", "deployments", "-A"], stdout: JSON.stringify({ items: [deployment("shop", "cart", 1)] }) },
    ]);
    await assert.rejects(restartWorkloads(contextFor(settingsFor(k.binary), [])),
        (e: unknown) => e instanceof StepFailure && /shop\/cart: deployment "cart" exceeded its progress deadline/.test(e.message));
});

test("wait-root-cert: one watch of the ConfigMaps; the namespace list read before the verdict; stale bundles reported on timeout", async () => {
    const oldRoot = selfSignedCa("Root CA 1").certPem;
    const newRoot = selfSignedCa("Root CA 2").certPem;
    const expected = bundleFingerprints(newRoot, "new");
    const cm = (namespace: string, pem: string) => ({ metadata: { name: "istio-ca-root-cert", namespace }, data: { "root-cert.pem": pem } });
    const namespaces = JSON.stringify({ items: [ns("a"), ns("b"), ns("kube-public")] });

    const k = fakeKubectl([
        { match: ["get", "namespaces"], stdout: namespaces },
        { match: ["get", "configmaps", "--watch"], hold: true, gapMs: 30, events: [
            { type: "ADDED", object: cm("a", oldRoot) }, { type: "ADDED", object: cm("b", oldRoot) },
            { type: "MODIFIED", object: cm("a", newRoot) }, { type: "MODIFIED", object: cm("b", newRoot) },
        ] },
    ]);
    const result = await waitRootCert(contextFor(settingsFor(k.binary, { trustFingerprints: expected }), []));
    assert.equal(result.namespaces, 2, "kube-public is never written by istiod");
    const runs = k.runs();
    assert.equal(runs.filter((r) => r.args.includes("--watch")).length, 1);
    assert.deepEqual(runs.find((r) => r.args.includes("--watch"))!.args.slice(0, 5), ["get", "configmaps", "-A", "--field-selector", "metadata.name=istio-ca-root-cert"]);
    assert.equal(runs.filter((r) => r.args.includes("namespaces")).length, 2, "read at the start and again before the verdict");

    const stale = fakeKubectl([
        { match: ["get", "namespaces"], stdout: namespaces },
        { match: ["get", "configmaps", "--watch"], hold: true, events: [{ type: "ADDED", object: cm("a", newRoot) }, { type: "ADDED", object: cm("b", oldRoot) }] },
    ]);
    await assert.rejects(waitRootCert(contextFor(settingsFor(stale.binary, { trustFingerprints: expected, rootCertTimeoutMs: 600 }), [])),
        (e: unknown) => e instanceof StepFailure && /istio-ca:rootCertTimeoutSeconds/.test(e.message) && /\n  b: STALE/.test(e.message) && !/\n  a: /.test(e.message));
});

test("verify-proxies: an istiod not reachable yet (just restarted) is retried until the timeout; any other istioctl error fails at once", async () => {
    const cluster = fakeKubectl([
        { match: ["get", "namespaces"], stdout: JSON.stringify({ items: [ns("shop", { "istio-injection": "enabled" })] }) },
        { match: ["get", "pods"], stdout: JSON.stringify({ items: [{ metadata: { name: "web-1", namespace: "shop" }, spec: { containers: [{ name: "web" }, { name: "istio-proxy" }] } }] }) },
    ]);
    const row = (cells: string[]) => cells.map((c) => c.padEnd(12)).join("").trimEnd() + "\n";
    const synced = row(["NAME", "CLUSTER", "CDS", "LDS", "EDS", "RDS", "ECDS", "ISTIOD", "VERSION"]) +
        row(["web-1.shop", "Kubernetes", "SYNCED", "SYNCED", "SYNCED", "SYNCED", "IGNORED", "istiod-1", "1.30.0"]);
    const refused = "Error: ADSC: failed running rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial tcp 127.0.0.1:40653: connect: connection refused\"\n";
    const restarting = fakeKubectl([
        { match: ["proxy-status"], nth: 0, stderr: refused, code: 1 },
        { match: ["proxy-status"], stdout: synced },
    ]);
    const lines: string[] = [];
    const ctx = (istioctl: string, proxyStatusTimeoutMs: number) =>
        ({ ...contextFor(settingsFor(cluster.binary, { istioctl, proxyStatusTimeoutMs, pollIntervalMs: 10 }), lines) });
    assert.deepEqual(await verifyProxies(ctx(restarting.binary, 30_000)), { proxies: 1 });
    assert.equal(restarting.runs().length, 2, "asked again after the refused connection");
    assert.ok(lines.some((l) => /istiod not reachable yet \(code = unavailable\), retrying: .*connection refused/.test(l)), lines.join("\n"));

    const down = fakeKubectl([{ match: ["proxy-status"], stderr: refused, code: 1 }]);
    await assert.rejects(verifyProxies(ctx(down.binary, 2500)),
        (e: unknown) => e instanceof StepFailure && /istio-ca:proxyStatusTimeoutSeconds/.test(e.message) && /istiod not reachable: .*connection refused/.test(e.message));

    const misconfigured = fakeKubectl([{ match: ["proxy-status"], stderr: "Error: unknown flag: --xds-address\n", code: 1 }]);
    await assert.rejects(verifyProxies(ctx(misconfigured.binary, 30_000)), /unknown flag: --xds-address/);
    assert.equal(misconfigured.runs().length, 1, "not retried");
    const plaintextPort = fakeKubectl([{ match: ["proxy-status"], stderr: "Error: rpc error: code = Unavailable desc = connection error: desc = \"transport: authentication handshake failed: tls: first record does not look like a TLS handshake\"\n", code: 1 }]);
    await assert.rejects(verifyProxies(ctx(plaintextPort.binary, 30_000)), /first record does not look like a TLS handshake/);
    assert.equal(plaintextPort.runs().length, 1, "a TLS failure is not retried");
});

test("verify-proxies: istiod unreachable for longer than the budget fails with what to check; the error kinds istioctl prints", () => {
    let clock = 0;
    const lines: string[] = [];
    const unreachable = new UnreachableIstiod((l) => lines.push(l), 60_000, () => clock);
    const failed = (detail: string) => new ToolError(`istioctl proxy-status --kubeconfig /k/port-forward/config -i istio-system failed: ${detail}`, false, detail);
    for (const detail of [
        "Error: failure running port forward process: building port forwarded: failed retrieving: pods \"istiod-7f9\" not found in the \"istio-system\" namespace",
        "Error: pod is not running. Status=Failed",
        "Error: no running Istio pods in \"istio-system\"",
        "Error: ADSC: failed running rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial tcp 127.0.0.1:15012: connect: connection refused\"",
    ]) {
        assert.match(unreachable.summary(failed(detail)), /^istiod not reachable: /, detail);
    }
    assert.equal(lines.length, 4, "one line per kind of error");
    assert.throws(() => unreachable.summary(failed("Error: the server doesn't have a resource type \"pods\"")), /doesn't have a resource type/, "the argv's path does not make an error transient");
    clock = 61_000;
    assert.throws(() => unreachable.summary(failed("Error: no running Istio pods in \"istio-sytem\"")),
        (e: unknown) => e instanceof StepFailure && /istiod not reachable for 61s/.test(e.message) && /istio-ca:istioNamespace/.test(e.message) && /istio-ca:istioctlXdsAddress/.test(e.message));
    unreachable.reset();
    assert.match(unreachable.summary(failed("Error: no running Istio pods in \"istio-system\"")), /^istiod not reachable/, "a success in between starts the budget again");
});
