// Rollback (istio-ca:restoreCacertsFrom): cacerts gets exactly what istiod read from a backup Secret
// (steps/backupCacerts.ts makes them; either layout, common/cacertsFormat), written in the layout cacerts has,
// read in memory before anything is registered and checked the way istiod checks cacerts, so a
// bad backup is refused instead of breaking istiod.
import { createPrivateKey, KeyObject, X509Certificate } from "node:crypto";
import { getSecret } from "../steps/backupCacerts";
import { BACKUP_SELECTOR, incompleteCacerts } from "../common/cacertsFiles";
import { CacertsFiles, filesOf, istiodView } from "../common/cacertsFormat";
import type { Kubectl } from "../kube/kubectl";
import { fingerprint, parseCertificates } from "../common/pem";
import type { ExistingSecret } from "./clusterFacts";
import { caExtensions } from "./rootMaterial";

/** The four files a restore writes into cacerts (in the layout cacerts has). */
export type { CacertsFiles };

/** Reads a Secret (cacerts, or a backup in istio-ca:backupNamespace), values decoded; undefined when it does not exist. */
export async function readSecretFiles(kubectl: Kubectl, namespace: string, name: string): Promise<ExistingSecret | undefined> {
    const secret = await getSecret(kubectl, namespace, name);
    if (!secret) {
        return undefined;
    }
    return {
        name: secret.metadata.name,
        resourceVersion: secret.metadata.resourceVersion,
        type: secret.type,
        data: Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")])),
    };
}

/** The backup istio-ca:restoreCacertsFrom names, read in memory; a failed read names the key. */
export async function readRestoreSource(kubectl: Kubectl, namespace: string, name: string): Promise<ExistingSecret | undefined> {
    try {
        return await readSecretFiles(kubectl, namespace, name);
    } catch (err) {
        throw new Error(`istio-ca:restoreCacertsFrom: cannot read Secret ${namespace}/${name} (the identity needs get on it): ${(err as Error).message}`);
    }
}

const subject = (cert: X509Certificate): string => cert.subject.split("\n").filter(Boolean).join(", ");
const issues = (issuer: X509Certificate, cert: X509Certificate): boolean => cert.checkIssued(issuer) && cert.verify(issuer.publicKey);

/**
 * What stops a content from being served as cacerts: the four files present and parsing, ca-key.pem
 * the key of ca-cert.pem, ca-cert.pem a CA valid now, cert-chain.pem starting with ca-cert.pem and
 * verifying, link by link, to a root of root-cert.pem. A kubernetes.io/tls content is checked as
 * istiod reads it (tls.crt as ca-cert.pem, tls.key as ca-key.pem, ca.crt as root-cert.pem).
 */
export function cacertsContentProblems(content: Readonly<Record<string, string>>, now = new Date()): string[] {
    const incomplete = incompleteCacerts(content);
    if (incomplete.length > 0) {
        return incomplete;
    }
    const data = istiodView(content).files;
    const problems: string[] = [];
    const caCert = parseCertificates(data["ca-cert.pem"], "ca-cert.pem")[0];
    const key: KeyObject = createPrivateKey({ key: data["ca-key.pem"], format: "pem" });
    if (!caCert.checkPrivateKey(key)) {
        problems.push(`ca-key.pem is not the key of ca-cert.pem (${subject(caCert)}): their public keys differ`);
    }
    let isCa = false;
    try {
        isCa = caExtensions(caCert.raw).basicConstraints?.ca === true;
    } catch {
        // unreadable extensions: reported as not a CA
    }
    if (!isCa) {
        problems.push(`ca-cert.pem (${subject(caCert)}) is not a CA (no basicConstraints CA:TRUE): istiod cannot sign workload certificates with it`);
    }
    const notAfter = new Date(caCert.validTo);
    if (notAfter.getTime() < now.getTime()) {
        problems.push(`ca-cert.pem (${subject(caCert)}) expired on ${notAfter.toISOString()}`);
    }
    const roots = parseCertificates(data["root-cert.pem"], "root-cert.pem");
    const rootFps = new Set(roots.map(fingerprint));
    const chain = parseCertificates(data["cert-chain.pem"], "cert-chain.pem");
    if (fingerprint(chain[0]) !== fingerprint(caCert)) {
        problems.push(`cert-chain.pem does not start with ca-cert.pem (it starts with ${subject(chain[0])})`);
    }
    for (let i = 0; i + 1 < chain.length; i++) {
        if (!issues(chain[i + 1], chain[i])) {
            problems.push(`cert-chain.pem: certificate #${i + 1} (${subject(chain[i])}) is not signed by #${i + 2} (${subject(chain[i + 1])})`);
        }
    }
    const last = chain[chain.length - 1];
    if (!rootFps.has(fingerprint(last)) && !roots.some((root) => issues(root, last))) {
        problems.push(`cert-chain.pem does not verify to a root of root-cert.pem: it ends with ${subject(last)}, which is neither one of its ` +
            `${roots.length} root(s) nor signed by one`);
    }
    return problems;
}

/**
 * The content to restore, checked; throws naming the config key and the Secret. `source` is the
 * Secret as read from the cluster (undefined: not found).
 */
export function restoreSource(name: string, namespace: string, source: ExistingSecret | undefined, where: string, now = new Date()): CacertsFiles {
    const what = `istio-ca:restoreCacertsFrom: Secret ${namespace}/${name}`;
    if (!source) {
        throw new Error(`${what} does not exist in ${where}. The backups there: kubectl get secret -n ${namespace} -l ${BACKUP_SELECTOR}; ` +
            "or remove istio-ca:restoreCacertsFrom to serve the generated material");
    }
    const problems = cacertsContentProblems(source.data, now);
    const view = istiodView(source.data);
    if (problems.length > 0) {
        const layout = view.format === "tls" ? " (kubernetes.io/tls layout, read as istiod does: tls.crt as ca-cert.pem, tls.key as ca-key.pem, ca.crt as root-cert.pem)" : "";
        throw new Error(`${what} cannot be restored into cacerts (istiod would refuse it)${layout}:\n  - ${problems.join("\n  - ")}`);
    }
    return filesOf(view.files);
}
