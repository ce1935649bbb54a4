// A stack's phase as the driver sees it: the trust state its config asks for, the one it last
// deployed (its trustState output), the root a rotation goes to, and how a phase is applied (config).
import * as automation from "@pulumi/pulumi/automation";
import { TrustState } from "../plan/rotation";

/** The trust state a stack's config asks for (what the next `up` applies). */
export async function configuredTrustState(stack: automation.Stack): Promise<TrustState> {
    const config = await stack.getAllConfig();
    const int = (key: string, def: number): number => {
        const v = config[`istio-ca:${key}`]?.value;
        return v === undefined ? def : Number(v);
    };
    const keyVersion = int("keyVersion", 1);
    const raw = config["istio-ca:trustedKeyVersions"]?.value;
    const trusted = raw ? (JSON.parse(raw) as unknown[]).map(Number) : [];
    return {
        keyVersion,
        // Pulumi.yaml's default is [] (= unset): root-cert.pem trusts the signing root alone.
        trustedKeyVersions: trusted.length > 0 ? trusted : [keyVersion],
        intermediateVersion: int("intermediateVersion", 1),
    };
}

/** What the stack's last deployment recorded (its trustState output). */
export async function deployedTrustState(stack: automation.Stack): Promise<TrustState | undefined> {
    const outputs = await stack.outputs();
    return outputs.trustState?.value as TrustState | undefined;
}

const sameTrust = (a: TrustState, b: TrustState): boolean =>
    a.keyVersion === b.keyVersion && [...a.trustedKeyVersions].sort().join() === [...b.trustedKeyVersions].sort().join();

/**
 * The root generation a `rotate` without `--to` goes to: the one a half-done rotation is heading
 * for (phase 1 done: the newer trusted root; phase 2 done: the signing root), the one the config
 * already names when the last deployment did not reach it (phase 3 failed), else the next one.
 */
export function defaultTarget(config: TrustState, deployed: TrustState | undefined): number {
    const newest = Math.max(...config.trustedKeyVersions);
    if (config.trustedKeyVersions.length > 1) {
        return Math.max(newest, config.keyVersion);
    }
    if (deployed && !sameTrust(deployed, config)) {
        return config.keyVersion;
    }
    return config.keyVersion + 1;
}

/** Writes a trust state into a stack's config (keyVersion; trustedKeyVersions as a list, or removed). */
export async function applyTrustState(stack: automation.Stack, s: TrustState): Promise<void> {
    await stack.setConfig("istio-ca:keyVersion", { value: String(s.keyVersion) });
    if (s.trustedKeyVersions.length === 1 && s.trustedKeyVersions[0] === s.keyVersion) {
        await stack.removeConfig("istio-ca:trustedKeyVersions");
    } else {
        // A list value: `pulumi config set --path` keeps it a YAML list, as Pulumi.yaml declares.
        await stack.removeConfig("istio-ca:trustedKeyVersions").catch(() => undefined);
        for (const [i, v] of s.trustedKeyVersions.entries()) {
            await stack.setConfig(`istio-ca:trustedKeyVersions[${i}]`, { value: String(v) }, true);
        }
    }
}
