// `npm run rbac -- --stack NAME` (or `--namespace NS …`): prints the RoleBindings that let the
// deployer restart Deployments only in the namespaces a stack restarts (cli/rbacBindings.ts). See --help.
import { projectRoot } from "../common/stackDir";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs, promisify } from "node:util";
import { IstioCaConfig, parseConfig } from "../plan/config";
import { argumentError } from "./cliErrors";
import { Kubectl, KubeList, Namespace } from "../kube/kubectl";
import { DEFAULT_SUBJECT, RbacSubject, toYaml, workloadBindings } from "./rbacBindings";
import { meshNamespaces } from "../steps/meshNamespaces";

const PROJECT_ROOT = projectRoot();

export const USAGE = `usage: npm run rbac -- (--stack NAME | --namespace NS [--namespace NS ...]) [options]

Prints, as YAML on stdout, the RoleBindings that let the istio-ca deployer restart Deployments
(patch) in exactly the namespaces a stack restarts, and, with the proxy checks, port-forward to
the proxies there. Apply them next to deploy/rbac.yaml, which defines the ClusterRoles they bind:

  npm run rbac -- --stack prod | kubectl apply -f -

Run it again when the set of namespaces changes (a namespace newly labelled for injection is
refused by the restart step until it is bound). Stale bindings: kubectl get rolebindings -A -l istio-ca/rbac

  --stack NAME          the namespaces of this stack: istio-ca:workloadNamespaces, or else the
                        namespaces labelled for injection now (istio-injection=enabled or
                        istio.io/rev), read with the stack's istio-ca:kubeconfig, kubeContext and
                        kubectlPath; proxy-check bindings when istio-ca:verifyWorkloadCertificates
                        is on (the default)
  --namespace NS        a namespace to bind (repeatable), instead of --stack
  --proxy-checks        also bind pods/portforward (deploy/rbac-proxy-checks.yaml) in each namespace
  --no-proxy-checks     do not (the default with --namespace)
  --service-account NS/NAME | --user NAME | --group NAME
                        who is granted (default: ServiceAccount istio-system/istio-ca-deployer)
  -h, --help            this text
`;

export interface RbacOptions {
    stack?: string;
    namespaces: string[];
    proxyChecks?: boolean;
    subject: RbacSubject;
}

function subjectOf(flag: string, value: string): RbacSubject {
    if (flag === "--service-account") {
        const [namespace, name, ...rest] = value.split("/");
        if (!namespace || !name || rest.length > 0) {
            throw new Error(`--service-account takes NAMESPACE/NAME, got ${JSON.stringify(value)}`);
        }
        return { kind: "ServiceAccount", namespace, name };
    }
    return { kind: flag === "--user" ? "User" : "Group", name: value };
}

/** Parses the arguments; throws a message for a person (usage on --help). */
export function parseRbacArgs(argv: string[]): RbacOptions {
    const { values, positionals } = parseArgs({
        args: argv,
        allowPositionals: true,
        options: {
            "stack": { type: "string" },
            "namespace": { type: "string", multiple: true },
            "proxy-checks": { type: "boolean" },
            "no-proxy-checks": { type: "boolean" },
            "service-account": { type: "string" },
            "user": { type: "string" },
            "group": { type: "string" },
            "help": { type: "boolean", short: "h" },
        },
    });
    if (values.help) {
        throw new Error(USAGE);
    }
    if (positionals.length > 0) {
        throw new Error(`unexpected argument ${JSON.stringify(positionals[0])}\n\n${USAGE}`);
    }
    if (values["proxy-checks"] && values["no-proxy-checks"]) {
        throw new Error("--proxy-checks or --no-proxy-checks, not both");
    }
    const subjects = (["service-account", "user", "group"] as const).filter((flag) => values[flag] !== undefined);
    if (subjects.length > 1) {
        throw new Error(`name one subject: ${subjects.map((f) => `--${f}`).join(", ")} were all given`);
    }
    const namespaces = values.namespace ?? [];
    const badNamespace = namespaces.find((ns) => !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(ns));
    if (badNamespace !== undefined) {
        throw new Error(`--namespace takes a Kubernetes namespace name (lower-case RFC 1123 label), got ${JSON.stringify(badNamespace)}`);
    }
    if ((values.stack === undefined) === (namespaces.length === 0)) {
        throw new Error(`name a stack (--stack NAME) or namespaces (--namespace NS), not both\n\n${USAGE}`);
    }
    const proxyChecks = values["proxy-checks"] ? true : values["no-proxy-checks"] ? false : undefined;
    return {
        ...(values.stack !== undefined ? { stack: values.stack } : {}),
        namespaces,
        ...(proxyChecks !== undefined ? { proxyChecks } : {}),
        subject: subjects.length === 1 ? subjectOf(`--${subjects[0]}`, values[subjects[0]]!) : DEFAULT_SUBJECT,
    };
}

