// Expiry: the warning text (plan/expiry.ts), the program's warnings under Pulumi mocks with real
// certificates of the validity the program asks for (openssl), earlyRenewalHours on the
// intermediate, and the config checks of both keys.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { clusterFacts, promiseOf, setupMocks } from "../support/mocks";
import { ConfigError, parseConfig } from "../../plan/config";
import { expiryWarning, WatchedCertificate } from "../../plan/expiry";

const world = setupMocks({});
// Imported after the mocks, as a real run would load it.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { istioCa, rootStack } = require("../../program/istioCa") as typeof import("../../program/istioCa");

const DAY = 86_400_000;
const NOW = Date.parse("2030-01-01T00:00:00Z");
const inDays = (d: number): string => new Date(NOW + d * DAY).toISOString();
const ctx = { windowDays: 30, stack: "prod", now: NOW };
const intermediate = (earlyRenewalHours = 720): WatchedCertificate => ({ kind: "intermediate", intermediateVersion: 3, earlyRenewalHours });

describe("expiryWarning", () => {
    test("a certificate valid beyond the window, or a window of 0, gives no warning", () => {
        assert.equal(expiryWarning(intermediate(), inDays(31), ctx), undefined);
        assert.equal(expiryWarning(intermediate(), inDays(30), ctx), undefined, "exactly the window: not within it");
        assert.equal(expiryWarning(intermediate(), inDays(2), { ...ctx, windowDays: 0 }), undefined);
    });

    test("the intermediate: which, when, how long, and the intermediateVersion bump", () => {
        const w = expiryWarning(intermediate(0), inDays(12.5), ctx)!;
        assert.match(w, /^intermediate v3 expires in 12 day\(s\) 12 hour\(s\), on 2030-01-13T12:00:00.000Z \(within istio-ca:expiryWarningDays 30\)/);
        assert.match(w, /`pulumi config set istio-ca:intermediateVersion 4 -s prod` then `pulumi up`/);
        assert.match(w, /istio-ca:earlyRenewalHours is 0, so nothing renews it automatically/);
    });

    test("with earlyRenewalHours it says from when the next up renews it", () => {
        const w = expiryWarning(intermediate(48), inDays(10), ctx)!;
        assert.match(w, /istio-ca:earlyRenewalHours \(48\) renews it on the first `pulumi up` from 2030-01-09T00:00:00.000Z/);
    });

    test("an expired certificate says so", () => {
        assert.match(expiryWarning(intermediate(), inDays(-1), ctx)!, /^intermediate v3 EXPIRED on 2029-12-31T00:00:00.000Z/);
    });

    test("less than a day left is given in hours", () => {
        assert.match(expiryWarning(intermediate(), new Date(NOW + 5 * 3_600_000 + 60_000).toISOString(), ctx)!, /expires in 5 hour\(s\), on/);
    });

    test("roots: the change that renews each depends on where it comes from", () => {
        const root = (extra: object): string => expiryWarning({ kind: "root", generation: 2, signing: true, source: "generate", ...extra } as WatchedCertificate, inDays(3), ctx)!;
        assert.match(root({}), /^signing root v2 expires in 3 day\(s\)/);
        assert.match(root({}), /rotate the root without an outage: `npm run rotate -- --stack prod` \(phases trust, sign, complete: istio-ca:keyVersion 3\)/);
        assert.match(root({ signing: false }), /^trusted root v2 .*finish the rotation with `npm run rotate -- --stack prod`, whose last phase removes it/);
        assert.match(root({ source: "stack", rootStack: "org/istio-ca/root" }), /add generation 3 to the root stack org\/istio-ca\/root .*`npm run rotate -- --stack prod --to 3`/);
        assert.match(root({ source: "external" }), /set istio-ca:rootCertPem and istio-ca:rootKeyPem \(--secret\) to it and istio-ca:keyVersion to 3/);
        assert.match(root({ source: "root-stack-role" }), /^root v2 .*add generation 3 here \(istio-ca:trustedKeyVersions \[2, 3\], `pulumi up -s prod`\)/);
        assert.match(root({ generation: 0, source: "istiod" }), /^istiod's self-signed CA \(generation 0, istio-ca-secret\) .*`npm run rotate -- --stack prod`/);
    });
});

/** Runs the program for a cluster stack and returns every warning it logged, once its outputs resolved. */
async function warningsOf(values: Record<string, string>) {
    const warnings: string[] = [];
    const warn = pulumi.log.warn;
    pulumi.log.warn = (msg: string) => { warnings.push(msg); return Promise.resolve(); };
    const before = world.resources.length;
    try {
        const config = parseConfig((k) => ({ clusterName: "c", keyAlgorithm: "ECDSA", ...values } as Record<string, string>)[k]);
        const outputs = await world.run(() => istioCa(config, {
            previousOutputs: async () => undefined,
            readRootStack: async () => undefined,
            inspectCluster: async () => clusterFacts(),
        }));
        // The warnings are emitted as the summaries resolve.
        const resolved = await promiseOf(pulumi.all([outputs.signingRoot, outputs.trustedRoots, outputs.intermediate]));
        return { warnings, resolved, registered: world.resources.slice(before) };
    } finally {
        pulumi.log.warn = warn;
    }
}

const expiring = (warnings: string[]) => warnings.filter((w) => /istio-ca:expiryWarningDays/.test(w));

describe("the program warns about certificates that expire soon", () => {
    test("defaults (root 3650 days, intermediate 1825): no warning", async () => {
        const { warnings, resolved } = await warningsOf({});
        assert.deepEqual(expiring(warnings), []);
        assert.ok(resolved[2].daysLeft > 1800, "the mock issued what the program asked for");
    });

    test("an intermediate inside the window: one warning, naming it, its notAfter and the fix", async () => {
        const { warnings, resolved } = await warningsOf({ intermediateValidityDays: "10", earlyRenewalHours: "48", expiryWarningDays: "30" });
        const found = expiring(warnings);
        assert.equal(found.length, 1, found.join("\n"));
        assert.match(found[0], /^intermediate v1 expires in 9 day\(s\) 23 hour\(s\), on /);
        assert.ok(found[0].includes(resolved[2].notAfter), "the notAfter of the certificate in the outputs");
        assert.match(found[0], /pulumi config set istio-ca:intermediateVersion 2 -s test/);
        assert.match(found[0], /istio-ca:earlyRenewalHours \(48\) renews it/);
    });

    test("the same intermediate with a smaller window: no warning", async () => {
        const { warnings } = await warningsOf({ intermediateValidityDays: "10", earlyRenewalHours: "48", expiryWarningDays: "9" });
        assert.deepEqual(expiring(warnings), []);
    });

    test("expiryWarningDays 0 turns the warnings off", async () => {
        const { warnings } = await warningsOf({ intermediateValidityDays: "10", earlyRenewalHours: "48", expiryWarningDays: "0" });
        assert.deepEqual(expiring(warnings), []);
    });

    test("the signing root is warned once, though it is both signingRoot and a trusted root", async () => {
        // Generation 7: a root of its own in the mocks' cache, issued for 20 days.
        const { warnings } = await warningsOf({ keyVersion: "7", rootValidityDays: "20", intermediateValidityDays: "10", earlyRenewalHours: "0" });
        const found = expiring(warnings);
        assert.equal(found.filter((w) => w.startsWith("signing root v7 expires in 19 day(s)")).length, 1, found.join("\n"));
        assert.match(found.find((w) => w.startsWith("signing root v7"))!, /npm run rotate -- --stack test/);
        assert.equal(found.filter((w) => w.startsWith("intermediate v1")).length, 1);
        assert.equal(found.length, 2);
    });

    test("during a rotation every trusted root is checked: signing and only-trusted roots are told apart", async () => {
        const { warnings } = await warningsOf({ keyVersion: "11", trustedKeyVersions: "[11,12]", rootValidityDays: "20", intermediateValidityDays: "10", earlyRenewalHours: "0", expiryWarningDays: "25" });
        const found = expiring(warnings).filter((w) => /root/.test(w.split(" expires")[0]));
        assert.deepEqual(found.map((w) => w.split(" expires")[0]).sort(), ["signing root v11", "trusted root v12"]);
    });

    test("a root stack warns about its generations", async () => {
        const warnings: string[] = [];
        const warn = pulumi.log.warn;
        pulumi.log.warn = (msg: string) => { warnings.push(msg); return Promise.resolve(); };
        try {
            const config = parseConfig((k) => ({ role: "root", keyAlgorithm: "ECDSA", keyVersion: "21", rootValidityDays: "20", intermediateValidityDays: "10" } as Record<string, string>)[k]);
            const outputs = await world.run(() => rootStack(config));
            await promiseOf(outputs.trustedRoots as pulumi.Output<unknown>);
        } finally {
            pulumi.log.warn = warn;
        }
        const found = expiring(warnings);
        assert.equal(found.length, 1, found.join("\n"));
        assert.match(found[0], /^root v21 expires in 19 day\(s\).*add generation 22 here/);
    });

    test("the intermediate's LocallySignedCert gets earlyRenewalHours (default 720)", async () => {
        const signed = (r: typeof world.resources) => r.find((x) => x.type === "tls:index/locallySignedCert:LocallySignedCert")!;
        assert.equal(signed((await warningsOf({})).registered).inputs.earlyRenewalHours, 720);
        assert.equal(signed((await warningsOf({ intermediateValidityDays: "10", earlyRenewalHours: "0" })).registered).inputs.earlyRenewalHours, 0);
    });
});

describe("config: earlyRenewalHours and expiryWarningDays", () => {
    const parse = (values: Record<string, string>) => parseConfig((k) => ({ clusterName: "c", ...values } as Record<string, string>)[k]);
    const rejects = (values: Record<string, string>, message: RegExp) =>
        assert.throws(() => parse(values), (err: unknown) => {
            assert.ok(err instanceof ConfigError);
            assert.match(err.message, message);
            return true;
        });

    test("defaults: renew 720 h (30 days) early, warn 30 days ahead", () => {
        const c = parse({});
        assert.equal(c.earlyRenewalHours, 720);
        assert.equal(c.expiryWarningDays, 30);
    });

    test("0 turns each off; values just under the validity are accepted", () => {
        const c = parse({ earlyRenewalHours: "0", expiryWarningDays: "0", intermediateValidityDays: "1" });
        assert.equal(c.earlyRenewalHours, 0);
        assert.equal(c.expiryWarningDays, 0);
        assert.equal(parse({ intermediateValidityDays: "2", earlyRenewalHours: "47" }).earlyRenewalHours, 47);
    });

    test("earlyRenewalHours must be less than the intermediate's validity (the default too)", () => {
        rejects({ intermediateValidityDays: "30" },
            /istio-ca:earlyRenewalHours \(720, the default\) must be less than the intermediate's validity \(istio-ca:intermediateValidityDays 30 = 720 h\).*renewed on every up; set it to e\.g\. 240/);
        rejects({ intermediateValidityDays: "2", earlyRenewalHours: "48" }, /istio-ca:earlyRenewalHours \(48\) must be less than/);
    });

    test("bad values name their key", () => {
        rejects({ earlyRenewalHours: "-1" }, /istio-ca:earlyRenewalHours must be between 0/);
        rejects({ earlyRenewalHours: "1.5" }, /istio-ca:earlyRenewalHours must be an integer/);
        rejects({ expiryWarningDays: "-3" }, /istio-ca:expiryWarningDays must be between 0/);
        rejects({ expiryWarningDays: "soon" }, /istio-ca:expiryWarningDays must be an integer/);
    });
});
