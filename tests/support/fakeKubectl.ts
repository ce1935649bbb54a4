// A stand-in kubectl for unit tests of the steps: a small Node script answering by rules, so the
// real process path (spawn, stdout in chunks, exit codes, watches that stream and end) is
// exercised without a cluster. Every run's arguments (and the content of its `-f` file) are recorded.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface FakeKubectlRule {
    /** The rule applies when every one of these strings is among the arguments. */
    match: string[];
    /** Printed to stdout (e.g. `-o json` of a list). */
    stdout?: string;
    /** Watch events, printed one after another as `kubectl get --watch --output-watch-events -o json` does. */
    events?: object[];
    /** Pause between events (default 5 ms). */
    gapMs?: number;
    stderr?: string;
    code?: number;
    /** Keep running after the output (a watch the server has not ended). */
    hold?: boolean;
    /** Applies to the n-th matching run only (0-based); default: every run. */
    nth?: number;
}

export interface FakeKubectlRun {
    args: string[];
    /** Content of the file given with -f, if any. */
    file?: string;
}

export function fakeKubectl(rules: FakeKubectlRule[]): { binary: string; runs: () => FakeKubectlRun[] } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "istio-ca-fake-kubectl-"));
    fs.writeFileSync(path.join(dir, "rules.json"), JSON.stringify(rules));
    const binary = path.join(dir, "kubectl");
    fs.writeFileSync(binary, `#!${process.execPath}
const fs = require("fs"), path = require("path");
const dir = ${JSON.stringify(dir)};
const args = process.argv.slice(2);
const fi = args.indexOf("-f");
const file = fi >= 0 && args[fi + 1] !== "-" && fs.existsSync(args[fi + 1]) ? fs.readFileSync(args[fi + 1], "utf8") : undefined;
const log = path.join(dir, "runs.log");
// Another run may be appending meanwhile (batches run at once): a half-written last line is skipped.
const parse = (l) => { try { return [JSON.parse(l)]; } catch { return []; } };
const previous = fs.existsSync(log) ? fs.readFileSync(log, "utf8").split("\\n").filter(Boolean).flatMap(parse) : [];
fs.appendFileSync(log, JSON.stringify({ args, file }) + "\\n");
const rules = JSON.parse(fs.readFileSync(path.join(dir, "rules.json"), "utf8"));
const matches = (r, a) => r.match.every((m) => a.includes(m));
const rule = rules.find((r) => matches(r, args) && (r.nth === undefined || previous.filter((p) => matches(r, p.args)).length === r.nth));
if (!rule) { process.stderr.write("fake kubectl: no rule for " + args.join(" ") + "\\n"); process.exit(99); }
(async () => {
    if (rule.stdout) process.stdout.write(rule.stdout);
    for (const e of rule.events ?? []) {
        process.stdout.write(JSON.stringify(e, null, 4) + "\\n");
        await new Promise((r) => setTimeout(r, rule.gapMs ?? 5));
    }
    if (rule.stderr) process.stderr.write(rule.stderr);
    if (rule.hold) setInterval(() => {}, 1000); else process.exitCode = rule.code ?? 0;
})();
`, { mode: 0o755 });
    return {
        binary,
        runs: () => {
            const log = path.join(dir, "runs.log");
            return fs.existsSync(log) ? fs.readFileSync(log, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as FakeKubectlRun) : [];
        },
    };
}
