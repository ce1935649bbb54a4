import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../../plan/config";

const raw = (values: Record<string, string>) => (key: string): string | undefined => values[key];

test("defaults: RSA 4096, istio-system, generation 1 trusted alone, checks on", () => {
    const c = parseConfig(raw({ clusterName: "east" }));
    assert.equal(c.clusterName, "east");
    assert.equal(c.istioNamespace, "istio-system");
    assert.equal(c.keyVersion, 1);
    assert.deepEqual(c.trustedKeyVersions, [1]);
    assert.equal(c.intermediateVersion, 1);
    assert.deepEqual(c.key, { algorithm: "RSA", rsaBits: 4096 });
    assert.equal(c.rootValidityHours, 3650 * 24);
    assert.equal(c.intermediateValidityHours, 1825 * 24);
    assert.equal(c.verify.rootCertConfigMaps, true);
    assert.equal(c.verify.proxyStatus, true);
    assert.equal(c.kubectlPath, "kubectl");
});

test("empty lists (Pulumi.yaml's defaults) mean unset", () => {
    const c = parseConfig(raw({ clusterName: "c", keyVersion: "2", trustedKeyVersions: "[]", workloadNamespaces: "[]", kubeContext: "" }));
    assert.deepEqual(c.trustedKeyVersions, [2]);
    assert.equal(c.workloadNamespaces, undefined);
    assert.equal(c.kubeContext, undefined);
});

test("ECDSA, trusted list sorted, explicit namespaces", () => {
    const c = parseConfig(raw({
        clusterName: "west", keyAlgorithm: "ECDSA", ecdsaCurve: "P384", keyVersion: "3",
        trustedKeyVersions: "[4,3]", workloadNamespaces: '["a","b","a"]', verifyProxyStatus: "false",
    }));
    assert.deepEqual(c.key, { algorithm: "ECDSA", ecdsaCurve: "P384" });
    assert.deepEqual(c.trustedKeyVersions, [3, 4]);
    assert.deepEqual(c.workloadNamespaces, ["a", "b"]);
    assert.equal(c.verify.proxyStatus, false);
});

const bad: [string, Record<string, string>, RegExp][] = [
    ["missing cluster name", {}, /istio-ca:clusterName is required/],
    ["blank cluster name", { clusterName: "  " }, /istio-ca:clusterName is required/],
    ["DN characters in cluster name", { clusterName: "a,b" }, /istio-ca:clusterName must not contain/],
    ["keyVersion negative", { clusterName: "c", keyVersion: "-1" }, /istio-ca:keyVersion must be between 0/],
    ["generation 0 with an external root", { clusterName: "c", keyVersion: "0", rootCertPem: "x", rootKeyPem: "y" }, /istio-ca:keyVersion 0 \(istiod's self-signed CA\) cannot be combined with an external root/],
    ["generation 0 on a root stack", { role: "root", trustedKeyVersions: "[0,1]" }, /istio-ca:trustedKeyVersions 0 is a cluster's own istiod CA/],
    ["keyVersion not an integer", { clusterName: "c", keyVersion: "1.5" }, /istio-ca:keyVersion must be an integer/],
    ["intermediateVersion negative", { clusterName: "c", intermediateVersion: "-1" }, /istio-ca:intermediateVersion must be between 1/],
    ["unknown algorithm", { clusterName: "c", keyAlgorithm: "DSA" }, /istio-ca:keyAlgorithm must be one of RSA, ECDSA/],
    ["odd RSA size", { clusterName: "c", rsaBits: "2500" }, /istio-ca:rsaBits must be 2048, 3072 or 4096/],
    ["RSA too small", { clusterName: "c", rsaBits: "1024" }, /istio-ca:rsaBits must be between 2048/],
    ["unknown curve", { clusterName: "c", keyAlgorithm: "ECDSA", ecdsaCurve: "P521" }, /istio-ca:ecdsaCurve must be one of P256, P384/],
    ["intermediate outlives root", { clusterName: "c", rootValidityDays: "100", intermediateValidityDays: "200" }, /istio-ca:intermediateValidityDays \(200\) must not exceed rootValidityDays \(100\)/],
    ["trusted list without keyVersion", { clusterName: "c", keyVersion: "2", trustedKeyVersions: "[1]" }, /istio-ca:trustedKeyVersions must include keyVersion \(2\)/],
    ["trusted list not a list", { clusterName: "c", trustedKeyVersions: "1" }, /istio-ca:trustedKeyVersions must be a list/],
    ["trusted list with junk", { clusterName: "c", trustedKeyVersions: '[1,"x"]' }, /istio-ca:trustedKeyVersions must be a non-empty list of integers/],
    ["trusted list repeats", { clusterName: "c", trustedKeyVersions: "[1,1]" }, /istio-ca:trustedKeyVersions must not repeat/],
    ["bad namespace", { clusterName: "c", istioNamespace: "Istio_System" }, /istio-ca:istioNamespace must be a Kubernetes namespace name/],
    ["bad workload namespace", { clusterName: "c", workloadNamespaces: '["ok","NO"]' }, /istio-ca:workloadNamespaces must be a Kubernetes namespace name/],
    ["istio namespace among workloads", { clusterName: "c", workloadNamespaces: '["istio-system"]' }, /istio-ca:workloadNamespaces must not contain the Istio namespace/],
    ["boolean typo", { clusterName: "c", verifyProxyStatus: "yes" }, /istio-ca:verifyProxyStatus must be true or false/],
    ["zero concurrency", { clusterName: "c", restartConcurrency: "0" }, /istio-ca:restartConcurrency must be between 1 and 200/],
    ["zero timeout", { clusterName: "c", rolloutTimeoutSeconds: "0" }, /istio-ca:rolloutTimeoutSeconds must be between 1/],
];

for (const [what, values, message] of bad) {
    test(`rejected: ${what}`, () => {
        assert.throws(() => parseConfig(raw(values)), (err: unknown) => {
            assert.ok(err instanceof ConfigError);
            assert.match(err.message, message);
            return true;
        });
    });
}

test("every problem is reported at once", () => {
    assert.throws(() => parseConfig(raw({ keyVersion: "-1", keyAlgorithm: "DSA" })), (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.problems.length, 3);
        return true;
    });
});
