// kube/istioctl.ts: the argv istioctl gets, built in one place (cluster flags, Istio namespace,
// xDS address only for proxy-status, which takes it).
import { it } from "node:test";
import assert from "node:assert/strict";
import { Istioctl } from "../../kube/istioctl";
import { fakeKubectl } from "../support/fakeKubectl";

it("istioctl gets the cluster, the Istio namespace and, for proxy-status only, the xDS address", async () => {
    const fake = fakeKubectl([{ match: [], stdout: "ok" }]);
    const istioctl = new Istioctl({ binary: fake.binary, kubeconfig: "/k/config", context: "east", istioNamespace: "istio-system", xdsAddress: "10.0.0.1:15012" });
    assert.equal(await istioctl.proxyStatus(["-v", "1"]), "ok");
    await istioctl.proxySecrets("web-1.shop");
    await new Istioctl({ binary: fake.binary, istioNamespace: "mesh" }).proxyStatus();
    assert.deepEqual(fake.runs().map((r) => r.args), [
        ["proxy-status", "--xds-address", "10.0.0.1:15012", "-v", "1", "--kubeconfig", "/k/config", "--context", "east", "-i", "istio-system"],
        ["proxy-config", "secret", "web-1.shop", "-o", "json", "--kubeconfig", "/k/config", "--context", "east", "-i", "istio-system"],
        ["proxy-status", "-i", "mesh"],
    ]);
});
