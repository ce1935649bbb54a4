import { test } from "node:test";
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { asRefusal, isRefusal } from "../../plan/refusal";
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