/** The stack's config as `pulumi config --json` prints it (no --show-secrets: a secret value reads "[secret]", only its presence counts here). */
async function stackConfig(stack: string): Promise<IstioCaConfig> {
    if (!process.env.PULUMI_BACKEND_URL) {
        fs.mkdirSync(path.join(PROJECT_ROOT, ".pulumi-state"), { recursive: true }); // Pulumi.yaml's default backend
    }
    const { stdout } = await promisify(execFile)("pulumi", ["config", "--json", "--stack", stack], { cwd: PROJECT_ROOT, maxBuffer: 16 << 20 });
    const entries = JSON.parse(stdout) as Record<string, { value?: string; secret?: boolean }>;
    return parseConfig((key) => {
        const entry = entries[`istio-ca:${key}`];
        return entry?.secret ? "[secret]" : entry?.value;
    });
}

/** The namespaces the stack's restart step would restart now, as it finds them. */
async function stackNamespaces(config: IstioCaConfig): Promise<string[]> {
    if (config.workloadNamespaces) {
        return config.workloadNamespaces;
    }
    const kubectl = new Kubectl({ binary: config.kubectlPath, kubeconfig: config.kubeconfig, context: config.kubeContext, timeoutMs: 30_000 });
    const list = await kubectl.getJson<KubeList<Namespace>>(["get", "namespaces"]);
    return meshNamespaces(list.items, config.istioNamespace);
}

export async function renderRbac(opts: RbacOptions): Promise<string> {
    let { namespaces, proxyChecks } = opts;
    let source = `namespaces ${namespaces.join(", ")}`;
    if (opts.stack !== undefined) {
        const config = await stackConfig(opts.stack);
        namespaces = await stackNamespaces(config);
        proxyChecks ??= config.verify.workloadCertificates;
        source = `stack ${opts.stack}: ${config.workloadNamespaces ? "istio-ca:workloadNamespaces" : "the namespaces labelled for injection now"}`;
    }
    const checks = proxyChecks ?? false;
    return toYaml(workloadBindings({ namespaces, subject: opts.subject, proxyChecks: checks }), [
        `istio-ca: RoleBindings for ${source} (${namespaces.length} namespace(s)); proxy checks ${checks ? "bound" : "not bound"}.`,
        "Needs the ClusterRoles of deploy/rbac.yaml (and deploy/rbac-proxy-checks.yaml for the proxy checks).",
    ]);
}

if (require.main === module) {
    let opts: RbacOptions;
    try {
        opts = parseRbacArgs(process.argv.slice(2));
    } catch (err) {
        const text = argumentError(err as Error);
        (text === USAGE ? process.stdout : process.stderr).write(text.endsWith("\n") ? text : `${text}\n`);
        process.exit(text === USAGE ? 0 : 2);
    }
    renderRbac(opts).then((yaml) => process.stdout.write(yaml), (err: Error) => {
        process.stderr.write(`npm run rbac: ${err.message}\n`);
        process.exit(1);
    });
}
