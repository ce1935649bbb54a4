// What a step prints, bounded whatever the mesh size. The command provider (upstream
// pulumi-command) reads a step's output with a line scanner limited to 64 KiB: after a longer
// line it stops reading, the step blocks on a full pipe and `pulumi up` never ends. The output is
// also kept in the state. So: no line over MAX_LINE bytes, no more than MAX_TOTAL bytes in all
// (stdout and stderr together); long lists are counts, the first few names, and a file.

export const MAX_LINE = 4096;
export const MAX_TOTAL = 64 * 1024;
/** Room kept for the failure report and the summary line when progress is cut. */
const RESERVED = 16 * 1024;
/** How many names a summary or message lists before "… and N more". */
export const FIRST_NAMES = 10;

const bytes = (s: string): number => Buffer.byteLength(s, "utf8");

/** The line itself, or its head and how much was cut, within MAX_LINE bytes. */
export function clipLine(line: string, max = MAX_LINE): string {
    if (bytes(line) <= max) {
        return line;
    }
    const note = ` … (${bytes(line)} bytes, cut at ${max})`;
    let head = Buffer.from(line, "utf8").subarray(0, max - bytes(note)).toString("utf8");
    head = head.replace(/\uFFFD$/, ""); // a character cut in half
    return head + note;
}

/** `a, b, c, … and N more` (at most FIRST_NAMES names). */
export function firstNames(names: readonly string[], n = FIRST_NAMES): string {
    const shown = names.slice(0, n).join(", ");
    return names.length > n ? `${shown}, … and ${names.length - n} more` : shown;
}

/** Writes lines to stdout/stderr within the limits; progress stops before a report would not fit. */
export class StepOutput {
    private written = 0;
    private dropped = 0;

    constructor(private readonly write: (stream: "stdout" | "stderr", text: string) => void) {}

    /** Progress line (stderr); dropped, and counted, once the budget for progress is spent. */
    progress(line: string): void {
        const text = clipLine(line) + "\n";
        if (this.written + bytes(text) > MAX_TOTAL - RESERVED) {
            this.dropped++;
            return;
        }
        this.emit("stderr", text);
    }

    /** A multi-line report (stderr): every line clipped, the head kept within what is left. */
    report(message: string): void {
        this.noteDropped();
        const lines = message.split("\n").map((l) => clipLine(l));
        const room = MAX_TOTAL - this.written - MAX_LINE; // the summary line may still follow
        const kept: string[] = [];
        let size = 0;
        for (const [i, line] of lines.entries()) {
            const tail = `… ${lines.length - i} more line(s) of this report cut (64 KiB output limit)`;
            if (size + bytes(line) + 1 + bytes(tail) + 1 > room) {
                kept.push(tail);
                break;
            }
            kept.push(line);
            size += bytes(line) + 1;
        }
        this.emit("stderr", kept.join("\n") + "\n");
    }

    /** The last stdout line: one JSON object, which must fit in MAX_LINE (the caller keeps it small). */
    summary(value: object): void {
        this.noteDropped();
        const line = JSON.stringify(value);
        if (bytes(line) > MAX_LINE) {
            throw new Error(`step summary of ${bytes(line)} bytes is over the ${MAX_LINE}-byte line limit`);
        }
        this.emit("stdout", line + "\n");
    }

    get bytesWritten(): number {
        return this.written;
    }

    private noteDropped(): void {
        if (this.dropped > 0) {
            const n = this.dropped;
            this.dropped = 0;
            this.emit("stderr", `(${n} progress line(s) not printed: 64 KiB output limit)\n`);
        }
    }

    private emit(stream: "stdout" | "stderr", text: string): void {
        this.written += bytes(text);
        this.write(stream, text);
    }
}
