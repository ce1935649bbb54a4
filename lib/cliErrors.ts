// What the driver (scripts/ca.ts) prints when the Pulumi CLI fails under it. The Automation API's
// CommandError message is a dump of the command result (`code: -2 stdout: stderr: … err?: …`),
// with the CLI's whole output in it twice; a person needs the CLI's `error:` lines, once.
import { CommandError } from "@pulumi/pulumi/automation";

/** The CLI's stderr inside a CommandError's message, or the message itself. */
function cliStderr(message: string): string {
    const m = /\n stderr: ([\s\S]*?)(?:\n err\?: [\s\S]*)?$/.exec(message);
    return m ? m[1] : message;
}

const indentOf = (line: string): number => line.length - line.trimStart().length;

/**
 * The `error:` lines of the CLI's output, each with the more indented lines that continue it
 * (a refusal's detail lines), each block once, in order. Empty when there is none.
 */
export function cliErrorLines(message: string): string[] {
    const lines = cliStderr(message).split("\n");
    const blocks: string[] = [];
    for (let i = 0; i < lines.length; i++) {
        if (!/^\s*error: /.test(lines[i])) {
            continue;
        }
        const indent = indentOf(lines[i]);
        const block = [lines[i].trim()];
        while (i + 1 < lines.length && lines[i + 1].trim() !== "" && indentOf(lines[i + 1]) > indent && !/^\s*error: /.test(lines[i + 1])) {
            block.push(`  ${lines[++i].trim()}`);
        }
        blocks.push(block.join("\n"));
    }
    return [...new Set(blocks)];
}

/**
 * The text for a person: the CLI's `error:` lines of a failed command (or the message of any
 * other error), and how to see everything. `verbose` gives the whole dump.
 */
export function describeFailure(err: Error, verbose = false): string {
    if (verbose || !(err instanceof CommandError)) {
        return err.message;
    }
    const errors = cliErrorLines(err.message);
    const text = errors.length > 0 ? errors.join("\n") : cliStderr(err.message).trim().split("\n").filter(Boolean).pop() ?? err.message;
    return `${text}\n(the pulumi CLI failed; --verbose prints its whole output)`;
}
