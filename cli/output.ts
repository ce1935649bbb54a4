// What the driver prints: its own progress lines (on stderr) and the engine's output, prefixed by stack.
import { projectRoot } from "../common/stackDir";
import { CaOptions } from "./caOptions";

export const PROJECT_ROOT = projectRoot();

const started = Date.now();

export const say = (line: string): void => {
    process.stderr.write(`[ca +${((Date.now() - started) / 1000).toFixed(0)}s] ${line}\n`);
};

export function summary(changes: Record<string, number> | undefined): string {
    return Object.entries(changes ?? {}).filter(([op]) => op !== "same").map(([op, n]) => `${n} ${op}`).join(", ") || "no changes";
}

/** Where a stack's engine output goes: opts.output, else stderr with every line prefixed by the stack name. */
export function engineOutput(stack: string, opts: CaOptions): (chunk: string) => void {
    if (opts.output) {
        return (chunk) => opts.output!(stack, chunk);
    }
    // The engine's output arrives in chunks of several lines, or of part of one.
    let atLineStart = true;
    return (chunk) => {
        process.stderr.write(`${atLineStart ? `  ${stack} | ` : ""}${chunk.replace(/\n(?=[\s\S])/g, `\n  ${stack} | `)}`);
        atLineStart = chunk.endsWith("\n");
    };
}
