// Tests for steps/verify/proxyStatus.ts against real istioctl output samples (see fixtures/istioctl/SOURCES.md).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";

import {
    evaluateProxyStatus,
    parseProxyStatus,
    parseStatusCell,
    shortXdsType,
    type ProxyStatusReport,
} from "../../steps/verify/proxyStatus";

// Compiled to dist/tests/unit/: the fixtures stay in the source tree.
const FIXTURES = path.resolve(__dirname, "../../../tests/unit/fixtures/istioctl");
const fixture = (name: string): string => readFileSync(path.join(FIXTURES, name), "utf8");

function proxy(report: ProxyStatusReport, name: string) {
    const p = report.proxies.find((x) => x.name === name);
    assert.ok(p, `proxy ${name} not in report: ${report.proxies.map((x) => x.name).join(", ")}`);
    return p;
}

describe("parseStatusCell", () => {
    it("normalises the shapes istioctl prints", () => {
        assert.deepEqual(parseStatusCell("SYNCED (78s)"), { status: "SYNCED", detail: "78s", raw: "SYNCED (78s)" });
        assert.deepEqual(parseStatusCell("STALE (Never Acknowledged)"), {
            status: "STALE",
            detail: "Never Acknowledged",
            raw: "STALE (Never Acknowledged)",
        });
        assert.equal(parseStatusCell("NOT_SENT").status, "NOT SENT");
        assert.equal(parseStatusCell("NOT SENT").status, "NOT SENT");
        assert.equal(parseStatusCell("UNKNOWN").status, "IGNORED");
        assert.equal(parseStatusCell("").status, "IGNORED");
        assert.equal(parseStatusCell("SYNCED (100%)").detail, "100%");
    });

    it("maps type URLs to istioctl's short names", () => {
        assert.equal(shortXdsType("type.googleapis.com/envoy.config.cluster.v3.Cluster"), "CDS");
        assert.equal(shortXdsType("type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"), "ECDS");
        assert.equal(shortXdsType("type.googleapis.com/istio.security.Authorization"), "WADS");
        assert.equal(shortXdsType("type.googleapis.com/some.new.Type"), "some.new.Type");
    });
});

