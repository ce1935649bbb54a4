// `npm run demo`: the whole job on this machine, end to end, narrated. A local control plane
// with a small seeded mesh, this project's program `up` on a throw-away stack, an intermediate
// rotation previewed and applied, then teardown. No istiod runs in the local cluster: the demo
// writes istio-ca-root-cert the way istiod would (tests/support/fakeIstiod.ts) and skips the
// proxy checks, which need real Envoys.
import * as path from "node:path";
import { seedMesh, startCluster } from "../tests/harness/cluster";
import { createTestStack, OpRecorder } from "../tests/support/engine";
import { FakeIstiod } from "../tests/support/fakeIstiod";
import { inlineProgram } from "./ca";

const started = Date.now();
const say = (line: string): void => console.log(`[demo +${((Date.now() - started) / 1000).toFixed(0)}s] ${line}`);

async function main(): Promise<void> {
    say("starting a local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok) on loopback");
    const cluster = await startCluster();
    const istiod = new FakeIstiod(cluster);
    let stack: Awaited<ReturnType<typeof createTestStack>> | undefined;
    try {
        const workloads = await seedMesh(cluster);
        say(`seeded ${workloads.length} Deployments: ${[...new Set(workloads.map((w) => w.namespace))].join(", ")}`);
        istiod.start();
        stack = await createTestStack("demo", inlineProgram, {
            clusterName: "demo",
            keyAlgorithm: "ECDSA",
            kubeconfig: cluster.kubeconfig,
            kubectlPath: path.join(cluster.binDir, "kubectl"),
            verifyProxyStatus: "false",
            verifyWorkloadCertificates: "false",
        });
        const print = (line: string) => process.stdout.write(`    ${line}`);

        say("pulumi up (fresh stack): PKI, cacerts, restarts, checks");
        const up = await stack.stack.up({ onOutput: print });
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
        say(`intermediate ${up.outputs.intermediate.value.sha256Fingerprint.slice(0, 23)}… -> ${rotated.outputs.intermediate.value.sha256Fingerprint.slice(0, 23)}…, root unchanged: ${rotated.outputs.signingRoot.value.sha256Fingerprint === up.outputs.signingRoot.value.sha256Fingerprint}`);

        say("pulumi destroy (cacerts is retained for istiod)");
        await stack.stack.destroy({ onOutput: print });
    } finally {
        await istiod.stop();
        await stack?.dispose();
        await cluster.stop();
        say("cluster stopped");
    }
}

main().catch((err: Error) => {
    console.error(err.message);
    process.exit(1);
});
