// Tests for steps/rootCertCheck.ts. Root certificates are generated at test time with openssl into a
// temporary directory (keys are thrown away); nothing PEM is committed.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

import { bundleFingerprints, formatFingerprint } from "../../common/pem";
import {
    checkRootCertConfigMaps,
    formatRootCertReport,
    normalizeFingerprint,
    shortFingerprint,
    type ConfigMapList,
    type NamespaceList,
} from "../../steps/rootCertCheck";

let dir = "";
const roots: Record<string, string> = {};
const fp: Record<string, string> = {};

function makeRoot(label: string): string {
    const key = path.join(dir, `${label}.key`);
    const crt = path.join(dir, `${label}.crt`);
    execFileSync(
        "openssl",
        [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", crt, "-days", "1",
            "-subj", `/O=Istio/CN=Root CA ${label}`,
            "-addext", "basicConstraints=critical,CA:true",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ],
        { stdio: ["ignore", "ignore", "pipe"] },
    );
    rmSync(key);
    return readFileSync(crt, "utf8");
}

before(() => {
    dir = mkdtempSync(path.join(tmpdir(), "rootcert-test-"));
    for (const label of ["A", "B", "OLD"]) {
        roots[label] = makeRoot(label);
        fp[label] = bundleFingerprints(roots[label], label)[0];
    }
});

after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
});

function cm(namespace: string, pem: string | undefined): ConfigMapList["items"][number] {
    return {
        metadata: { name: "istio-ca-root-cert", namespace },
        data: pem === undefined ? { "other-key": "x" } : { "root-cert.pem": pem },
    };
}

function ns(name: string, extra: { labels?: Record<string, string>; terminating?: boolean } = {}) {
    return {
        metadata: { name, labels: extra.labels ?? { "kubernetes.io/metadata.name": name } },
        status: { phase: extra.terminating ? "Terminating" : "Active" },
    };
}

