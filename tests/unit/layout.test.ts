// The tree reads as the procedure, and its imports only go down:
//   cli → program → components → plan → steps → kube → common
// (index.ts and lib/cli/main.ts, the two entry points, sit on program and steps). So the step
// runtime (steps/, what the Command resources run) never loads program-time code; it gets what it
// needs through its declared environment (steps/stepEnv.ts). Production never imports the test rig
// (dev/, tests/). Checked over the sources, type-only imports included.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";

const ROOT = path.resolve(__dirname, "../../..");

/** Lower layers first; a file may import its own layer and the ones below it. */
export const LAYERS = ["common", "kube", "steps", "plan", "components", "program", "cli"] as const;
const ENTRY_POINTS: Record<string, (typeof LAYERS)[number]> = { "index.ts": "program", "lib/cli/main.ts": "steps" };

function layerOf(file: string): number | undefined {
    const layer = ENTRY_POINTS[file] ?? file.split("/")[0];
    const i = LAYERS.indexOf(layer as (typeof LAYERS)[number]);
    return i < 0 ? undefined : i;
}

function sources(dir: string): string[] {
    return fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
        const rel = path.posix.join(dir, e.name);
        if (e.isDirectory()) return sources(rel);
        return e.name.endsWith(".ts") ? [rel] : [];
    });
}

/** The project files a source file imports (relative specifiers, static, dynamic and require). */
export function importsOf(file: string, text: string): string[] {
    const specs = [...text.matchAll(/(?:from|import|require)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)].map((m) => m[1]);
    return specs.map((s) => path.posix.normalize(path.posix.join(path.posix.dirname(file), s)));
}

/** "a imports b" for every arrow that goes up a layer or into the rig. */
export function upwardImports(files: Record<string, string>): string[] {
    const wrong: string[] = [];
    for (const [file, text] of Object.entries(files)) {
        const from = layerOf(file);
        if (from === undefined) continue; // dev/ and tests/ may use anything
        for (const target of importsOf(file, text)) {
            const to = layerOf(target === "index" ? "index.ts" : target + ".ts");
            if (to === undefined || to > from) wrong.push(`${file} imports ${target}`);
        }
    }
    return wrong;
}

const production = ["index.ts", ...LAYERS.flatMap((l) => sources(l)), ...sources("lib")];

describe("layout: imports only go down", () => {
    it("every production file is in a layer", () => {
        assert.deepEqual(production.filter((f) => layerOf(f) === undefined), []);
        const topLevel = fs.readdirSync(ROOT).filter((f) => f.endsWith(".ts"));
        assert.deepEqual(topLevel, ["index.ts"], "the only source at the top is index.ts");
    });

    it("no arrow goes up a layer or into dev/ and tests/", () => {
        const files = Object.fromEntries(production.map((f) => [f, fs.readFileSync(path.join(ROOT, f), "utf8")]));
        assert.deepEqual(upwardImports(files), []);
    });

    it("the check sees an upward, a rig and a type-only import", () => {
        assert.deepEqual(upwardImports({
            "steps/x.ts": 'import type { IstioCaConfig } from "../plan/config";\nimport { a } from "./y";',
            "plan/y.ts": 'import { startCluster } from "../tests/harness/cluster";\nconst m = require("../kube/kubectl");',
            "kube/z.ts": 'const p = await import("../cli/ca");',
        }), ["steps/x.ts imports plan/config", "plan/y.ts imports tests/harness/cluster", "kube/z.ts imports cli/ca"]);
    });
});
