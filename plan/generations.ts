// Root generations as sets of numbers: generation 0 is istiod's own self-signed CA
// (istio-ca-secret); 1, 2, … are roots this program manages.

export function sorted(xs: Iterable<number>): number[] {
    return [...new Set(xs)].sort((a, b) => a - b);
}

export function sameSet(a: readonly number[], b: readonly number[]): boolean {
    const sa = sorted(a);
    const sb = sorted(b);
    return sa.length === sb.length && sa.every((x, i) => x === sb[i]);
}

export function isGeneration(n: unknown): n is number {
    return typeof n === "number" && Number.isInteger(n) && n >= 0;
}

/** How outputs and records key a root generation (`v1`, `v2`): trustedRoots, recordedRoots, a root stack's roots. */
export const generationKey = (generation: number): string => `v${generation}`;

/** The generation of a `v<N>` key (NaN for another key). */
export const generationOfKey = (key: string): number => (/^v\d+$/.test(key) ? Number(key.slice(1)) : NaN);
