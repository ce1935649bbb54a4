// Pulumi mocks that capture what the program registers: type token, name, inputs and the resource
// options (through a stack transformation, which sees dependsOn, replacementTrigger, provider…).
import type { ClusterFacts } from "../../plan/clusterFacts";
import * as pulumi from "@pulumi/pulumi";
import { issuedBy, selfSignedCa, TestCa } from "./testCerts";

export interface Registered {
    type: string;
    name: string;
    inputs: Record<string, any>;
    opts: pulumi.CustomResourceOptions & pulumi.ComponentResourceOptions;
    resource: pulumi.Resource;
}

export interface MockWorld {
    resources: Registered[];
    byType(type: string): Registered[];
    one(type: string, name?: string): Registered;
    roots: Map<string, TestCa>;
    /** Runs `program` inside a root stack, capturing every resource it registers. */
    run<T>(program: () => T | Promise<T>): Promise<T>;
}

/** Resolves an Output (or plain value) in a test; secrets resolve to their plain value. */
export function promiseOf<T>(output: pulumi.Input<T>): Promise<T> {
    return new Promise((resolve) => pulumi.output(output).apply((v) => { resolve(v as T); return v; }));
}

export function isSecret<T>(output: pulumi.Output<T>): Promise<boolean> {
    return pulumi.isSecret(output);
}

/** Installs mocks and config. Call before constructing the program. */
export function setupMocks(config: Record<string, string>, stdoutByStep: Record<string, string> = {}): MockWorld {
    const resources: Registered[] = [];
    const roots = new Map<string, TestCa>();
    // Certificates are issued for the validity the program asks (validityPeriodHours), whole days.
    const daysOf = (inputs: Record<string, any>): number | undefined =>
        typeof inputs.validityPeriodHours === "number" ? Math.max(1, Math.ceil(inputs.validityPeriodHours / 24)) : undefined;
    const rootFor = (name: string, days?: number): TestCa => {
        const generation = name.replace(/-cert$/, "");
        if (!roots.has(generation)) {
            roots.set(generation, selfSignedCa(`Root CA ${generation}`, days));
        }
        return roots.get(generation)!;
    };
    let lastRoot: TestCa | undefined;

    pulumi.runtime.setAllConfig(Object.fromEntries(Object.entries(config).map(([k, v]) => [k.includes(":") ? k : `istio-ca:${k}`, v])));
    pulumi.runtime.setMocks({
        newResource(args) {
            const state: Record<string, any> = { ...args.inputs };
            switch (args.type) {
                case "tls:index/privateKey:PrivateKey":
                    state.privateKeyPem = `mock private key of ${args.name}`;
                    state.publicKeyPem = `mock public key of ${args.name}`;
                    break;
                case "tls:index/selfSignedCert:SelfSignedCert":
                    lastRoot = rootFor(args.name, daysOf(args.inputs));
                    state.certPem = lastRoot.certPem;
                    break;
                case "tls:index/certRequest:CertRequest":
                    state.certRequestPem = `mock csr of ${args.name}`;
                    break;
                case "tls:index/locallySignedCert:LocallySignedCert":
                    state.certPem = issuedBy(lastRoot ?? selfSignedCa(), "/O=Istio/CN=Intermediate CA", { days: daysOf(args.inputs) }).certPem;
                    break;
                case "command:local:Command": {
                    const step = Object.keys(stdoutByStep).find((s) => args.name.endsWith(s));
                    state.stdout = step ? stdoutByStep[step] : "";
                    state.stderr = "";
                    break;
                }
            }
            return { id: `${args.name}-id`, state };
        },
        call(args) {
            throw new Error(`unexpected call ${args.token}`);
        },
    }, "istio-ca", "test", false);

    return {
        async run<T>(program: () => T | Promise<T>): Promise<T> {
            let result: T | undefined;
            let failure: { error: unknown } | undefined;
            // A root stack has to exist for stack transformations, as in a real run. The program's
            // own error is carried out of the stack callback, where the runtime would report it
            // again as an unhandled rejection.
            await pulumi.runtime.runInPulumiStack(async () => {
                pulumi.runtime.registerStackTransformation((args) => {
                    resources.push({ type: args.type, name: args.name, inputs: args.props, opts: args.opts, resource: args.resource });
                    return undefined;
                });
                try {
                    result = await program();
                } catch (error) {
                    failure = { error };
                }
                return {};
            });
            if (failure) {
                throw failure.error;
            }
            return result as T;
        },
        resources,
        roots,
        byType: (type) => resources.filter((r) => r.type === type),
        one(type, name) {
            const found = resources.filter((r) => r.type === type && (name === undefined || r.name === name));
            if (found.length !== 1) {
                throw new Error(`expected one ${type}${name ? ` named ${name}` : ""}, found ${found.map((r) => r.name).join(", ") || "none"}`);
            }
            return found[0];
        },
    };
}

/** What inspectCluster reports for a reachable cluster with one istiod and no CA Secrets yet. */
export function clusterFacts(overrides: Partial<ClusterFacts> = {}): ClusterFacts {
    return { where: "the test cluster", istiods: ["istiod"], istiodsWithoutMultiRoot: [], ...overrides };
}

/** Runs `program` in `world`, capturing its warnings, its outcome and what it registered. */
export async function runCapturing<T>(world: MockWorld, program: () => Promise<T>): Promise<{ outputs?: T; error?: Error; warnings: string[]; registered: Registered[] }> {
    const before = world.resources.length;
    const warnings: string[] = [];
    const warn = pulumi.log.warn;
    pulumi.log.warn = (msg: string) => { warnings.push(msg); return Promise.resolve(); };
    try {
        const outcome = await world.run(program).then((outputs) => ({ outputs, error: undefined }), (error: Error) => ({ outputs: undefined, error }));
        return { ...outcome, warnings, registered: world.resources.slice(before) };
    } finally {
        pulumi.log.warn = warn;
    }
}
