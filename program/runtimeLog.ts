// The Pulumi Node.js runtime (@pulumi/pulumi 3.248 to 3.276, runtime/resource.js and invoke.js) sends the
// engine a debug message after every resource RPC: "RegisterResource RPC finished: …; resp:
// ${innerResponse}", the protobuf response stringified, secret outputs in plaintext. The engine
// prints those with `pulumi up --debug` and writes them to its log from `--verbose 3` on: the
// intermediate's and the roots' private keys (tls PrivateKey outputs, cacerts' data, a root
// stack's `roots` read through a StackReference) ended up in both (seen by
// tests/e2e/badInput.test.ts). The runtime offers no switch for it, so the program replaces the
// runtime's debug logger with one that keeps those lines but drops the response they quote.
import * as sdkLog from "@pulumi/pulumi/log";

type DebugLogger = typeof sdkLog.debug;

const WITHHELD = "resp: [withheld by istio-ca: RPC responses carry secret values in plaintext]";
const INSTALLED = Symbol.for("istio-ca.rpc-responses-withheld");

/** A runtime debug message without the RPC response it quotes (other messages unchanged). */
export function withoutRpcResponse(message: string): string {
    const finished = message.indexOf(" RPC finished");
    if (finished < 0) {
        return message;
    }
    const resp = message.indexOf("resp: ", finished);
    return resp < 0 ? message : message.slice(0, resp) + WITHHELD;
}

/**
 * Installs the filter on the runtime's debug logger (idempotent). The runtime calls it through
 * its module object (`log.debug(…)`), so replacing the export reaches every call site.
 */
export function withholdRpcResponsesFromDebugLog(): void {
    const mutable = sdkLog as unknown as { debug: DebugLogger & { [INSTALLED]?: true } };
    if (mutable.debug[INSTALLED]) {
        return;
    }
    const original = mutable.debug;
    const filtered: DebugLogger & { [INSTALLED]?: true } = (msg, ...rest) => original(withoutRpcResponse(msg), ...rest);
    filtered[INSTALLED] = true;
    mutable.debug = filtered;
}
