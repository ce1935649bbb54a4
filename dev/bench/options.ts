import { parseArgs } from "node:util";

// Options

export interface Options {
    sizes: number[];
    deployments: number;
    delayMs: number;
    jitterMs: number;
    concurrency: number;
    /** kube-controller-manager / kube-scheduler client QPS (0: the components' defaults). */
    controlPlaneQps: number;
    /** --concurrent-deployment-syncs / --concurrent-replicaset-syncs (0: defaults, 5). */
    controllerSyncs: number;
    /** GOGC of the control-plane components (0: Go's default, 100). */
    gogc: number;
    /** kwok's podPlayStageParallelism (0: kwok's default, 4). */
    kwokParallelism: number;
    /** Skip (a) (it is the slow part). */
    skipManual: boolean;
    out?: string;
}

export function parseOptions(argv: string[]): Options {
    const text = { type: "string" } as const;
    const { values } = parseArgs({
        args: argv,
        options: {
            "sizes": text, "deployments": text, "delay-ms": text, "jitter-ms": text, "concurrency": text, "control-plane-qps": text,
            "controller-syncs": text, "gogc": text, "kwok-parallelism": text, "out": text, "skip-manual": { type: "boolean" },
        },
    });
    const num = (name: string, v: string): number => {
        const n = Number(v);
        if (v.trim() === "" || !Number.isFinite(n) || n < 0) throw new Error(`--${name} needs a non-negative number, got ${JSON.stringify(v)}`);
        return n;
    };
    type NumberOption = "deployments" | "delay-ms" | "jitter-ms" | "concurrency" | "control-plane-qps" | "controller-syncs" | "gogc" | "kwok-parallelism";
    const given = (name: NumberOption, def: number): number => {
        const v = values[name];
        return v === undefined ? def : num(name, v);
    };
    const sizes = values.sizes !== undefined ? values.sizes.split(",").map((s) => num("sizes", s.trim())).filter((n) => n > 0) : [10, 50, 200];
    const o: Options = {
        sizes, deployments: given("deployments", 5), delayMs: given("delay-ms", 2000), jitterMs: given("jitter-ms", 1000),
        concurrency: given("concurrency", 10), controlPlaneQps: given("control-plane-qps", 5000), controllerSyncs: given("controller-syncs", 20),
        gogc: given("gogc", 400), kwokParallelism: given("kwok-parallelism", 16), skipManual: values["skip-manual"] === true,
        ...(values.out !== undefined ? { out: values.out } : {}),
    };
    if (o.sizes.length === 0 || o.deployments < 1 || o.concurrency < 1) throw new Error("--sizes, --deployments, --concurrency must be positive");
    return o;
}
