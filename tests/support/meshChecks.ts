// Judgements on the certificates real pilot-agents got from real istiod: who issued them, and
// whether two workloads can complete an mTLS handshake (each side presenting its certificate and
// trusting only its own bundle, as Envoy does between sidecars).
import { X509Certificate } from "node:crypto";
import * as tls from "node:tls";
import type { AddressInfo } from "node:net";
import type { WorkloadCertificate } from "../harness/meshAgents";
import { splitCertificates } from "../../common/pem";

/** Why `w`'s leaf was not issued by `caCertPem` (undefined: it was). */
export function notIssuedBy(w: WorkloadCertificate, caCertPem: string): string | undefined {
    const leaf = new X509Certificate(splitCertificates(w.certChainPem)[0]);
    const ca = new X509Certificate(caCertPem);
    if (leaf.checkIssued(ca) && leaf.verify(ca.publicKey)) return undefined;
    return `${w.proxy}: certificate (serial ${leaf.serialNumber}) issued by "${leaf.issuer.replace(/\n/g, ", ")}", not by the signing certificate in cacerts ("${ca.subject.replace(/\n/g, ", ")}", serial ${ca.serialNumber})`;
}

/**
 * Why `w`'s chain does not lead to a root of `bundlePem` (undefined: it does): from the leaf, each
 * certificate signed by the next until one is a root of the bundle or issued by one. (istiod's
 * answer to a CSR, which the agent keeps, ends with the whole trust bundle: later roots are extra.)
 */
export function notVerifiedBy(w: WorkloadCertificate, bundlePem: string): string | undefined {
    const chain = splitCertificates(w.certChainPem).map((p) => new X509Certificate(p));
    const roots = splitCertificates(bundlePem).map((p) => new X509Certificate(p));
    const signs = (issuer: X509Certificate, cert: X509Certificate): boolean => cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
    for (let i = 0; i < chain.length; i++) {
        if (roots.some((r) => r.fingerprint256 === chain[i].fingerprint256 || signs(r, chain[i]))) return undefined;
        if (i + 1 === chain.length || !signs(chain[i + 1], chain[i])) {
            return `${w.proxy}: certificate ${i} of its chain ("${chain[i].subject.replace(/\n/g, ", ")}") is neither issued by the next nor by a root of the served bundle`;
        }
    }
    return `${w.proxy}: empty certificate chain`;
}

/** Proxies whose chain the served bundle does not verify, with the reason. */
export function workloadsNotVerifiedBy(certs: WorkloadCertificate[], bundlePem: string): string[] {
    return certs.map((w) => notVerifiedBy(w, bundlePem)).filter((x): x is string => x !== undefined);
}

/** Proxies whose certificate cacerts' current signer did not issue, with the reason. */
export function workloadsNotIssuedBy(certs: WorkloadCertificate[], caCertPem: string): string[] {
    return certs.map((w) => notIssuedBy(w, caCertPem)).filter((x): x is string => x !== undefined);
}

/** One mTLS handshake: `server` presents and checks with its files, `client` with its own. Resolves to the error, or undefined. */
export function handshake(server: WorkloadCertificate, client: WorkloadCertificate, timeoutMs = 5000): Promise<string | undefined> {
    return new Promise((resolve) => {
        let serverError: string | undefined;
        const srv = tls.createServer({ key: server.keyPem, cert: server.certChainPem, ca: server.rootCertPem, requestCert: true, rejectUnauthorized: true });
        const done = (err: string | undefined): void => {
            clearTimeout(timer);
            srv.close();
            resolve(err);
        };
        const timer = setTimeout(() => done("timed out"), timeoutMs);
        srv.on("tlsClientError", (e) => {
            serverError = `${server.proxy} rejected ${client.proxy}: ${e.message}`;
        });
        srv.on("secureConnection", (s) => s.end());
        srv.listen(0, "127.0.0.1", () => {
            const socket = tls.connect({
                host: "127.0.0.1",
                port: (srv.address() as AddressInfo).port,
                key: client.keyPem,
                cert: client.certChainPem,
                ca: client.rootCertPem,
                // Workload certificates name a SPIFFE URI, no host: Envoy matches SANs, not host names.
                checkServerIdentity: () => undefined,
                rejectUnauthorized: true,
            });
            socket.on("secureConnect", () => {
                // TLS 1.3: the server judges the client's certificate after the client's Finished; read to learn its verdict.
                socket.once("data", () => undefined);
                socket.once("end", () => done(serverError));
                socket.once("close", () => done(serverError));
            });
            socket.on("error", (e) => done(serverError ?? `${client.proxy} rejected ${server.proxy}: ${e.message}`));
        });
    });
}

/** Every ordered pair of distinct workloads: the failed handshakes (empty: all succeeded). */
export async function failedHandshakes(certs: WorkloadCertificate[]): Promise<string[]> {
    const failures: string[] = [];
    for (const server of certs) {
        for (const client of certs) {
            if (server === client) continue;
            const err = await handshake(server, client);
            if (err) failures.push(err);
        }
    }
    return failures;
}

/**
 * Every workload certificate seen while something ran, with when it was first and last seen live:
 * two certificates whose spans overlap were live together, so their workloads may have talked.
 */
export class CertificateHistory {
    private readonly seen = new Map<string, { cert: WorkloadCertificate; cluster: string; first: number; last: number }>();
    private sampler: NodeJS.Timeout | undefined;

    /** Samples `read()` of each cluster every intervalMs until stop(). */
    start(clusters: Record<string, () => WorkloadCertificate[]>, intervalMs = 1000): void {
        const sample = (): void => {
            const now = Date.now();
            for (const [cluster, read] of Object.entries(clusters)) {
                for (const cert of read()) {
                    const key = `${cluster}/${cert.certChainPem}/${cert.rootCertPem}`;
                    const entry = this.seen.get(key);
                    if (entry) entry.last = now;
                    else this.seen.set(key, { cert: { ...cert, proxy: `${cert.proxy}@${cluster}` }, cluster, first: now, last: now });
                }
            }
        };
        sample();
        this.sampler = setInterval(sample, intervalMs);
    }

    stop(): void {
        clearInterval(this.sampler);
    }

    get size(): number {
        return this.seen.size;
    }

    /** Pairs of certificates of two different clusters that were live at the same time. */
    concurrentCrossClusterPairs(): [WorkloadCertificate, WorkloadCertificate][] {
        const entries = [...this.seen.values()];
        const pairs: [WorkloadCertificate, WorkloadCertificate][] = [];
        for (const a of entries) {
            for (const b of entries) {
                if (a.cluster < b.cluster && a.first <= b.last && b.first <= a.last) pairs.push([a.cert, b.cert]);
            }
        }
        return pairs;
    }
}

/** Each pair both ways: the failed handshakes. */
export async function failedPairHandshakes(pairs: [WorkloadCertificate, WorkloadCertificate][]): Promise<string[]> {
    const failures: string[] = [];
    for (const [a, b] of pairs) {
        for (const [server, client] of [[a, b], [b, a]]) {
            const err = await handshake(server, client);
            if (err) failures.push(err);
        }
    }
    return failures;
}
