// The rendered per-namespace RBAC (npm run rbac): which bindings, to what, for whom, and the CLI's
// arguments. The bindings' effect on a real API server is checked by tests/e2e/badInput.test.ts.
import { test } from "node:test";
import { parseAllDocuments } from "yaml";
import assert from "node:assert/strict";
import { DEFAULT_SUBJECT, PORTFORWARD_CLUSTER_ROLE, RESTART_CLUSTER_ROLE, toYaml, workloadBindings } from "../../cli/rbacBindings";
import { parseRbacArgs, USAGE } from "../../cli/rbac";
import type { Kubectl } from "../../kube/kubectl";
import { deniedNamespaces, restartDenied, restartDeniedWarning, REVIEW_TEMPLATE } from "../../plan/restartAccess";

type Binding = { kind: string; metadata: { name: string; namespace: string; labels: Record<string, string> }; roleRef: { kind: string; name: string }; subjects: object[] };

test("one RoleBinding to istio-ca-restart per namespace, sorted, each once; never a ClusterRoleBinding", () => {
    const objs = workloadBindings({ namespaces: ["payments", "bookinfo", "payments"], subject: DEFAULT_SUBJECT, proxyChecks: false }) as Binding[];
    assert.deepEqual(objs.map((o) => `${o.kind} ${o.metadata.namespace}/${o.metadata.name} -> ${o.roleRef.kind} ${o.roleRef.name}`), [
        `RoleBinding bookinfo/${RESTART_CLUSTER_ROLE} -> ClusterRole ${RESTART_CLUSTER_ROLE}`,
        `RoleBinding payments/${RESTART_CLUSTER_ROLE} -> ClusterRole ${RESTART_CLUSTER_ROLE}`,
    ]);
    assert.deepEqual(objs[0].subjects, [{ kind: "ServiceAccount", name: "istio-ca-deployer", namespace: "istio-system" }]);
    assert.equal(objs[0].metadata.labels["istio-ca/rbac"], "restart");
    assert.deepEqual(workloadBindings({ namespaces: [], subject: DEFAULT_SUBJECT, proxyChecks: true }), []);
});

test("with the proxy checks, a pods/portforward binding in each namespace too", () => {
    const objs = workloadBindings({ namespaces: ["bookinfo"], subject: { kind: "Group", name: "ci" }, proxyChecks: true }) as Binding[];
    assert.deepEqual(objs.map((o) => o.roleRef.name), [RESTART_CLUSTER_ROLE, PORTFORWARD_CLUSTER_ROLE]);
    assert.deepEqual(objs[1].subjects, [{ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: "ci" }]);
    assert.equal(objs[1].metadata.labels["istio-ca/rbac"], "proxy-checks");
});

test("the YAML is what kubectl apply reads: documents, nested maps, lists, strings YAML would misread stay strings", () => {
    const objects = [{ a: { b: "c", n: "1.0", t: "true", o: "on", e: "x@y", z: "0755", u: undefined }, l: [{ k: "v", m: "w" }, "s"] }, { second: "doc" }];
    const yaml = toYaml(objects, ["head", "more"]);
    assert.ok(yaml.startsWith("# head\n# more\n---\n"), yaml);
    const docs = parseAllDocuments(yaml);
    assert.deepEqual(docs.flatMap((d) => d.errors), []);
    assert.deepEqual(docs.map((d) => d.toJS()), [{ a: { b: "c", n: "1.0", t: "true", o: "on", e: "x@y", z: "0755" }, l: [{ k: "v", m: "w" }, "s"] }, { second: "doc" }]);
    // YAML 1.1 readers (kubectl's sigs.k8s.io/yaml) take a plain on, 0755 or 1.0 for a bool or a number.
    assert.match(yaml, /o: "on"/);
    assert.match(yaml, /z: "0755"/);
});