describe("parseProxyStatus: <=1.26 per-type table", () => {
    it("parses multiXdsStatusMultiPilot.txt (four istiods, STALE/ERROR/NOT SENT/IGNORED)", () => {
        const r = parseProxyStatus(fixture("multiXdsStatusMultiPilot.txt"));
        assert.equal(r.format, "xds-table");
        assert.equal(r.syncReported, true);
        assert.deepEqual(r.types, ["CDS", "LDS", "EDS", "RDS", "ECDS"]);
        assert.deepEqual(r.proxies.map((p) => p.name), ["proxy1", "proxy2", "proxy3", "proxy4"]);
        const p1 = proxy(r, "proxy1");
        assert.equal(p1.cluster, "cluster1");
        assert.equal(p1.istiod, "istiod1");
        assert.equal(p1.version, "1.20");
        assert.equal(p1.xds.CDS.status, "STALE");
        assert.equal(p1.xds.RDS.status, "NOT SENT");
        assert.equal(p1.xds.ECDS.status, "SYNCED");
        const p3 = proxy(r, "proxy3");
        assert.equal(p3.xds.LDS.status, "ERROR");
        assert.equal(p3.xds.CDS.status, "NOT SENT");
        assert.equal(proxy(r, "proxy2").version, "1.19");
        assert.ok(Object.values(proxy(r, "proxy4").xds).every((s) => s.status === "IGNORED"));
    });

    it("judges it: STALE, ERROR and NOT SENT on CDS are problems; NOT SENT on RDS/ECDS and IGNORED are not", () => {
        const ev = evaluateProxyStatus(parseProxyStatus(fixture("multiXdsStatusMultiPilot.txt")));
        assert.equal(ev.ok, false);
        const by = (name: string) => ev.problems.filter((p) => p.proxy === name).map((p) => p.detail);
        assert.deepEqual(by("proxy1"), ["CDS STALE"]);
        assert.deepEqual(by("proxy2"), ["CDS STALE", "EDS STALE", "ECDS STALE"]);
        assert.deepEqual(by("proxy3"), ["CDS NOT SENT", "LDS ERROR", "EDS STALE"]);
        assert.deepEqual(by("proxy4"), []);
        assert.match(ev.summary, /4 proxies, 1 synced, 3 not synced/);
        assert.match(ev.summary, /proxy3 \(istiod istiod3\): CDS NOT SENT, LDS ERROR, EDS STALE/);
    });

    it("normalises the ~1.19 NOT_SENT spelling (multiXdsStatusSinglePilot.txt)", () => {
        const r = parseProxyStatus(fixture("multiXdsStatusSinglePilot.txt"));
        assert.equal(proxy(r, "proxy1").xds.RDS.status, "NOT SENT");
        assert.equal(proxy(r, "proxy1").xds.RDS.raw, "NOT_SENT");
        assert.equal(proxy(r, "proxy2").xds.ECDS.status, "NOT SENT");
        assert.equal(proxy(r, "proxy2").istiod, "istiod1");
    });

    it("parses a table without CLUSTER column and without trailing newline (selectedColsSinglePilot.txt)", () => {
        const r = parseProxyStatus(fixture("selectedColsSinglePilot.txt"));
        assert.deepEqual(r.types, ["CDS", "LDS"]);
        assert.equal(r.proxies.length, 2);
        assert.equal(proxy(r, "proxy2").cluster, undefined);
        assert.equal(proxy(r, "proxy2").version, "1.1");
    });

    it("parses Istio 1.24 output with age suffixes and IGNORED ECDS, and finds it all synced", () => {
        const r = parseProxyStatus(fixture("sail-operator-ga-1.24.txt"));
        const p = proxy(r, "sleep-5fcd8fd6c8-q4c9x.sample");
        assert.equal(p.cluster, "Kubernetes");
        assert.equal(p.istiod, "istiod-default-v1-24-2-bd8458c4-jl8zm");
        assert.equal(p.version, "1.24.2");
        assert.deepEqual(p.xds.CDS, { status: "SYNCED", detail: "78s", raw: "SYNCED (78s)" });
        assert.equal(p.xds.ECDS.status, "IGNORED");
        const ev = evaluateProxyStatus(r, { expectedProxies: ["sleep-5fcd8fd6c8-q4c9x.sample"] });
        assert.equal(ev.ok, true, ev.summary);
        assert.deepEqual(ev.problems, []);
        assert.match(ev.summary, /1 proxy, 1 synced, 0 not synced/);
        assert.match(ev.summary, /all 1 expected proxies present/);
    });

    it("parses the Istio 1.1 PROXY/PILOT table whose header is not aligned with its rows", () => {
        const r = parseProxyStatus(fixture("proxy-cmd-1.1.txt"));
        assert.equal(r.proxies.length, 9);
        const pp = proxy(r, "productpage-v1-6c886ff494-hm7zk.default");
        assert.equal(pp.istiod, "istio-pilot-75bdf98789-n2kqh");
        assert.equal(pp.version, "1.1.2");
        assert.equal(pp.xds.RDS.status, "STALE");
        assert.equal(proxy(r, "istio-egressgateway-c49694485-l9d5l.istio-system").xds.RDS.status, "NOT SENT");
        const ev = evaluateProxyStatus(r);
        assert.equal(ev.ok, false);
        assert.deepEqual(ev.problems, [{ proxy: "productpage-v1-6c886ff494-hm7zk.default", detail: "RDS STALE" }]);
    });
});