describe("checkRootCertConfigMaps", () => {
    function cluster(): { cms: ConfigMapList; nss: NamespaceList } {
        const { A, B, OLD } = roots;
        return {
            cms: {
                items: [
                    cm("default", A + B),
                    cm("istio-system", A + B),
                    cm("kube-system", A + B),
                    cm("reordered", B + A),
                    cm("rotation", A + B + B), // phase 2 of Istio's own root rotation
                    cm("old", OLD),
                    cm("partial", A),
                    cm("mixed", OLD + A + B),
                    cm("garbage", "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"),
                    cm("nokey", undefined),
                    cm("kube-public", OLD), // never written by istiod: must be ignored even when stale
                ],
            },
            nss: {
                items: [
                    ns("default", { labels: { "istio-injection": "enabled" } }),
                    ns("istio-system"),
                    ns("kube-system"),
                    ns("kube-public"),
                    ns("kube-node-lease"),
                    ns("local-path-storage"),
                    ns("reordered"),
                    ns("rotation"),
                    ns("old", { labels: { "istio-injection": "enabled" } }),
                    ns("partial"),
                    ns("mixed"),
                    ns("garbage"),
                    ns("nokey"),
                    ns("nocm"),
                    ns("dying", { terminating: true }),
                ],
            },
        };
    }

    it("classifies every namespace and compares bundles as sets", () => {
        const { cms, nss } = cluster();
        const expected = bundleFingerprints(roots.A + roots.B, "expected");
        const res = checkRootCertConfigMaps(cms, nss, expected);
        const status = Object.fromEntries(res.namespaces.map((r) => [r.namespace, r.status]));
        assert.deepEqual(status, {
            default: "ok",
            garbage: "unparseable",
            "istio-system": "ok",
            "kube-system": "ok",
            mixed: "stale",
            nocm: "missing",
            nokey: "unparseable",
            old: "stale",
            partial: "stale",
            reordered: "ok",
            rotation: "ok",
        });
        assert.equal(res.ok, false);
        assert.deepEqual(res.expected, [fp.A, fp.B]);

        const by = (n: string) => res.namespaces.find((r) => r.namespace === n)!;
        assert.deepEqual(by("rotation").found, [fp.A, fp.B], "A+B+B is the set {A,B}");
        assert.deepEqual(by("old").absent, [fp.A, fp.B]);
        assert.deepEqual(by("old").extra, [fp.OLD]);
        assert.deepEqual(by("partial").absent, [fp.B]);
        assert.deepEqual(by("partial").extra, []);
        assert.deepEqual(by("mixed").absent, []);
        assert.deepEqual(by("mixed").extra, [fp.OLD]);
        assert.match(by("nocm").detail ?? "", /no istio-ca-root-cert ConfigMap/);
        assert.match(by("nokey").detail ?? "", /no root-cert\.pem key/);
        assert.match(by("garbage").detail ?? "", /does not parse/);

        assert.deepEqual(res.excluded.map((e) => e.namespace).sort(), ["dying", "kube-node-lease", "kube-public", "local-path-storage"]);
        assert.match(res.excluded.find((e) => e.namespace === "dying")!.reason, /Terminating/);
    });

    it("is ok when every namespace holds the expected set, whatever the order or repetitions", () => {
        const { A, B } = roots;
        const res = checkRootCertConfigMaps(
            { items: [cm("a", A + B), cm("b", B + A + A), cm("c", `\n${A}\n\n${B}`)] },
            { items: [ns("a"), ns("b"), ns("c"), ns("gone", { terminating: true })] },
            [fp.B, fp.A, fp.A],
        );
        assert.equal(res.ok, true, formatRootCertReport(res));
        assert.deepEqual(res.namespaces.map((r) => r.status), ["ok", "ok", "ok"]);
    });

    it("a namespace with only the old root is stale against the new one", () => {
        const res = checkRootCertConfigMaps({ items: [cm("app", roots.OLD)] }, { items: [ns("app")] }, [fp.A]);
        assert.equal(res.ok, false);
        assert.equal(res.namespaces[0].status, "stale");
        assert.deepEqual(res.namespaces[0].absent, [fp.A]);
        assert.deepEqual(res.namespaces[0].extra, [fp.OLD]);
    });

    it("checks only an explicit namespace list, and reports listed namespaces that do not exist", () => {
        const { cms, nss } = cluster();
        const res = checkRootCertConfigMaps(cms, nss, [fp.A, fp.B], { namespaces: ["default", "ghost", "kube-public"] });
        assert.deepEqual(res.namespaces.map((r) => `${r.namespace}:${r.status}`), ["default:ok", "ghost:missing"]);
        assert.match(res.namespaces[1].detail ?? "", /namespace does not exist/);
        assert.deepEqual(res.excluded.map((e) => e.namespace), ["kube-public"]);
    });

    it("accepts openssl-style fingerprints and rejects malformed ones", () => {
        const { cms, nss } = cluster();
        const res = checkRootCertConfigMaps(cms, nss, [formatFingerprint(fp.A), formatFingerprint(fp.B)], { namespaces: ["default"] });
        assert.equal(res.ok, true);
        assert.equal(normalizeFingerprint(formatFingerprint(fp.A)), fp.A);
        assert.throws(() => normalizeFingerprint("abcd"), /not a SHA-256 fingerprint/);
        assert.throws(() => checkRootCertConfigMaps(cms, nss, []), /no expected fingerprints/);
    });
});

describe("formatRootCertReport", () => {
    it("lists the expected roots in short form and what each failing namespace holds", () => {
        const { A, B, OLD } = roots;
        const res = checkRootCertConfigMaps(
            { items: [cm("good", A + B), cm("old", OLD)] },
            { items: [ns("good"), ns("old"), ns("nocm"), ns("kube-public")] },
            [fp.A, fp.B],
        );
        const text = formatRootCertReport(res);
        assert.match(text, /3 namespace\(s\) checked, 1 ok, 2 failing, 1 excluded/);
        assert.ok(text.includes(`expected roots (SHA-256, compared as a set): ${shortFingerprint(fp.A)}, ${shortFingerprint(fp.B)}`), text);
        assert.ok(text.includes(`old: STALE (holds ${shortFingerprint(fp.OLD)}; expected but absent: ${shortFingerprint(fp.A)}, ${shortFingerprint(fp.B)}; present but not expected: ${shortFingerprint(fp.OLD)})`), text);
        assert.match(text, /nocm: MISSING \(no istio-ca-root-cert ConfigMap\)/);
        assert.doesNotMatch(text, /good:/);
        assert.match(text, /excluded: kube-public/);
        assert.match(shortFingerprint(fp.A), /^([0-9A-F]{2}:){7}[0-9A-F]{2}…$/);
    });
});

