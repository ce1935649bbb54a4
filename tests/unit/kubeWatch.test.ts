// Tests for kube/kubeWatch.ts: splitting kubectl's concatenated JSON, and waiting on a watch, with a
// stand-in kubectl (tests/support/fakeKubectl.ts) that prints watch events the way `kubectl get
// --watch --output-watch-events -o json` does: pretty-printed objects, one after another.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { JsonObjectSplitter, watchUntil } from "../../kube/kubeWatch";
import { spawnCounter, ToolError } from "../../kube/kubectl";
import { fakeKubectl } from "../support/fakeKubectl";

describe("JsonObjectSplitter", () => {
    const events = [
        { type: "ADDED", object: { metadata: { name: "a" }, data: { "root-cert.pem": "-----BEGIN CERTIFICATE-----\nMII{[\"}\n" } } },
        { type: "MODIFIED", object: { metadata: { name: "b", annotations: { x: "}}}\\\"{{" } }, list: [1, [2, { c: "]" }]] } },
        { type: "DELETED", object: { metadata: { name: "ü-ñ" } } },
    ];
    const text = events.map((e) => JSON.stringify(e, null, 4) + "\n").join("");

    it("returns each top-level object, braces and quotes inside strings included", () => {
        const s = new JsonObjectSplitter();
        assert.deepEqual(s.push(text).map((t) => JSON.parse(t)), events);
        assert.equal(s.pending, false);
    });

    it("gives the same objects whatever the chunk boundaries (even inside strings and escapes)", () => {
        for (const size of [1, 2, 3, 7, 64]) {
            const s = new JsonObjectSplitter();
            const out: unknown[] = [];
            for (let i = 0; i < text.length; i += size) {
                out.push(...s.push(text.slice(i, i + size)).map((t) => JSON.parse(t)));
            }
            assert.deepEqual(out, events, `chunk size ${size}`);
        }
    });

    it("keeps an unfinished object for the next chunk", () => {
        const s = new JsonObjectSplitter();
        assert.deepEqual(s.push('{"a": {"b": "}'), []);
        assert.equal(s.pending, true);
        assert.deepEqual(s.push('"}}\n{"c'), ['{"a": {"b": "}"}}']);
        assert.deepEqual(s.push('": 1}'), ['{"c": 1}']);
    });

    it("refuses output that is not JSON objects", () => {
        assert.throws(() => new JsonObjectSplitter().push("error: the server doesn't have a resource type"), /expected a JSON object from kubectl/);
    });
});

interface Obj { metadata: { namespace: string; name: string }; ready?: boolean }
const obj = (name: string, ready: boolean): Obj => ({ metadata: { namespace: "ns", name }, ready });
const allReady = (names: string[]) => (objects: ReadonlyMap<string, Obj>, deleted: ReadonlySet<string>) => {
    const ready = names.filter((n) => objects.get(`ns/${n}`)?.ready);
    return { ready, deleted: [...deleted], done: ready.length === names.length };
};
const key = (o: Obj) => `${o.metadata.namespace}/${o.metadata.name}`;

