// No decrypted config in child processes (#12 item 3): children start with an allow-listed
// environment, checked on the function and on real processes (runTool, kubectlWatch).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { childEnv, inheritable } from "../../kube/childEnv";
import { runTool } from "../../kube/kubectl";
import { kubectlWatch } from "../../kube/kubeWatch";

const MARKER = "istio-ca-test-marker-not-a-key";
/** What Pulumi's language host gives the program (decrypted config), and other PULUMI_* variables. */
const PULUMI_VARS = {
    PULUMI_CONFIG: JSON.stringify({ "istio-ca:rootKeyPem": MARKER }),
    PULUMI_CONFIG_SECRET_KEYS: JSON.stringify(["istio-ca:rootKeyPem"]),
    PULUMI_CONFIG_PASSPHRASE: MARKER,
    PULUMI_ACCESS_TOKEN: MARKER,
    pulumi_config: MARKER,
};
const ALLOWED = {
    PATH: "/usr/bin:/bin", HOME: "/home/u", USER: "u", TMPDIR: "/tmp", KUBECONFIG: "/k/config",
    HTTPS_PROXY: "http://proxy:3128", https_proxy: "http://proxy:3128", NO_PROXY: "10.0.0.0/8", no_proxy: "localhost",
    LANG: "C.UTF-8", LC_ALL: "C.UTF-8", AWS_PROFILE: "prod", AWS_REGION: "eu-west-1", GOOGLE_APPLICATION_CREDENTIALS: "/g.json",
    CLOUDSDK_CONFIG: "/gcloud", AZURE_CONFIG_DIR: "/az", AAD_SERVICE_PRINCIPAL_CLIENT_ID: "id",
    ISTIOCTL_XDS_ADDRESS: "127.0.0.1:15012", ISTIO_CA_KUBECTL: "kubectl",
};
const OTHERS = { SECRET_TOKEN: MARKER, NODE_OPTIONS: "--require x", GITHUB_TOKEN: MARKER, npm_config_userconfig: "/u" };

test("childEnv keeps the allow-list and drops every PULUMI_* and unlisted variable", () => {
    const env = childEnv({ ...ALLOWED, ...PULUMI_VARS, ...OTHERS });
    assert.deepEqual(env, ALLOWED);
    for (const name of Object.keys(PULUMI_VARS)) {
        assert.equal(inheritable(name), false, name);
    }
});

test("PULUMI_* is refused even where a prefix would allow it", () => {
    assert.equal(inheritable("ISTIO_CA_X"), true);
    assert.equal(inheritable("PULUMI_ISTIO_CA_X"), false);
    assert.equal(inheritable("Pulumi_Config"), false);
});

/** A stand-in tool that writes its environment (JSON) to a file and prints nothing else. */
function envDumpingTool(): { binary: string; dump: string } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "istio-ca-childenv-"));
    const dump = path.join(dir, "env.json");
    const binary = path.join(dir, "tool");
    fs.writeFileSync(binary, `#!${process.execPath}\nrequire("fs").writeFileSync(${JSON.stringify(dump)}, JSON.stringify(process.env));\n`, { mode: 0o755 });
    return { binary, dump };
}

async function withParentEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
    const saved = { ...process.env };
    Object.assign(process.env, vars);
    try {
        return await fn();
    } finally {
        for (const k of Object.keys(vars)) {
            if (saved[k] === undefined) delete process.env[k]; else process.env[k] = saved[k];
        }
    }
}

test("kubectl and istioctl calls (runTool) start without the program's PULUMI_CONFIG", async () => {
    const { binary, dump } = envDumpingTool();
    await withParentEnv({ ...PULUMI_VARS, ISTIOCTL_XDS_ADDRESS: "127.0.0.1:15012", AWS_PROFILE: "prod" },
        () => runTool(binary, ["version"], "kubectl", "istio-ca:kubectlPath"));
    const seen = fs.readFileSync(dump, "utf8");
    assert.ok(!seen.includes(MARKER), "no decrypted config in the child's environment");
    const env = JSON.parse(seen) as Record<string, string>;
    assert.equal(env.ISTIOCTL_XDS_ADDRESS, "127.0.0.1:15012");
    assert.equal(env.AWS_PROFILE, "prod");
    assert.equal(env.PATH, process.env.PATH);
});

test("kubectl watches (kubectlWatch) start without the program's PULUMI_CONFIG", async () => {
    const { binary, dump } = envDumpingTool();
    await withParentEnv(PULUMI_VARS, () => kubectlWatch({ binary }, ["get", "deployments"], () => undefined).exited);
    const seen = fs.readFileSync(dump, "utf8");
    assert.ok(!seen.includes(MARKER), "no decrypted config in the child's environment");
    assert.equal((JSON.parse(seen) as Record<string, string>).PATH, process.env.PATH);
});
