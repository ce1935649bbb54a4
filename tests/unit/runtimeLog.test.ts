import { test } from "node:test";
import assert from "node:assert/strict";
import * as sdkLog from "@pulumi/pulumi/log";
import { withholdRpcResponsesFromDebugLog, withoutRpcResponse } from "../../program/runtimeLog";

// The shapes of @pulumi/pulumi's runtime debug lines (runtime/resource.js, invoke.js; the same in 3.248 and 3.276).
const SECRET = "MHcCAQEEIB3bI-not-a-real-key";

test("the response an RPC debug line quotes is withheld; the rest of the line stays", () => {
    for (const line of [
        `RegisterResource RPC finished: resource:cacerts-secret[kubernetes:core/v1:Secret]; err: null, resp: urn:x,,${SECRET}`,
        `ReadResource RPC finished: resource:root-stack[pulumi:pulumi:StackReference]#...; err: null, resp: ${SECRET}`,
        `RegisterResourceOutputs RPC finished: urn=urn:x; err: null, resp: ${SECRET}`,
        `Invoke RPC finished: tok=pulumi:pulumi:getResource; err: null, resp: ${SECRET}`,
    ]) {
        const out = withoutRpcResponse(line);
        assert.doesNotMatch(out, new RegExp(SECRET));
        assert.equal(out.slice(0, line.indexOf("resp: ")), line.slice(0, line.indexOf("resp: ")));
        assert.match(out, /resp: \[withheld by istio-ca/);
    }
    const other = "Registering resource: t=tls:index/privateKey:PrivateKey, name=root-v1-key, custom=true, remote=false";
    assert.equal(withoutRpcResponse(other), other);
});

test("installed once, on the runtime's debug logger (the end-to-end test sees the runtime's own lines withheld)", async () => {
    const mutable = sdkLog as unknown as { debug: (msg: string) => Promise<void> };
    const original = mutable.debug;
    const seen: string[] = [];
    mutable.debug = async (msg: string) => { seen.push(msg); };
    try {
        withholdRpcResponsesFromDebugLog();
        withholdRpcResponsesFromDebugLog();
        await mutable.debug(`RegisterResource RPC finished: r; err: null, resp: ${SECRET}`);
        assert.equal(seen.length, 1, "wrapped once");
        assert.doesNotMatch(seen[0], new RegExp(SECRET));
    } finally {
        mutable.debug = original;
    }
});