test("npm run rbac: arguments, --help, and what it refuses", () => {
    assert.deepEqual(parseRbacArgs(["--stack", "prod"]), { stack: "prod", namespaces: [], subject: DEFAULT_SUBJECT });
    assert.deepEqual(parseRbacArgs(["--namespace", "a", "--namespace", "b", "--proxy-checks", "--service-account", "ci/deployer"]),
        { namespaces: ["a", "b"], proxyChecks: true, subject: { kind: "ServiceAccount", namespace: "ci", name: "deployer" } });
    assert.equal(parseRbacArgs(["--stack", "x", "--no-proxy-checks", "--user", "alice"]).proxyChecks, false);
    assert.throws(() => parseRbacArgs(["--help"]), (e: Error) => e.message === USAGE);
    assert.match(USAGE, /npm run rbac -- --stack prod \| kubectl apply -f -/);
    assert.throws(() => parseRbacArgs([]), /name a stack \(--stack NAME\) or namespaces \(--namespace NS\)/);
    assert.throws(() => parseRbacArgs(["--stack", "x", "--namespace", "a"]), /not both/);
    assert.throws(() => parseRbacArgs(["--stack"]), /Option '--stack <value>' argument missing/);
    assert.throws(() => parseRbacArgs(["--stack", "--namespace", "a"]), /argument is ambiguous/, "a flag is not a value");
    assert.throws(() => parseRbacArgs(["--stack", "x", "--proxy-checks", "--no-proxy-checks"]), /--proxy-checks or --no-proxy-checks, not both/);
    assert.throws(() => parseRbacArgs(["--stack", "x", "--user", "a", "--group", "b"]), /name one subject: --user, --group were all given/);
    assert.throws(() => parseRbacArgs(["--stack", "x", "extra"]), /unexpected argument "extra"/);
    assert.throws(() => parseRbacArgs(["--namespace", "Bad_NS"]), /--namespace takes a Kubernetes namespace name/);
    assert.throws(() => parseRbacArgs(["--stack", "x", "--service-account", "noslash"]), /--service-account takes NAMESPACE\/NAME/);
    assert.throws(() => parseRbacArgs(["--stack", "x", "--frobnicate"]), /Unknown option '--frobnicate'/);
});

test("restart rights are checked before anything is applied: one access review per namespace the stack restarts, istiod's included", async () => {
    const calls: { args: string[]; input?: string }[] = [];
    const namespaces = { items: [
        { metadata: { name: "istio-system" } },
        { metadata: { name: "bookinfo", labels: { "istio-injection": "enabled" } } },
        { metadata: { name: "newly-labelled", labels: { "istio.io/rev": "default" } } },
        { metadata: { name: "plain" } },
    ] };
    const kubectl = {
        async getJson(args: string[]) { calls.push({ args }); return namespaces; },
        async run(args: string[], input?: string) {
            calls.push({ args, input });
            const reviews = (JSON.parse(input!) as { items: { spec: { resourceAttributes: { namespace: string } } }[] }).items;
            // As the real kubectl prints REVIEW_TEMPLATE for each review created (checked on a local API server).
            return reviews.map((r) => `${r.spec.resourceAttributes.namespace}=${r.spec.resourceAttributes.namespace !== "newly-labelled"}\n`).join("");
        },
    } as unknown as Kubectl;
    assert.deepEqual(await restartDenied(kubectl, "istio-system"), ["newly-labelled"]);
    const sent = JSON.parse(calls[1].input!) as { items: { kind: string; spec: { resourceAttributes: object } }[] };
    assert.deepEqual(calls[1].args, ["create", "-f", "-", "-o", REVIEW_TEMPLATE], "one kubectl, one API request per namespace");
    assert.deepEqual(sent.items.map((i) => i.spec.resourceAttributes), ["istio-system", "bookinfo", "newly-labelled"].map((namespace) =>
        ({ group: "apps", resource: "deployments", verb: "patch", namespace })));
    assert.equal(sent.items[0].kind, "SelfSubjectAccessReview");
    assert.deepEqual(deniedNamespaces("a=true\nb=false\nc=\n"), ["b", "c"], "false, or no status.allowed, is a denial");
    assert.match(restartDeniedWarning(["newly-labelled"], "prod"),
        /may not restart Deployments \(patch\) in namespace\(s\) newly-labelled, which this stack restarts: .*npm run rbac -- --stack prod \| kubectl apply -f -/);
});
