// What may re-run a step (#12 item 5): what cacerts holds, and an explicit istio-ca:restartRequest;
// never a setting of how the steps run.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseConfig } from "../../plan/config";
import { parseRestartedNamespaces, stepTriggers } from "../../components/rollout/meshRollout";
import { spawnCounter } from "../../kube/kubectl";
import { runStep } from "../../steps/stepRunner";

const configWith = (values: Record<string, string>) => parseConfig((k) => ({ clusterName: "c", ...values } as Record<string, string>)[k]);
const triggers = (values: Record<string, string>) => Object.fromEntries(stepTriggers(configWith(values), "B", "S"));

test("settings of how the steps run change no trigger", () => {
    const base = triggers({});
    assert.deepEqual(base, {
        "restart-istiod": ["B", "S"], "wait-root-cert": ["B"], "restart-workloads": ["B", "S"],
        "verify-proxies": ["B", "S"], "verify-workload-certs": ["B", "S"],
    }, "unset restartRequest adds nothing: existing stacks keep their triggers");
    assert.deepEqual(triggers({
        rolloutTimeoutSeconds: "1200", restartConcurrency: "3", kubectlPath: "/opt/kubectl", istioctlPath: "/opt/istioctl",
        kubeconfig: "/k", kubeContext: "ctx", workloadNamespaces: '["a"]', rootCertTimeoutSeconds: "9",
    }), base);
});

test("istio-ca:restartRequest re-runs the restarts and the checks after them, not the root ConfigMap wait", () => {
    const t = triggers({ restartRequest: "2026-12-01" });
    for (const step of ["restart-istiod", "restart-workloads", "verify-proxies", "verify-workload-certs"]) {
        assert.equal(t[step].at(-1), "restartRequest=2026-12-01", step);
    }
    assert.deepEqual(t["wait-root-cert"], ["B"]);
    assert.notDeepEqual(triggers({ restartRequest: "2" })["restart-workloads"], t["restart-workloads"], "a new value is a new trigger");
});

test("an input change that is no trigger runs `main.js unchanged <step>`: it restarts nothing and says so", async () => {
    const writes: string[] = [];
    const before = spawnCounter.kubectl;
    const code = await runStep(["unchanged", "restart-workloads"], { env: {}, root: "/nonexistent", write: (_, t) => writes.push(t) });
    assert.equal(code, 0);
    assert.equal(spawnCounter.kubectl, before, "no kubectl started");
    const summary = JSON.parse(writes.join("").trim());
    assert.equal(summary.step, "restart-workloads");
    assert.match(summary.unchanged, /nothing to do/);
    assert.deepEqual(parseRestartedNamespaces(writes.join("")), { count: 0, first: [] }, "the output says no namespace was restarted");
});
