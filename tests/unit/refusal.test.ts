import { test } from "node:test";
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { asRefusal, isRefusal, tolerateRefusalEchoes } from "../../plan/refusal";
import { ConfigError } from "../../plan/config";

test("a refusal becomes a RunError with the same message (the runtime prints it without a stack)", () => {
    const err = new ConfigError(["istio-ca:keyVersion must be between 0 and 1000000"]);
    const thrown = asRefusal(err) as Error;
    assert.ok(pulumi.RunError.isInstance(thrown));
    assert.ok(isRefusal(thrown));
    assert.equal(thrown.message, err.message);
    assert.equal(thrown.name, "ConfigError");
    assert.equal(thrown.cause, err);
});

test("a programming error keeps its class and stack (a bug to report), and is still marked", () => {
    const bug = new TypeError("Cannot read properties of undefined");
    const thrown = asRefusal(bug);
    assert.equal(thrown, bug);
    assert.ok(!pulumi.RunError.isInstance(thrown));
    assert.ok(isRefusal(thrown));
});

test("echoes of a refusal reach no unhandledRejection listener, not even one added later; other rejections reach them all", async () => {
    // signal-exit (under the Automation API's execa) saves process.emit when it loads, replaces it,
    // and puts the saved one back when its last child exits: possibly one saved before this.
    const savedBySignalExit = process.emit;
    tolerateRefusalEchoes();
    tolerateRefusalEchoes(); // idempotent: every e2e file calls it
    // The test runner's own listeners are set aside: the bug below is emitted on purpose.
    const runners = process.listeners("unhandledRejection");
    process.removeAllListeners("unhandledRejection");
    const seen: unknown[] = [];
    // Added after tolerateRefusalEchoes(), as the Automation API's language server adds its own per run.
    const later = (reason: unknown): void => void seen.push(reason);
    process.on("unhandledRejection", later);
    try {
        const refusal = asRefusal(new Error("istio-ca:restartConcurrency must be between 1 and 200, got 0"));
        void Promise.reject(refusal); // a real echo: no handler attached
        await new Promise((resolve) => setImmediate(resolve));
        assert.deepEqual(seen, [], "the echo reached a listener");
        process.emit = function (this: unknown, ...args: unknown[]) {
            return (savedBySignalExit as (...a: unknown[]) => boolean).apply(this, args);
        } as typeof process.emit;
        void Promise.reject(refusal);
        await new Promise((resolve) => setImmediate(resolve));
        process.emit = savedBySignalExit;
        void Promise.reject(refusal);
        await new Promise((resolve) => setImmediate(resolve));
        assert.deepEqual(seen, [], "an echo reached a listener after process.emit was replaced");
        const bug = new Error("a rejection nobody handled");
        assert.equal(process.emit("unhandledRejection", bug, Promise.resolve()), true);
        assert.deepEqual(seen, [bug], "other rejections still reach the listeners");
    } finally {
        process.off("unhandledRejection", later);
        runners.forEach((l) => process.on("unhandledRejection", l));
    }
});