describe("parseProxyStatus: 1.27+ tables", () => {
    it("parses the -v 1 table with per-type columns in type-URL order", () => {
        const r = parseProxyStatus(fixture("multiXdsStatusMultiPilot_verbose.txt"));
        assert.equal(r.format, "xds-table");
        assert.deepEqual(r.types, ["CDS", "ECDS", "EDS", "LDS", "RDS"]);
        const p = proxy(r, "proxy1");
        assert.equal(p.xds.CDS.status, "STALE");
        assert.equal(p.xds.ECDS.status, "SYNCED");
        assert.equal(p.xds.RDS.status, "NOT SENT");
        assert.deepEqual(evaluateProxyStatus(r).problems, [{ proxy: "proxy1", detail: "CDS STALE" }]);
    });

    it("parses the default SUBSCRIBED TYPES table: connected, sync state not reported", () => {
        const r = parseProxyStatus(fixture("subscribed-1.27.txt"));
        assert.equal(r.format, "subscribed-table");
        assert.equal(r.syncReported, false);
        assert.deepEqual(proxy(r, "test-556b4dcc6c-9n84g.default").subscribedTypes, ["CDS", "LDS", "EDS", "RDS"]);
        assert.deepEqual(proxy(r, "ztunnel-ldkz6.istio-system").subscribedTypes, ["WADS", "WDS"]);
        assert.equal(proxy(r, "ztunnel-ldkz6.istio-system").istiod, "istiod-796c54b8bb-9dsjw");
        assert.equal(proxy(r, "ztunnel-ldkz6.istio-system").version, "1.27.0");
        assert.deepEqual(proxy(r, "ztunnel-ldkz6.istio-system").xds, {});

        const ev = evaluateProxyStatus(r, { expectedProxies: ["test-sidecar-6f46c69d85-bj5h6.default"] });
        assert.equal(ev.ok, true);
        assert.match(ev.summary, /3 proxies connected; per-type sync state not reported/);

        const strict = evaluateProxyStatus(r, { requireSyncStatus: true });
        assert.equal(strict.ok, false);
        assert.equal(strict.problems.length, 3);
        assert.match(strict.problems[0].detail, /sync status not reported/);
    });

    it("rejects a SUBSCRIBED TYPES cell whose count does not match its list", () => {
        const bad = fixture("subscribed-1.27.txt").replace("4 (CDS,LDS,EDS,RDS)", "3 (CDS,LDS,EDS,RDS)");
        assert.throws(() => parseProxyStatus(bad), /announces 3 types but lists 4/);
    });
});

describe("parseProxyStatus: -o json", () => {
    const json = fixture("multiXdsStatusSinglePilot.json");

    it("parses one DiscoveryResponse document", () => {
        const r = parseProxyStatus(json);
        assert.equal(r.format, "json");
        assert.equal(r.syncReported, true);
        const p = proxy(r, "proxy1");
        assert.equal(p.cluster, "cluster1");
        assert.equal(p.istiod, "istiod1");
        assert.equal(p.version, "1.20");
        assert.equal(p.xds.CDS.status, "STALE");
        assert.equal(p.xds.LDS.status, "SYNCED");
        assert.equal(p.xds.RDS.status, "NOT SENT");
        assert.equal(p.xds.EDS.status, "SYNCED");
        assert.equal(p.xds.ECDS.status, "SYNCED");
        assert.deepEqual(evaluateProxyStatus(r).problems, [{ proxy: "proxy1", detail: "CDS STALE" }]);
    });

    // A second istiod's document, derived from the real one: other pod, other proxy, all synced,
    // ECDS without configStatus (protojson omits UNKNOWN) and with lastUpdated.
    const second = (() => {
        const doc = JSON.parse(json);
        doc.controlPlane.identifier = doc.controlPlane.identifier.replace("istiod1", "istiod2");
        const res = doc.resources[0];
        res.node.id = "proxy0.default";
        for (const g of res.genericXdsConfigs) {
            g.configStatus = "SYNCED";
            g.lastUpdated = "2025-01-01T00:00:00Z";
        }
        delete res.genericXdsConfigs[4].configStatus;
        return doc;
    })();

    it("parses several concatenated documents (one per istiod) and sorts proxies", () => {
        const r = parseProxyStatus(`${json}\n${JSON.stringify(second, null, 2)}\n`);
        assert.deepEqual(r.proxies.map((p) => `${p.name}@${p.istiod}`), ["proxy0.default@istiod2", "proxy1@istiod1"]);
        const p0 = proxy(r, "proxy0.default");
        assert.equal(p0.xds.ECDS.status, "IGNORED");
        assert.equal(p0.xds.CDS.detail, "2025-01-01T00:00:00Z");
    });

    it("parses a JSON array of documents and a map keyed by istiod", () => {
        const arr = parseProxyStatus(JSON.stringify([JSON.parse(json), second]));
        assert.equal(arr.proxies.length, 2);
        const noId = JSON.parse(json);
        delete noId.controlPlane;
        const map = parseProxyStatus(JSON.stringify({ "istiod-abc": noId }));
        assert.equal(proxy(map, "proxy1").istiod, "istiod-abc");
    });

    it("rejects JSON that is not a DiscoveryResponse, and truncated JSON", () => {
        assert.throws(() => parseProxyStatus('{"kind": "List", "items": []}'), /not a DiscoveryResponse/);
        assert.throws(() => parseProxyStatus(json.slice(0, 200)), /JSON does not parse/);
        const wrongType = JSON.parse(json);
        wrongType.resources[0]["@type"] = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
        assert.throws(() => parseProxyStatus(JSON.stringify(wrongType)), /expected type\.googleapis\.com\/envoy\.service\.status\.v3\.ClientConfig/);
    });
});

