/** Runs `fn` over `items` with at most `limit` calls in flight; resolves in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
    const results = new Array<R>(items.length);
    let next = 0;
    const worker = async (): Promise<void> => {
        while (next < items.length) {
            const i = next++;
            results[i] = await fn(items[i], i);
        }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
    return results;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `check` until it reports done or `timeoutMs` passes. One call per interval, whatever the
 * number of objects checked: the check itself must read everything it needs in one list.
 */
export async function pollUntil<T extends { done: boolean }>(
    check: () => Promise<T>,
    opts: {
        timeoutMs: number;
        intervalMs: number;
        /** Wait at least as long as the last check took (a slow list is not re-issued back to back). */
        adaptive?: boolean;
        onProgress?: (state: T, elapsedMs: number) => void;
    },
): Promise<{ state: T; timedOut: boolean; elapsedMs: number }> {
    const start = Date.now();
    for (;;) {
        const checkStart = Date.now();
        const state = await check();
        const interval = opts.adaptive ? Math.max(opts.intervalMs, Date.now() - checkStart) : opts.intervalMs;
        const elapsedMs = Date.now() - start;
        if (state.done) {
            return { state, timedOut: false, elapsedMs };
        }
        if (elapsedMs >= opts.timeoutMs) {
            return { state, timedOut: true, elapsedMs };
        }
        opts.onProgress?.(state, elapsedMs);
        await sleep(Math.min(interval, Math.max(0, opts.timeoutMs - elapsedMs)));
    }
}
