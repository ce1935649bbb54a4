// Parses `istioctl proxy-config secret <pod> -n <ns> -o json` and judges one workload during a CA
// change: was its certificate re-issued under the current signing intermediate, and does its proxy
// trust the current root-cert.pem?
//
// What istioctl prints (istio/istio `istioctl/pkg/writer/envoy/configdump/configdump.go`,
// `PrintSecretDump`): the Envoy admin `SecretsConfigDump` taken from the sidecar's config dump,
// marshalled with `protomarshal.ToJSONWithIndent` (golang/protobuf jsonpb, default options), i.e.
// protojson field names in lowerCamelCase and the Secret as an `Any` with `@type`:
//
//   { "dynamicActiveSecrets": [
//       { "name": "default", "versionInfo": "...", "lastUpdated": "2023-05-15T01:32:52.262Z",
//         "secret": { "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
//                     "name": "default",
//                     "tlsCertificate": { "certificateChain": { "inlineBytes": "<base64 PEM chain>" },
//                                         "privateKey": { "inlineBytes": "W3JlZGFjdGVkXQ==" } } } },
//       { "name": "ROOTCA", "lastUpdated": "...",
//         "secret": { "@type": "...Secret", "name": "ROOTCA",
//                     "validationContext": { "trustedCa": { "inlineBytes": "<base64 PEM bundle>" } } } } ],
//     "dynamicWarmingSecrets": [ ... same shape, not yet in use ... ] }
//
// Envoy itself redacts the private key ("[redacted]"); it is never read here. Also accepted: the
// same message with proto field names (snake_case, as in Envoy's own /config_dump and istio's
// testdata `testdata/secret/istio/config_dump.json`), and a whole config dump (`{"configs": [...]}`)
// from which the SecretsConfigDump is taken. Istio's rotation e2e test
// (`tests/integration/security/cacert_rotation/main_test.go`) reads `lastUpdated` of the `default`
// secret from exactly this output to see that a workload re-signed.
import { X509Certificate } from "node:crypto";

import { splitCertificates } from "../../common/pem";
import { field, isObject, Json, JsonObject, str } from "./protoJson";

/** Envoy resource names Istio's agent uses (istio/istio `pkg/security`: WorkloadKeyCertResourceName, RootCertReqResourceName). */
export const WORKLOAD_SECRET = "default";
export const ROOT_SECRET = "ROOTCA";

const SECRETS_DUMP_TYPE = "type.googleapis.com/envoy.admin.v3.SecretsConfigDump";

export type SecretState = "active" | "warming" | "static";

export interface ProxySecret {
    name: string;
    state: SecretState;
    versionInfo?: string;
    /** `lastUpdated` as printed (RFC 3339). */
    lastUpdated?: string;
    /** `lastUpdated` parsed; undefined when absent or not a timestamp. */
    lastUpdatedAt?: Date;
    /** `certificate`: a tlsCertificate (chain); `validation`: a validationContext (trusted CAs); `none`: neither. */
    type: "certificate" | "validation" | "none";
    /** The certificates of the chain / bundle, in order. */
    certificates: X509Certificate[];
    /** Why the certificates could not be read (a file reference, bad base64, ...). */
    problem?: string;
}

export interface ProxySecrets {
    secrets: ProxySecret[];
}

