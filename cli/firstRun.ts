// A stack the driver (cli/ca.ts) is asked to run but that does not exist yet. A person with a
// Pulumi.<stack>.yaml in front of them expects it to be created; where its state goes and the
// passphrase that encrypts its secrets (the CA keys) are theirs to choose, so the driver never
// picks them: it says in one line what to set, in the order a person does it (README, "Running it
// against your cluster"; `npm run ca -- --help`).
import * as fs from "node:fs";
import { fileBackendDir } from "./interrupted";

/** The project's backend when PULUMI_BACKEND_URL is not set (Pulumi.yaml). */
export const PROJECT_BACKEND = "file://./.pulumi-state";

export interface MissingStack {
    stack: string;
    /** The environment the CLI runs with. */
    env: Readonly<Record<string, string | undefined>>;
    /** Whether Pulumi.<stack>.yaml exists beside Pulumi.yaml. */
    hasStackFile: boolean;
}

/** A Pulumi Cloud (or self-hosted service) backend keeps secrets with its own key: no passphrase. */
const isServiceBackend = (url: string | undefined): boolean => /^https?:\/\//.test(url ?? "");

/** Where the state goes, for messages. */
export const backendName = (env: MissingStack["env"]): string => env.PULUMI_BACKEND_URL || `${PROJECT_BACKEND} (Pulumi.yaml's default)`;

/** Why the missing stack cannot be created now, as one line saying what to do; undefined: create it. */
export function missingStackProblem({ stack, env, hasStackFile }: MissingStack): string | undefined {
    if (!hasStackFile) {
        return `stack ${stack} does not exist on ${backendName(env)}, and there is no Pulumi.${stack}.yaml to create it from: ` +
            `copy Pulumi.dev.yaml to Pulumi.${stack}.yaml and set its istio-ca:clusterName and istio-ca:kubeContext (or name an existing stack: pulumi stack ls)`;
    }
    const create = `to create stack ${stack} from Pulumi.${stack}.yaml`;
    if (!isServiceBackend(env.PULUMI_BACKEND_URL) && env.PULUMI_CONFIG_PASSPHRASE === undefined && env.PULUMI_CONFIG_PASSPHRASE_FILE === undefined) {
        return `${create}, export PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE): it encrypts the stack's secrets, the CA keys among them; keep it, the state cannot be read without it`;
    }
    if (!env.PULUMI_BACKEND_URL) {
        return `${create}, export PULUMI_BACKEND_URL: where its state (the CA keys, encrypted) lives, e.g. s3://BUCKET/istio-ca, file://$HOME/.istio-ca-state, ` +
            `or ${PROJECT_BACKEND} for this checkout only`;
    }
    return undefined;
}

/** The project's own backend directory (Pulumi.yaml's default, git-ignored): the driver makes it. */
export function projectBackendDir(projectRoot: string): string {
    return fileBackendDir(PROJECT_BACKEND, projectRoot)!;
}

/** A file:// PULUMI_BACKEND_URL whose directory does not exist (the CLI's own error quotes its storage driver). */
export function missingBackendDir(env: MissingStack["env"], projectRoot: string): string | undefined {
    const dir = env.PULUMI_BACKEND_URL ? fileBackendDir(env.PULUMI_BACKEND_URL, projectRoot) : undefined;
    return dir && dir !== projectBackendDir(projectRoot) && !fs.existsSync(dir)
        ? `PULUMI_BACKEND_URL ${env.PULUMI_BACKEND_URL} names directory ${dir}, which does not exist: create it (mkdir -p ${dir}) or correct the URL`
        : undefined;
}

/** What the driver says after it created a stack. */
export function stackCreated(stack: string, env: MissingStack["env"]): string {
    const salt = isServiceBackend(env.PULUMI_BACKEND_URL) ? "" : ` (the file now also holds the stack's encryptionsalt: keep it with the file)`;
    return `${stack}: created the stack on ${backendName(env)}, with the config of Pulumi.${stack}.yaml${salt}`;
}
