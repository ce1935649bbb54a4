// The documentation says what the code does: Pulumi.yaml is the config schema, and its defaults,
// the defaults in plan/config.ts and the table in docs/config.md must agree; every link between
// README.md and docs/ leads somewhere.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { parseConfig } from "../../plan/config";

const ROOT = path.resolve(__dirname, "../../..");
const read = (f: string): string => fs.readFileSync(path.join(ROOT, f), "utf8");

function sourceFiles(dir: string): string[] {
    return fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? sourceFiles(`${dir}/${e.name}`) : e.name.endsWith(".ts") ? [`${dir}/${e.name}`] : []);
}

type Declared = Record<string, { type: string; default?: unknown }>;
const declared = (parse(read("Pulumi.yaml")) as { config: Declared }).config;

/** `istio-ca:a` / `b` | x / y: the default the table gives each key (a single default applies to all). */
export function tableDefaults(markdown: string): Map<string, string> {
    const out = new Map<string, string>();
    for (const line of markdown.split("\n")) {
        const cells = line.split("|").map((c) => c.trim());
        if (cells.length < 4 || !cells[1].startsWith("`istio-ca:")) continue;
        const keys = [...cells[1].matchAll(/`(?:istio-ca:)?(\w+)`/g)].map((m) => m[1]);
        const defaults = cells[2].split(" / ");
        keys.forEach((k, i) => out.set(k, (defaults.length === keys.length ? defaults[i] : cells[2]).replace(/`/g, "")));
    }
    return out;
}

/** Relative links of a markdown file that lead nowhere (file or heading missing). */
export function deadLinks(file: string, markdown: string, readFile: (f: string) => string | undefined): string[] {
    const slug = (h: string): string => h.trim().toLowerCase().replace(/[^\w\- ]/g, "").replace(/ /g, "-");
    const dead: string[] = [];
    for (const [, target] of markdown.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^https?:/.test(target)) continue;
        const [rel, anchor] = target.split("#");
        const dest = rel ? path.posix.normalize(path.posix.join(path.posix.dirname(file), rel)) : file;
        const text = rel ? readFile(dest) : markdown;
        if (text === undefined) dead.push(`${file}: ${target} (no ${dest})`);
        else if (anchor && !(text.match(/^#{1,4} .+$/gm) ?? []).some((h) => slug(h.replace(/^#+ /, "")) === anchor)) dead.push(`${file}: ${target} (no heading)`);
    }
    return dead;
}

describe("docs agree with the code", () => {
    it("the defaults in Pulumi.yaml are the defaults in plan/config.ts", () => {
        const base = { clusterName: "c" } as Record<string, string>;
        const implicit = parseConfig((k) => base[k]);
        for (const [key, spec] of Object.entries(declared)) {
            if (key === "clusterName" || spec.default === undefined) continue;
            const value = typeof spec.default === "string" ? spec.default : JSON.stringify(spec.default);
            const explicit = parseConfig((k) => (k === key ? value : base[k]));
            assert.deepEqual(explicit, implicit, `istio-ca:${key}: Pulumi.yaml's default ${value} is not the code's`);
        }
    });

    it("docs/config.md has a row for every key Pulumi.yaml declares, with the same default", () => {
        const table = tableDefaults(read("docs/config.md"));
        for (const [key, spec] of Object.entries(declared)) {
            assert.ok(table.has(key), `docs/config.md has no row for istio-ca:${key}`);
            const d = spec.default;
            if (d === undefined || d === "" || (Array.isArray(d) && d.length === 0)) continue;
            assert.match(table.get(key)!, new RegExp(`(^|\\W)${String(d).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(\\W|$)`), `docs/config.md's default of istio-ca:${key}`);
        }
        for (const key of table.keys()) {
            assert.ok(key in declared || key === "rootKeyPem", `docs/config.md documents istio-ca:${key}, which Pulumi.yaml does not declare`);
        }
    });

    it("the table check and the link check can fail", () => {
        const t = tableDefaults("| `istio-ca:a` / `b` | 1 / 2 | x |\n| `istio-ca:c` / `d` | true | y |");
        assert.deepEqual([...t], [["a", "1"], ["b", "2"], ["c", "true"], ["d", "true"]]);
        const files: Record<string, string> = { "docs/x.md": "# Title\n## Other part" };
        assert.deepEqual(deadLinks("README.md", "[a](docs/x.md#other-part) [b](docs/x.md#nope) [c](docs/y.md) [d](#here)\n## Here", (f) => files[f]),
            ["README.md: docs/x.md#nope (no heading)", "README.md: docs/y.md (no docs/y.md)"]);
    });

    it("what the code and deploy/ refer readers to exists: docs/ files, README sections", () => {
        const sources = [...["program", "components", "plan", "steps", "kube", "common", "cli", "dev", "lib"].flatMap((d) => sourceFiles(d)), "deploy/rbac.yaml", "deploy/rbac-first-cacerts.yaml", "deploy/rbac-proxy-checks.yaml"];
        const headings = (read("README.md").match(/^#{2,4} .+$/gm) ?? []).map((h) => h.replace(/^#+ /, "").toLowerCase());
        const wrong: string[] = [];
        for (const f of sources) {
            const text = read(f);
            for (const [, doc] of text.matchAll(/\b(docs\/[\w-]+\.md)/g)) {
                if (!fs.existsSync(path.join(ROOT, doc))) wrong.push(`${f}: ${doc} does not exist`);
            }
            for (const [, section] of text.matchAll(/README[,:] "?([A-Z][\w ]+)/g)) {
                if (!headings.some((h) => h.startsWith(section.trim().toLowerCase()))) wrong.push(`${f}: README has no section "${section.trim()}"`);
            }
        }
        assert.deepEqual(wrong, []);
    });

    it("every link in README.md and docs/ leads to a file and heading that exist", () => {
        const files = ["README.md", ...fs.readdirSync(path.join(ROOT, "docs")).map((f) => `docs/${f}`)];
        const readFile = (f: string): string | undefined => (fs.existsSync(path.join(ROOT, f)) ? read(f) : undefined);
        assert.deepEqual(files.flatMap((f) => deadLinks(f, read(f), readFile)), []);
    });
});
