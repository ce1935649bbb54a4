// `npm run demo`: the whole job on this machine, end to end, narrated. A local control plane
// with a small seeded mesh, this project's program `up` on a throw-away stack, an intermediate
// rotation previewed and applied, then teardown. Real Istio runs in the local cluster
// (tests/harness/realIstio.ts): istiod (pilot-discovery) against the local API server, and a real
// pilot-agent per mesh pod that gets its workload certificate from istiod's CA; the program's
// verify-proxies step runs the real `istioctl proxy-status`. Only verify-workload-certs is off: it
// reads Envoy's admin API, and no Envoy can run here.
import { seedMesh, startCluster } from "../tests/harness/cluster";
import { RealIstio } from "../tests/harness/realIstio";
import { createTestStack, OpRecorder } from "../tests/support/engine";
import { localClusterConfig, readSecret, SEED_SWAP } from "../tests/support/localCluster";
import { workloadsNotIssuedBy } from "../tests/support/meshChecks";
import { liveCertificates } from "../tests/support/realMesh";
import { inlineProgram } from "../program/inline";

const started = Date.now();
const say = (line: string): void => console.log(`[demo +${((Date.now() - started) / 1000).toFixed(0)}s] ${line}`);

async function main(): Promise<void> {
    say("starting a local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok) on loopback");
    const cluster = await startCluster();
    let istio: RealIstio | undefined;
    let stack: Awaited<ReturnType<typeof createTestStack>> | undefined;
    try {
        const workloads = await seedMesh(cluster);
        say(`seeded ${workloads.length} Deployments: ${[...new Set(workloads.map((w) => w.namespace))].join(", ")}`);
        say("starting real istiod (pilot-discovery) and a real pilot-agent for each mesh pod");
        istio = await RealIstio.start(cluster);
        const mesh = istio;
        const workloadCerts = async (): Promise<string> => {
            const certs = await liveCertificates(cluster, mesh);
            const signer = (await readSecret(cluster, "cacerts"))?.data["ca-cert.pem"] ?? (await readSecret(cluster, "istio-ca-secret"))!.data["ca-cert.pem"];
            const stale = workloadsNotIssuedBy(certs, signer);
            return `${certs.length} workload certificates, ${certs.length - stale.length} issued by the current signing certificate`;
        };
        say(`istiod made its own CA (istio-ca-secret); ${await workloadCerts()}`);
        stack = await createTestStack("demo", inlineProgram, localClusterConfig(cluster, "demo", { ...istio.stackConfig, rootCertTimeoutSeconds: "120" }));
        const print = (line: string) => process.stdout.write(`    ${line}`);

        say("pulumi preview: leaving istiod's own CA at once is a root swap, refused unless asked for");
        await stack.stack.preview().then(() => { throw new Error("the immediate swap was not refused"); }, (err: Error) => {
            say(`refused: ${err.message.split("\n").find((l) => l.includes("refusing")) ?? err.message.slice(0, 200)}`);
        });
        say("this mesh has no traffic to protect: pulumi config set istio-ca:allowImmediateRootSwap true (the phased way: docs/migration.md)");
        await stack.stack.setConfig("istio-ca:allowImmediateRootSwap", { value: SEED_SWAP.allowImmediateRootSwap });

        say("pulumi up (fresh stack): PKI, cacerts, restarts, checks");
        const up = await stack.stack.up({ onOutput: print });
        await stack.stack.removeConfig("istio-ca:allowImmediateRootSwap");
        say(`real istiod took cacerts; ${await workloadCerts()}`);
        say(`outputs: ${JSON.stringify({
            signingRoot: up.outputs.signingRoot.value,
            intermediate: up.outputs.intermediate.value,
            restartedNamespaces: up.outputs.restartedNamespaces.value,
        }, null, 2)}`);

        say("rotation of the intermediate: pulumi config set istio-ca:intermediateVersion 2; pulumi preview");
        await stack.stack.setConfig("istio-ca:intermediateVersion", { value: "2" });
        const ops = new OpRecorder();
        await stack.stack.preview({ onEvent: ops.onEvent });
        say(`preview: replace ${ops.with("replace").join(", ")}; update ${ops.with("update").join(", ")}`);
        say("pulumi up");
        const rotated = await stack.stack.up({ onOutput: print });
        say(`${await workloadCerts()}`);
        say(`intermediate ${up.outputs.intermediate.value.sha256Fingerprint.slice(0, 23)}… -> ${rotated.outputs.intermediate.value.sha256Fingerprint.slice(0, 23)}…, root unchanged: ${rotated.outputs.signingRoot.value.sha256Fingerprint === up.outputs.signingRoot.value.sha256Fingerprint}`);

        say("pulumi destroy (cacerts is retained for istiod)");
        await stack.stack.destroy({ onOutput: print });
    } finally {
        await istio?.stop();
        await stack?.dispose();
        await cluster.stop();
        say("cluster stopped");
    }
}

main().catch((err: Error) => {
    console.error(err.message);
    process.exit(1);
});
