// Tests for steps/rolloutStatus.ts: the kubectl `rollout status` decisions for Deployments.
import { describe, it } from "node:test";
import assert from "node:assert/strict";

import { deploymentRolloutStatus, planRestart, restartPatch, RESTARTED_AT, summarizeRollouts, type DeploymentLike } from "../../steps/rolloutStatus";

function dep(
    name: string,
    o: {
        namespace?: string;
        generation?: number;
        observed?: number;
        spec?: number | null;
        replicas?: number;
        updated?: number;
        available?: number;
        progressing?: { reason: string; status?: string };
    } = {},
): DeploymentLike {
    return {
        metadata: { name, namespace: o.namespace ?? "default", generation: o.generation ?? 2 },
        spec: o.spec === null ? {} : { replicas: o.spec ?? 3 },
        status: {
            observedGeneration: o.observed ?? 2,
            replicas: o.replicas ?? 3,
            updatedReplicas: o.updated ?? 3,
            availableReplicas: o.available ?? 3,
            conditions: [
                { type: "Available", status: "True", reason: "MinimumReplicasAvailable" },
                {
                    type: "Progressing",
                    status: o.progressing?.status ?? "True",
                    reason: o.progressing?.reason ?? "NewReplicaSetAvailable",
                },
            ],
        },
    };
}

describe("deploymentRolloutStatus", () => {
    it("is done when every replica is updated and available", () => {
        assert.deepEqual(deploymentRolloutStatus(dep("web")), {
            done: true,
            failed: false,
            message: 'deployment "web" successfully rolled out',
        });
    });

    it("waits for the new spec to be observed", () => {
        const st = deploymentRolloutStatus(dep("web", { generation: 3, observed: 2 }));
        assert.deepEqual(st, { done: false, failed: false, message: "Waiting for deployment spec update to be observed..." });
    });

    it("waits while new replicas are being updated", () => {
        const st = deploymentRolloutStatus(dep("web", { replicas: 4, updated: 1, available: 3, progressing: { reason: "ReplicaSetUpdated" } }));
        assert.equal(st.done, false);
        assert.equal(st.failed, false);
        assert.equal(st.message, 'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...');
    });

    it("waits while old replicas are pending termination", () => {
        const st = deploymentRolloutStatus(dep("web", { replicas: 4, updated: 3, available: 3 }));
        assert.equal(st.done, false);
        assert.equal(st.message, 'Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...');
    });

    it("waits while updated replicas are not yet available", () => {
        const st = deploymentRolloutStatus(dep("web", { available: 2 }));
        assert.equal(st.done, false);
        assert.equal(st.message, 'Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available...');
    });

    it("fails when the progress deadline is exceeded, before looking at replica counts", () => {
        const st = deploymentRolloutStatus(
            dep("web", { updated: 1, available: 0, progressing: { reason: "ProgressDeadlineExceeded", status: "False" } }),
        );
        assert.deepEqual(st, { done: false, failed: true, message: 'deployment "web" exceeded its progress deadline' });
    });

    it("ignores the deadline while the new generation is not observed (as kubectl does)", () => {
        const st = deploymentRolloutStatus(dep("web", { generation: 5, observed: 4, progressing: { reason: "ProgressDeadlineExceeded" } }));
        assert.equal(st.failed, false);
        assert.equal(st.done, false);
    });

    it("treats absent fields as zero and an unset spec.replicas as no constraint", () => {
        assert.equal(deploymentRolloutStatus({ metadata: { name: "bare" } }).done, true);
        assert.equal(deploymentRolloutStatus(dep("web", { spec: null, replicas: 2, updated: 2, available: 2 })).done, true);
        assert.equal(deploymentRolloutStatus(dep("scaled-to-zero", { spec: 0, replicas: 0, updated: 0, available: 0 })).done, true);
    });
});

