// The mesh config check reads defaultConfig.proxyMetadata with a YAML parser, in every style a
// person or an installer writes it; unparseable YAML is refused with the ConfigMap and key named.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { meshEnablesXdsAgent, PreflightError } from "../../plan/clusterFacts";

const WHERE = "ConfigMap istio in istio-system";

describe("PROXY_CONFIG_XDS_AGENT in the mesh config", () => {
    it("block style, as istioctl writes it", () => {
        const mesh = 'defaultConfig:\n  discoveryAddress: istiod.istio-system.svc:15012\n  proxyMetadata:\n    PROXY_CONFIG_XDS_AGENT: "true"\n';
        assert.equal(meshEnablesXdsAgent(mesh, WHERE), true);
        assert.equal(meshEnablesXdsAgent(mesh.replace('"true"', '"false"'), WHERE), false);
    });

    it("flow style, on one line or several", () => {
        assert.equal(meshEnablesXdsAgent('defaultConfig: {proxyMetadata: {PROXY_CONFIG_XDS_AGENT: "true"}}', WHERE), true);
        assert.equal(meshEnablesXdsAgent("defaultConfig:\n  proxyMetadata: { ISTIO_META_DNS_CAPTURE: 'true',\n    PROXY_CONFIG_XDS_AGENT: 'true' }\n", WHERE), true);
        assert.equal(meshEnablesXdsAgent('defaultConfig: {proxyMetadata: {PROXY_CONFIG_XDS_AGENT: "false"}}', WHERE), false);
    });

    it("quoted keys and an unquoted boolean", () => {
        assert.equal(meshEnablesXdsAgent('"defaultConfig":\n  \'proxyMetadata\':\n    "PROXY_CONFIG_XDS_AGENT": true\n', WHERE), true);
    });

    it("the values Go's strconv.ParseBool reads as true, and no others", () => {
        for (const v of ["1", "t", "T", "TRUE", "true", "True"]) {
            assert.equal(meshEnablesXdsAgent(`defaultConfig: {proxyMetadata: {PROXY_CONFIG_XDS_AGENT: "${v}"}}`, WHERE), true, v);
        }
        for (const v of ["0", "false", "yes", "on", "tRUE", ""]) {
            assert.equal(meshEnablesXdsAgent(`defaultConfig: {proxyMetadata: {PROXY_CONFIG_XDS_AGENT: "${v}"}}`, WHERE), false, v);
        }
    });

    it("absent: no metadata, empty metadata, empty mesh config, or the key elsewhere", () => {
        assert.equal(meshEnablesXdsAgent("", WHERE), false);
        assert.equal(meshEnablesXdsAgent("defaultConfig:\n  proxyMetadata: {}\n", WHERE), false);
        assert.equal(meshEnablesXdsAgent("defaultConfig:\n  discoveryAddress: istiod:15012\n", WHERE), false);
        assert.equal(meshEnablesXdsAgent("accessLogFile: /dev/stdout\n", WHERE), false);
        assert.equal(meshEnablesXdsAgent('# PROXY_CONFIG_XDS_AGENT: "true"\ndefaultConfig: {}\n', WHERE), false, "a comment");
        // The regular expression over the text this replaced took these two for enabled.
        assert.equal(meshEnablesXdsAgent('extraMetadata:\n  PROXY_CONFIG_XDS_AGENT: "true"\ndefaultConfig: {}\n', WHERE), false, "another map");
        assert.equal(meshEnablesXdsAgent('defaultConfig:\n  proxyMetadata:\n    OTHER: |\n      PROXY_CONFIG_XDS_AGENT: "true"\n', WHERE), false, "inside a block scalar");
    });

    it("unparseable YAML: a PreflightError naming the ConfigMap and its key", () => {
        for (const bad of ["defaultConfig: {proxyMetadata: {PROXY_CONFIG_XDS_AGENT: \"true\"}\n", "defaultConfig:\n  a: 1\n a: 2\n", "a: 1\na: 2\n"]) {
            assert.throws(() => meshEnablesXdsAgent(bad, WHERE), (err: Error) => {
                assert.ok(err instanceof PreflightError, err.message);
                assert.match(err.message, /^the mesh config \(key mesh of ConfigMap istio in istio-system\) is not valid YAML: \S/);
                assert.doesNotMatch(err.message, /\n/, "one line");
                return true;
            }, JSON.stringify(bad));
        }
    });
});