describe("parseProxyStatus: garbage", () => {
    it("says what it expected and quotes the first line", () => {
        const out = "Error: no running Istio pods in \"istio-system\"\n";
        assert.throws(
            () => parseProxyStatus(out),
            (err: Error) => {
                assert.match(err.message, /expected a table whose header starts with NAME/);
                assert.ok(err.message.includes('"Error: no running Istio pods in \\"istio-system\\""'), err.message);
                return true;
            },
        );
    });

    it("rejects empty output", () => {
        assert.throws(() => parseProxyStatus("  \n"), /empty istioctl proxy-status output/);
    });

    it("rejects a table without an ISTIOD column", () => {
        assert.throws(() => parseProxyStatus("NAME   READY   STATUS\nfoo    1/1     Running\n"), /no ISTIOD\/PILOT column/);
    });

    it("rejects a row that does not fit the header", () => {
        const bad = `${fixture("multiXdsStatusMultiPilot.txt")}proxy5     cluster5     SYNCED\n`;
        assert.throws(() => parseProxyStatus(bad), /line 6: 3 cells but the header has 9 columns/);
    });
});

describe("evaluateProxyStatus: expectations", () => {
    const synced = parseProxyStatus(fixture("sail-operator-ga-1.24.txt"));

    it("reports an expected proxy that is missing", () => {
        const ev = evaluateProxyStatus(synced, {
            expectedProxies: ["sleep-5fcd8fd6c8-q4c9x.sample", "httpbin-1234-abcd.sample"],
        });
        assert.equal(ev.ok, false);
        assert.deepEqual(ev.problems, [
            { proxy: "httpbin-1234-abcd.sample", detail: "expected but absent from proxy-status (not connected to any istiod)" },
        ]);
        assert.match(ev.summary, /missing \(1 of 2 expected\): httpbin-1234-abcd\.sample/);
    });

    it("reports zero proxies when some are expected, accepts zero when none are", () => {
        const empty = parseProxyStatus(fixture("multiXdsStatusMultiPilot.txt").split("\n")[0] + "\n");
        assert.equal(empty.proxies.length, 0);
        const ev = evaluateProxyStatus(empty, { expectedProxies: ["a.default", "b.default"] });
        assert.equal(ev.ok, false);
        assert.deepEqual(ev.problems.map((p) => p.proxy), ["(mesh)", "a.default", "b.default"]);
        assert.match(ev.summary, /no proxy is connected to istiod/);
        assert.equal(evaluateProxyStatus(empty).ok, true);
    });

    it("treats an unrecognised status as a problem", () => {
        const r = parseProxyStatus(fixture("sail-operator-ga-1.24.txt").replace("IGNORED ", "WEIRD   "));
        assert.equal(proxy(r, "sleep-5fcd8fd6c8-q4c9x.sample").xds.ECDS.status, "WEIRD");
        const ev = evaluateProxyStatus(r);
        assert.deepEqual(ev.problems, [{ proxy: "sleep-5fcd8fd6c8-q4c9x.sample", detail: "ECDS WEIRD (unrecognised status)" }]);
    });
});
