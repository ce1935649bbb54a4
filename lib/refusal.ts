// A change the program refuses (bad config, an unsafe rotation step, a cluster that cannot take
// it) is thrown before any resource is registered: the engine then fails the update and touches
// nothing. (Logging an error and returning instead is NOT safe: the engine then takes the empty
// program as the desired state and deletes every resource. The end-to-end test saw it.)
//
// When the program runs inline in a Node process (Automation API: the rotate driver, the tests),
// the Pulumi runtime leaves a few internal promises rejected with that same error after the engine
// has reported it; Node would treat them as unhandled rejections and crash. Errors are marked, and
// a process that runs programs inline drops the marked ones and keeps every other rejection fatal.
const REFUSAL = Symbol.for("istio-ca.refusal");

export function markRefusal<T>(err: T): T {
    if (err !== null && typeof err === "object") {
        (err as Record<symbol, boolean>)[REFUSAL] = true;
    }
    return err;
}

export function isRefusal(err: unknown): boolean {
    return err !== null && typeof err === "object" && (err as Record<symbol, boolean>)[REFUSAL] === true;
}

/** In a process that runs the program inline: ignore the runtime's echoes of refusals, nothing else. */
export function tolerateRefusalEchoes(): void {
    const others = process.listeners("unhandledRejection");
    process.removeAllListeners("unhandledRejection");
    process.on("unhandledRejection", (reason, promise) => {
        if (isRefusal(reason)) {
            return;
        }
        if (others.length === 0) {
            throw reason;
        }
        for (const listener of others) {
            listener(reason, promise);
        }
    });
}
