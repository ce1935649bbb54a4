// A change the program refuses (bad config, an unsafe rotation step, a cluster that cannot take
// it) is thrown before any resource is registered: the engine then fails the update and touches
// nothing. (Logging an error and returning instead is NOT safe: the engine then takes the empty
// program as the desired state and deletes every resource. The end-to-end test saw it.)
//
// When the program runs inline in a Node process (Automation API: the rotate driver, the tests),
// the Pulumi runtime leaves a few internal promises rejected with that same error after the engine
// has reported it; Node would treat them as unhandled rejections and crash, and the Automation
// API's language server would report each as a second error. Errors are marked, and a process that
// runs programs inline drops the marked ones and keeps every other rejection fatal (never done
// in the CLI's own language host, which reports a program's error from these rejections).
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

type Emit = (this: unknown, event: string | symbol, ...args: unknown[]) => boolean;
const FILTERED = Symbol.for("istio-ca.refusal-echo-filter");

/** `emit`, less the unhandledRejection events of refusals (reported as handled). */
function withoutRefusalEchoes(emit: Emit): Emit {
    const filtered: Emit = function (event, ...args) {
        if (event === "unhandledRejection" && isRefusal(args[0])) {
            return true; // handled: the engine already reported the thrown error once
        }
        return emit.call(this, event, ...args);
    };
    (filtered as unknown as Record<symbol, boolean>)[FILTERED] = true;
    return filtered;
}

/**
 * In a process that runs the program inline: drop the runtime's echoes of refusals before ANY
 * listener sees them, and nothing else. Filtering the event itself (not only adding a listener)
 * matters: the Automation API's language server adds its own unhandledRejection listener for each
 * run, after this, and logs every RunError it receives as an error diagnostic; with the engine's
 * report of the thrown error, one refusal showed as `2 errors`. `process.emit` becomes an accessor
 * because signal-exit (under the Automation API's execa) replaces it and later restores the one it
 * saw first: whatever is assigned, what is read is filtered.
 */
export function tolerateRefusalEchoes(): void {
    const proc = process as unknown as { emit: Emit };
    if ((proc.emit as unknown as Record<symbol, boolean>)[FILTERED]) {
        return;
    }
    let filtered = withoutRefusalEchoes(proc.emit);
    Object.defineProperty(process, "emit", {
        configurable: true,
        enumerable: true,
        get: () => filtered,
        set: (emit: Emit) => {
            filtered = (emit as unknown as Record<symbol, boolean>)[FILTERED] ? emit : withoutRefusalEchoes(emit);
        },
    });
}