describe("summarizeRollouts", () => {
    const list = {
        items: [
            dep("istiod", { namespace: "istio-system" }),
            dep("istio-ingressgateway", { namespace: "istio-system", available: 1 }),
            dep("reviews", { namespace: "bookinfo", progressing: { reason: "ProgressDeadlineExceeded", status: "False" } }),
            dep("unrelated", { namespace: "other", available: 0 }),
        ],
    };

    it("sorts targets into done, pending and failed", () => {
        const s = summarizeRollouts(list, [
            "istio-system/istiod",
            "istio-system/istio-ingressgateway",
            "bookinfo/reviews",
            "bookinfo/ratings",
            "istio-system/istiod",
        ]);
        assert.deepEqual(s.done, ["istio-system/istiod"]);
        assert.deepEqual(s.pending, [
            {
                name: "istio-system/istio-ingressgateway",
                message: 'Waiting for deployment "istio-ingressgateway" rollout to finish: 1 of 3 updated replicas are available...',
            },
        ]);
        assert.deepEqual(s.failed, [
            { name: "bookinfo/reviews", message: 'deployment "reviews" exceeded its progress deadline' },
            { name: "bookinfo/ratings", message: 'deployment "ratings" not found in namespace "bookinfo"' },
        ]);
    });

    it("accepts a plain array and only looks at the targets", () => {
        const s = summarizeRollouts(list.items, ["istio-system/istiod"]);
        assert.deepEqual(s, { done: ["istio-system/istiod"], pending: [], failed: [] });
    });

    it("rejects targets that are not namespace/name", () => {
        assert.throws(() => summarizeRollouts(list, ["istiod"]), /not of the form namespace\/name/);
    });
});

describe("summarizeRollouts from a watch", () => {
    it("counts a target not seen yet as pending, and one seen deleted as failed", () => {
        const s = summarizeRollouts(new Map([["a/web", dep("web", { namespace: "a" })]]).values(), ["a/web", "a/api", "b/gone"], {
            notFound: "pending",
            deleted: new Set(["b/gone"]),
        });
        assert.deepEqual(s.done, ["a/web"]);
        assert.deepEqual(s.pending, [{ name: "a/api", message: 'deployment "api" not seen yet in namespace "a"' }]);
        assert.deepEqual(s.failed, [{ name: "b/gone", message: 'deployment "gone" in namespace "b" was deleted while rolling out' }]);
    });
});

describe("restartPatch", () => {
    it("is the pod-template annotation kubectl rollout restart sets, RFC 3339 to the second", () => {
        assert.deepEqual(JSON.parse(restartPatch(new Date("2026-11-25T19:30:01.987Z"))), {
            spec: { template: { metadata: { annotations: { [RESTARTED_AT]: "2026-11-25T19:30:01Z" } } } },
        });
        assert.equal(RESTARTED_AT, "kubectl.kubernetes.io/restartedAt");
    });
});

describe("planRestart", () => {
    const deployments = ["a/1", "a/2", "b/1", "c/1", "c/2", "c/3", "d/1"].map((t) => dep(t.split("/")[1], { namespace: t.split("/")[0] }));

    it("makes at most `concurrency` batches, never splitting a namespace, every Deployment once", () => {
        const p = planRestart(deployments, 2);
        assert.equal(p.batches.length, 2);
        assert.deepEqual(p.namespaces, ["a", "b", "c", "d"]);
        const all = p.batches.flat().map((d) => `${d.namespace}/${d.name}`).sort();
        assert.deepEqual(all, ["a/1", "a/2", "b/1", "c/1", "c/2", "c/3", "d/1"]);
        for (const ns of p.namespaces) {
            assert.equal(p.batches.filter((b) => b.some((d) => d.namespace === ns)).length, 1, `namespace ${ns} in one batch`);
        }
        assert.deepEqual(p.paused, []);
    });

    it("makes no more batches than namespaces, and none for nothing", () => {
        assert.equal(planRestart(deployments, 10).batches.length, 4);
        assert.deepEqual(planRestart([], 10).batches, []);
        assert.equal(planRestart(deployments, 0).batches.length, 1, "a bound below 1 still makes progress");
    });

    it("lists paused Deployments (kubectl rollout restart refuses them)", () => {
        const paused = { ...dep("frozen", { namespace: "a" }), spec: { replicas: 3, paused: true } };
        assert.deepEqual(planRestart([...deployments, paused], 3).paused, ["a/frozen"]);
    });
});
