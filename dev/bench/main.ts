// `npm run bench [-- --sizes 10,50,200 --deployments 5 --delay-ms 2000 --jitter-ms 1000 --concurrency 10 --skip-manual --out FILE]`
//   simulation settings: `--control-plane-qps 5000 --controller-syncs 20 --gogc 400 --kwok-parallelism 16` (0: the component's default)
//
// Rotation at mesh scale: on the local control plane (tests/harness/cluster.ts), with kwok making
// pods Ready after --delay-ms + uniform [0, --jitter-ms] so that a rollout takes real time, for
// each mesh size N (Istio-enabled namespaces × --deployments Deployments of 1 replica, plus
// istio-system/istiod), on ONE cluster per size, with real istiod (tests/harness/istiod.ts:
// pilot-discovery run for the istiod pod, restarted when the pod is replaced, `cacerts` mounted
// into it) from the seeding on: it writes istio-ca-root-cert into every namespace (first from its
// own self-signed CA, then from the program's `cacerts`). Each part starts with istiod ready and
// its bundle in every mesh namespace. Side by side:
//
//   limit   the physical limit: one istiod rollout + the slowest single workload rollout, everything
//           else in parallel (computed from the configured delay and the per-rollout control-plane
//           overhead measured by restarting single Deployments alone);
//   (a)     the seed's procedure (../shared/seed/replacing-istio-ca-certificate.txt), scripted with
//           kubectl processes: restart istio-system (and wait for istiod), check istio-ca-root-cert
//           in each mesh namespace, `kubectl rollout restart deployment -n <ns>` for each namespace
//           in turn, then `kubectl rollout status` for each Deployment in turn (its final `istioctl
//           proxy-status` is left out, as (b)'s proxy check is: no Envoy runs here);
//   (c)     a direct-API floor: what this cluster (2 cores) can do at best: istiod restarted and
//           waited for, then every Deployment patched at once from one process (50 requests in
//           flight), one watch until all are rolled out. No program does this; it shows how much of
//           (b) is the cluster's own throughput;
//   (b)     this program: `pulumi up` (real engine, real providers) after a keyVersion bump; its
//           restart+verify part is the step commands' chain (engine events), and their own elapsedMs.
//           Its wait-root-cert is satisfied by real istiod's ConfigMaps; afterwards the bench checks
//           that the istiod now running started on `cacerts` ("Use local CA certificate") and that
//           every mesh namespace holds the root of `cacerts`.
//
// API requests are counted twice: the API server's apiserver_request_total (every client,
// controllers included) and an audit log (Metadata level) split by user and user agent, so the
// client's own requests are separated from the controllers' and from istiod's. For that the
// bench starts the harness's binaries through small wrappers (a private bin dir): kube-apiserver
// gets an audit policy and two extra static tokens (users `istio-ca` for the stack, `istiod` for
// pilot-discovery and its supervisor's watches). The control plane runs with the simulation
// settings of `simulationSettings` (client rate limits, controller workers, Go GC, kwok workers): how
// fast this machine plays it, not what it does. CPU seconds of every component, of istiod and of the
// tools (this process and everything else it ran) are read from /proc for each part: on 2 shared
// cores the floor is the control plane's CPU.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { startCluster } from "../../tests/harness/cluster";
import { RealIstiod } from "../../tests/harness/istiod";
import { TestStack } from "../../tests/support/engine";
import { Options, parseOptions } from "./options";
import { progress } from "./progress";
import { instrumentedBinDir, kubeconfigFor, Rig, simulationSettings, startIstiod } from "./rig";
import { Api } from "./api";
import { rootCertPublished, seed } from "./mesh";
import { baselineParts } from "./baseline";
import { createBenchStack, programParts } from "./program";
import { details, SizeResult, START, table, writeResults } from "./report";

async function runSize(n: number, opts: Options, work: string): Promise<SizeResult> {
    const t0 = Date.now();
    const inst = instrumentedBinDir(opts, work);
    progress(`N=${n}: starting a cluster (kwok pod readiness ${opts.delayMs} ms + [0, ${opts.jitterMs}] ms)`);
    const cluster = await startCluster({
        binDir: inst.binDir,
        nodes: 1, // kwok's node stage gives each fake node `pods: 1M` capacity
        podReadyDelayMs: opts.delayMs,
        podReadyJitterMs: opts.jitterMs,
        ...simulationSettings(opts),
        log: (m) => progress(m),
    });
    const api = new Api(cluster);
    const stackKc = kubeconfigFor(cluster, inst.tokens.istioCa, path.join(work, "istio-ca.kubeconfig"));
    let istiod: RealIstiod | undefined;
    let ts: TestStack | undefined;
    try {
        const mesh = await seed(cluster, api, n, opts.deployments);
        progress(`N=${n}: starting real istiod (pilot-discovery) for istio-system/istiod`);
        istiod = await startIstiod(cluster, kubeconfigFor(cluster, inst.tokens.istiod, path.join(work, "istiod.kubeconfig")));
        const rig: Rig = { cluster, api, istiod };
        await rootCertPublished(rig, mesh, `N=${n}: istiod's self-signed CA`);
        const setupMs = Date.now() - t0;

        const baseline = await baselineParts(rig, mesh, opts, n);
        // (b) starts with istiod up and its bundle published (the (c) part just restarted it).
        await rootCertPublished(rig, mesh, `N=${n}: before (b)`);
        ts = await createBenchStack(n, cluster, stackKc, opts);
        const program = await programParts(rig, mesh, ts, n);
        return { n, deployments: mesh.all.length, nodes: 1, ...baseline, ...program, setupMs };
    } finally {
        await istiod?.stop();
        await ts?.dispose();
        api.close();
        await cluster.stop();
        progress(`N=${n}: cluster stopped`);
    }
}

async function main(): Promise<void> {
    const opts = parseOptions(process.argv.slice(2));
    progress(`options: ${JSON.stringify(opts)}; ${os.cpus().length} cores, node ${process.version}; load average ${START.load.map((l) => l.toFixed(2)).join(", ")}`);
    const results: SizeResult[] = [];
    for (const n of opts.sizes) {
        const work = fs.mkdtempSync(path.join(os.tmpdir(), `istio-ca-bench-${n}-`));
        try {
            results.push(await runSize(n, opts, work));
        } finally {
            fs.rmSync(work, { recursive: true, force: true });
        }
        process.stdout.write(`\n${details(results[results.length - 1])}\n`);
        writeResults(opts, results, results.length === opts.sizes.length);
    }
    process.stdout.write(`\n${table(results, opts)}\n`);
}

if (require.main === module) {
    main().then(() => process.exit(0), (err: Error) => {
        process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
        process.exit(1);
    });
}
