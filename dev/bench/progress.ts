

// Progress and results

const T0 = Date.now();

export const logLines: string[] = [];

export function progress(line: string): void {
    const l = `[bench +${((Date.now() - T0) / 1000).toFixed(1)}s] ${line}`;
    logLines.push(l);
    process.stderr.write(l + "\n");
}

export const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