function firstLine(output: string): string {
    const line = output.split(/\r?\n/).find((l) => l.trim() !== "") ?? "";
    return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

function formatError(output: string, why: string): Error {
    return new Error(
        `unrecognised istioctl proxy-config secret output (${why}); expected the JSON of ` +
            "`istioctl proxy-config secret <pod> -n <ns> -o json` (an Envoy SecretsConfigDump with " +
            `dynamicActiveSecrets); first line was: ${JSON.stringify(firstLine(output))}`,
    );
}

/** Reads an Envoy DataSource (`inlineBytes` base64, or `inlineString`) as text. */
function dataSource(ds: Json | undefined, what: string): { text?: string; problem?: string } {
    if (!isObject(ds)) {
        return { problem: `${what} is missing` };
    }
    const bytes = str(field(ds, "inlineBytes"));
    if (bytes !== undefined) {
        if (!/^[A-Za-z0-9+/=\s_-]*$/.test(bytes)) {
            return { problem: `${what}.inlineBytes is not base64` };
        }
        return { text: Buffer.from(bytes, "base64").toString("utf8") };
    }
    const inline = str(field(ds, "inlineString"));
    if (inline !== undefined) {
        return { text: inline };
    }
    const file = str(field(ds, "filename"));
    if (file !== undefined) {
        return { problem: `${what} refers to file ${file} inside the proxy; istioctl cannot show its certificates` };
    }
    return { problem: `${what} has no inline data` };
}

function readCertificates(text: string, what: string): { certificates: X509Certificate[]; problem?: string } {
    const blocks = splitCertificates(text);
    if (blocks.length === 0) {
        return { certificates: [], problem: `${what} holds no PEM certificate` };
    }
    const certificates: X509Certificate[] = [];
    for (const [i, block] of blocks.entries()) {
        try {
            certificates.push(new X509Certificate(block));
        } catch (err) {
            return { certificates, problem: `${what}: certificate #${i + 1} does not parse: ${(err as Error).message}` };
        }
    }
    return { certificates };
}

function parseSecret(entry: JsonObject, state: SecretState): ProxySecret {
    const secret = field(entry, "secret");
    const name = str(entry.name) ?? (isObject(secret) ? str(secret.name) : undefined) ?? "";
    const lastUpdated = str(field(entry, "lastUpdated"));
    const at = lastUpdated !== undefined ? new Date(lastUpdated) : undefined;
    const out: ProxySecret = {
        name,
        state,
        versionInfo: str(field(entry, "versionInfo")),
        lastUpdated,
        lastUpdatedAt: at && !Number.isNaN(at.getTime()) ? at : undefined,
        type: "none",
        certificates: [],
    };
    if (!isObject(secret)) {
        return out;
    }
    const tls = field(secret, "tlsCertificate");
    const validation = field(secret, "validationContext");
    let read: { text?: string; problem?: string } | undefined;
    if (isObject(tls)) {
        out.type = "certificate";
        read = dataSource(field(tls, "certificateChain"), `${name} certificateChain`);
    } else if (isObject(validation)) {
        out.type = "validation";
        read = dataSource(field(validation, "trustedCa"), `${name} trustedCa`);
    }
    if (read?.problem) {
        out.problem = read.problem;
    } else if (read?.text !== undefined) {
        const certs = readCertificates(read.text, `${name} ${out.type === "certificate" ? "certificateChain" : "trustedCa"}`);
        out.certificates = certs.certificates;
        out.problem = certs.problem;
    }
    return out;
}

function isSecretsDump(o: JsonObject): boolean {
    return ["dynamicActiveSecrets", "dynamicWarmingSecrets", "staticSecrets"].some((k) => field(o, k) !== undefined) ||
        str(o["@type"]) === SECRETS_DUMP_TYPE;
}

/** Parses the JSON of `istioctl proxy-config secret -o json` (see the top of this file). Throws a descriptive Error. */
export function parseProxySecrets(output: string): ProxySecrets {
    if (typeof output !== "string" || output.trim() === "") {
        throw new Error("empty istioctl proxy-config secret output: expected the JSON of `-o json`");
    }
    let doc: Json;
    try {
        doc = JSON.parse(output) as Json;
    } catch (err) {
        throw formatError(output, `JSON does not parse: ${(err as Error).message}`);
    }
    if (Array.isArray(doc)) {
        // A ztunnel prints its own certificate list (an array), not an Envoy SecretsConfigDump.
        throw formatError(output, "a JSON array (ztunnel's certificate list?), not an Envoy SecretsConfigDump");
    }
    if (!isObject(doc)) {
        throw formatError(output, "not a JSON object");
    }
    let dump: JsonObject | undefined = doc;
    const configs = field(doc, "configs");
    if (!isSecretsDump(doc) && Array.isArray(configs)) {
        dump = configs.find((c): c is JsonObject => isObject(c) && str(c["@type"]) === SECRETS_DUMP_TYPE);
        if (!dump) {
            throw formatError(output, "a config dump without a SecretsConfigDump (does this proxy use SDS?)");
        }
    }
    if (!isSecretsDump(dump) && Object.keys(dump).length > 0) {
        throw formatError(output, "no dynamicActiveSecrets/dynamicWarmingSecrets/staticSecrets");
    }
    const secrets: ProxySecret[] = [];
    const lists: [string, SecretState][] = [
        ["dynamicActiveSecrets", "active"],
        ["dynamicWarmingSecrets", "warming"],
        ["staticSecrets", "static"],
    ];
    for (const [key, state] of lists) {
        const entries = field(dump, key);
        if (entries === undefined) {
            continue;
        }
        if (!Array.isArray(entries)) {
            throw formatError(output, `${key} is not a list`);
        }
        for (const e of entries) {
            if (isObject(e)) {
                secrets.push(parseSecret(e, state));
            }
        }
    }
    return { secrets };
}

/** The secret named `name` in the given state (default: active). */
export function findSecret(secrets: ProxySecrets, name: string, state: SecretState = "active"): ProxySecret | undefined {
    return secrets.secrets.find((s) => s.name === name && s.state === state);
}
