// The driver's arguments and --help (node:util parseArgs): errors name the argument and the usage.
import { parseArgs as parseCliArgs } from "node:util";


export interface CaOptions {
    command: "preview" | "up" | "rotate";
    stacks: string[];
    to?: number;
    /** On failure, the Automation API's whole error rather than the CLI's `error:` lines. */
    verbose?: boolean;
    /** Extra environment for the CLI (tests pass their toolchain and backend here). */
    envVars?: Record<string, string>;
    /** Where engine output goes; default stderr, prefixed with the stack name. */
    output?: (stack: string, line: string) => void;
    /** Where the driver's own lines go (e.g. what it finds after an interrupted up); default stderr. */
    log?: (line: string) => void;
}

export const USAGE = "usage: npm run ca -- <preview|up|rotate> --stack NAME [--stack NAME …] [--to N] [--verbose]";

export const HELP = `${USAGE}

Runs this project's program for each stack (one stack per cluster) through the Pulumi Automation
API: it needs the pulumi CLI on PATH, not its Node.js language plugin.

  preview   what an up would change; applies nothing
  up        applies the stack's config: cacerts, then the ordered restarts and checks
  rotate    the zero-downtime root rotation to root N (--to; default: the next one): phases
            1 'trust', 2 'sign', 3 'complete', one up each, walked phase by phase across all the
            stacks named; after a failed phase the same command resumes

  -s, --stack NAME   a stack; repeat it for the clusters of one mesh
      --to N         rotate: the root generation to end on
  -v, --verbose      on failure, print the pulumi CLI's whole output
  -h, --help         this text

A first run against your own cluster, in order:
  1. Stack: copy Pulumi.dev.yaml to Pulumi.NAME.yaml and set istio-ca:clusterName and
     istio-ca:kubeContext (docs/config.md). The first run creates stack NAME from it.
  2. Passphrase: export PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE). It encrypts the
     stack's secrets, the CA keys among them; keep it: the state cannot be read without it.
  3. Backend: export PULUMI_BACKEND_URL, where the state lives: e.g. s3://BUCKET/istio-ca,
     file://$HOME/.istio-ca-state (a directory that exists), or file://./.pulumi-state (this
     checkout only, git-ignored).
  4. npm run ca -- preview --stack NAME, then npm run ca -- up --stack NAME.
`;

/** The command line, or "help". Throws with a one-line message on a bad one. */
export function parseArgs(argv: string[]): CaOptions | "help" {
    const { values, positionals } = parseCliArgs({
        args: argv,
        allowPositionals: true,
        options: {
            stack: { type: "string", short: "s", multiple: true },
            to: { type: "string" },
            verbose: { type: "boolean", short: "v" },
            help: { type: "boolean", short: "h" },
        },
    });
    if (values.help) {
        return "help";
    }
    const [command, ...extra] = positionals;
    if (command !== "preview" && command !== "up" && command !== "rotate") {
        throw new Error(command === undefined ? "name a command: preview, up or rotate" : `unknown command ${JSON.stringify(command)}: preview, up or rotate`);
    }
    if (extra.length > 0) {
        throw new Error(`unexpected argument ${JSON.stringify(extra[0])}`);
    }
    const stacks = values.stack ?? [];
    if (stacks.length === 0) {
        throw new Error("name at least one stack: --stack NAME");
    }
    if (values.to !== undefined && !/^\d+$/.test(values.to)) {
        throw new Error(`--to takes a root generation (a whole number), not ${JSON.stringify(values.to)}`);
    }
    if (values.to !== undefined && command !== "rotate") {
        throw new Error("--to is for rotate only");
    }
    return { command, stacks, ...(values.to !== undefined ? { to: Number(values.to) } : {}), ...(values.verbose ? { verbose: true } : {}) };
}
