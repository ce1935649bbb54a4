// A change the program refuses (bad config, an unsafe rotation step, a cluster that cannot take
// it) is thrown before any resource is registered: the engine then fails the update and touches
// nothing. (Logging an error and returning instead is NOT safe: the engine then takes the empty
// program as the desired state and deletes every resource. The end-to-end test saw it.)
//
// When the program runs inline in a Node process (Automation API: the rotate driver, the tests),
// the Pulumi runtime leaves a few internal promises rejected with that same error after the engine
// has reported it; Node would treat them as unhandled rejections and crash. Errors are marked, and
// a process that runs programs inline drops the marked ones and keeps every other rejection fatal.
//
// A refusal is thrown as a pulumi.RunError: the Node runtime (the language host's run.js and the
// Automation API's inline server alike) prints a RunError's message alone, and any other error as
// "Unhandled exception" with its JavaScript stack. The message names the config key or the
// Kubernetes object to fix; the stack would only bury it. Programming errors (TypeError, …) keep
// their stack: those are bugs to report.
import * as pulumi from "@pulumi/pulumi";

const REFUSAL = Symbol.for("istio-ca.refusal");
const BUGS = [TypeError, ReferenceError, RangeError, SyntaxError, EvalError, URIError];

/** The error the program throws for `err`: a marked RunError with the same message, or a marked bug. */
export function asRefusal(err: unknown): unknown {
    if (!(err instanceof Error) || BUGS.some((bug) => err.constructor === bug)) {
        return markRefusal(err);
    }
    const refusal = new pulumi.RunError(err.message, { cause: err });
    refusal.name = err.name;
    return markRefusal(refusal);
}

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