describe("watchUntil", () => {
    it("reads the initial listing and the changes from one kubectl process, and stops it when done", async () => {
        const k = fakeKubectl([{
            match: ["--watch"],
            hold: true,
            events: [
                { type: "ADDED", object: obj("a", false) },
                { type: "ADDED", object: obj("b", true) },
                { type: "MODIFIED", object: obj("a", true) },
            ],
        }]);
        const before = spawnCounter.kubectl;
        const r = await watchUntil({ binary: k.binary, kubeconfig: "/k", context: "c" }, ["get", "deployments", "-A"], { key, evaluate: allReady(["a", "b"]), timeoutMs: 10_000 });
        assert.equal(r.timedOut, false);
        assert.deepEqual(r.state.ready, ["a", "b"]);
        assert.equal(r.watches, 1);
        assert.equal(spawnCounter.kubectl - before, 1, "one process for the whole wait");
        assert.deepEqual(k.runs().map((r) => r.args), [["--kubeconfig", "/k", "--context", "c", "get", "deployments", "-A", "--watch", "--output-watch-events", "-o", "json"]]);
    });

    it("starts the watch again when the server ends it, keeping what it saw", async () => {
        const k = fakeKubectl([
            { match: ["--watch"], nth: 0, events: [{ type: "ADDED", object: obj("a", true) }, { type: "ADDED", object: obj("b", false) }] },
            { match: ["--watch"], hold: true, events: [{ type: "ADDED", object: obj("b", true) }] },
        ]);
        const r = await watchUntil({ binary: k.binary }, ["get", "deployments", "-A"], { key, evaluate: allReady(["a", "b"]), timeoutMs: 10_000 });
        assert.equal(r.timedOut, false);
        assert.equal(r.watches, 2);
    });

    it("reports deleted objects to evaluate", async () => {
        const k = fakeKubectl([{ match: ["--watch"], hold: true, events: [{ type: "ADDED", object: obj("a", false) }, { type: "DELETED", object: obj("a", false) }] }]);
        const r = await watchUntil({ binary: k.binary }, ["get", "deployments"], {
            key,
            evaluate: (objects, deleted) => ({ deleted: [...deleted], seen: objects.size, done: deleted.size > 0 }),
            timeoutMs: 10_000,
        });
        assert.deepEqual(r.state, { deleted: ["ns/a"], seen: 0, done: true });
    });

    it("times out with the last state, and reports progress while waiting", async () => {
        const k = fakeKubectl([{ match: ["--watch"], hold: true, events: [{ type: "ADDED", object: obj("a", false) }] }]);
        const progress: number[] = [];
        const r = await watchUntil({ binary: k.binary }, ["get", "deployments"], {
            key, evaluate: allReady(["a"]), timeoutMs: 700, progressEveryMs: 200, onProgress: (_s, ms) => progress.push(ms),
        });
        assert.equal(r.timedOut, true);
        assert.deepEqual(r.state.ready, []);
        assert.ok(progress.length >= 2, `progress lines: ${progress.length}`);
    });

    it("gives up with kubectl's error after three failed starts in a row", async () => {
        const k = fakeKubectl([{ match: ["--watch"], events: [], code: 1, stderr: 'Error from server (Forbidden): deployments.apps is forbidden: User "u" cannot watch resource\n' }]);
        await assert.rejects(
            watchUntil({ binary: k.binary }, ["get", "deployments", "-A"], { key, evaluate: allReady(["a"]), timeoutMs: 20_000 }),
            (e: unknown) => e instanceof ToolError && /failed 3 times in a row/.test(e.message) && /cannot watch resource/.test(e.message),
        );
        assert.equal(k.runs().length, 3);
    });

    it("refreshes side inputs before accepting a done state, and waits on when they say more is needed", async () => {
        const k = fakeKubectl([{
            match: ["--watch"],
            hold: true,
            gapMs: 150,
            events: [{ type: "ADDED", object: obj("a", true) }, { type: "ADDED", object: obj("b", true) }, { type: "ADDED", object: obj("c", true) }],
        }]);
        let wanted = ["a"];
        let refreshes = 0;
        const r = await watchUntil({ binary: k.binary }, ["get", "configmaps", "-A"], {
            key,
            evaluate: (objects, deleted) => allReady(wanted)(objects, deleted),
            refresh: async () => {
                refreshes++;
                wanted = ["a", "b", "c"]; // namespaces appeared meanwhile
            },
            timeoutMs: 10_000,
        });
        assert.deepEqual(r.state.ready, ["a", "b", "c"], "not done on the stale list that wanted only a");
        assert.ok(refreshes >= 2, `refreshes: ${refreshes}`);
    });

    it("is done at once when there is nothing to wait for", async () => {
        const k = fakeKubectl([{ match: ["--watch"], hold: true, events: [] }]);
        const r = await watchUntil({ binary: k.binary }, ["get", "deployments"], { key, evaluate: () => ({ done: true }), timeoutMs: 10_000 });
        assert.equal(r.timedOut, false);
    });
});
