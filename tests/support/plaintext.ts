/** Paths (a.b[2].c) of every string in `value` that matches `pattern`: where a secret leaked. */
export function findMatches(value: unknown, pattern: RegExp, at = "$"): string[] {
    if (typeof value === "string") {
        return pattern.test(value) ? [at] : [];
    }
    if (Array.isArray(value)) {
        return value.flatMap((v, i) => findMatches(v, pattern, `${at}[${i}]`));
    }
    if (value !== null && typeof value === "object") {
        return Object.entries(value).flatMap(([k, v]) => findMatches(v, pattern, `${at}.${k}`));
    }
    return [];
}
