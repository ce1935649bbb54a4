// What the driver (cli/ca.ts) prints when the Pulumi CLI fails under it. The Automation API's
// CommandError message is a dump of the command result (`code: -2 stdout: stderr: … err?: …`),
// with the CLI's whole output in it twice; a person needs the CLI's `error:` lines, once.
import { CommandError } from "@pulumi/pulumi/automation";

/** The CLI's stderr inside a CommandError's message, or the message itself. */
function cliStderr(message: string): string {
    const m = /\n stderr: ([\s\S]*?)(?:\n err\?: [\s\S]*)?$/.exec(message);
    return m ? m[1] : message;
}

const indentOf = (line: string): number => line.length - line.trimStart().length;

const DIAGNOSTIC = /^\s*(error|warning|info|debug): /;
/** The CLI's own summary of a failed run, said besides the errors that made it fail. */
const GENERIC = /^error: (update|preview|refresh|destroy) failed$/;

/**
 * The `error:` lines of the CLI's output, each with the lines that continue it (indented at least
 * as deep, up to a blank line: a refusal's details, a failed step's output), each block once, in
 * order, without the CLI's generic `error: update failed` when there is more. Empty when none.
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
        while (i + 1 < lines.length && lines[i + 1].trim() !== "" && indentOf(lines[i + 1]) >= indent && !DIAGNOSTIC.test(lines[i + 1])) {
            block.push(lines[++i].slice(indent)); // the message as it was written
        }
        blocks.push(block.join("\n"));
    }
    const unique = [...new Set(blocks)];
    const specific = unique.filter((b) => !GENERIC.test(b));
    return specific.length > 0 ? specific : unique;
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

/** A command-line error for a person: node:util parseArgs' text without its advice on positionals that start with '-'. */
export const argumentError = (err: Error): string => err.message.replace(/\. To specify a positional argument[\s\S]*$/, "");
