// Certificate material for tests, generated at test time with openssl (never committed).
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface TestCa {
    certPem: string;
    keyPem: string;
    certPath: string;
    keyPath: string;
}

let workDir: string | undefined;
function dir(): string {
    if (!workDir) {
        workDir = fs.mkdtempSync(path.join(os.tmpdir(), "istio-ca-test-certs-"));
        process.on("exit", () => fs.rmSync(workDir!, { recursive: true, force: true }));
    }
    return workDir;
}

export function openssl(args: string[], input?: string): string {
    return execFileSync("openssl", args, { cwd: dir(), input, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
}

let counter = 0;

/** A self-signed CA (EC P-256: fast), subject `/O=Istio/CN=<cn>`. */
export function selfSignedCa(cn = "Root CA", days = 3650): TestCa {
    const id = `ca${++counter}`;
    openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${id}.key`, "-out", `${id}.crt`,
        "-days", String(days), "-subj", `/O=Istio/CN=${cn}`, "-addext", "basicConstraints=critical,CA:true", "-addext", "keyUsage=critical,keyCertSign,digitalSignature"]);
    return read(id);
}

/** A CA (or a leaf with `ca: false`) signed by `issuer`. */
export function issuedBy(issuer: TestCa, subject: string, opts: { ca?: boolean; days?: number; san?: string } = {}): TestCa {
    const id = `cert${++counter}`;
    openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${id}.key`, "-out", `${id}.csr`, "-subj", subject]);
    const ext = [
        opts.ca === false ? "basicConstraints=critical,CA:false" : "basicConstraints=critical,CA:true,pathlen:0",
        opts.ca === false ? "keyUsage=critical,digitalSignature,keyEncipherment" : "keyUsage=critical,keyCertSign,digitalSignature",
    ];
    if (opts.san) {
        ext.push(`subjectAltName=${opts.san}`);
    }
    fs.writeFileSync(path.join(dir(), `${id}.ext`), ext.join("\n") + "\n");
    openssl(["x509", "-req", "-in", `${id}.csr`, "-CA", issuer.certPath, "-CAkey", issuer.keyPath, "-CAcreateserial",
        "-out", `${id}.crt`, "-days", String(opts.days ?? 365), "-extfile", `${id}.ext`]);
    return read(id);
}

function read(id: string): TestCa {
    const certPath = path.join(dir(), `${id}.crt`);
    const keyPath = path.join(dir(), `${id}.key`);
    return { certPem: fs.readFileSync(certPath, "utf8"), keyPem: fs.readFileSync(keyPath, "utf8"), certPath, keyPath };
}

/** Writes `content` to a fresh file in the test dir and returns its path. */
export function writeTemp(name: string, content: string): string {
    const p = path.join(dir(), `${++counter}-${name}`);
    fs.writeFileSync(p, content);
    return p;
}

/**
 * A CA as istiod makes its own when it starts without cacerts (istio/istio
 * security/pkg/pki/ca/ca.go, NewSelfSignedIstioCAOptions): self-signed, RSA 2048, O=<trust domain>,
 * no CN, CA:true with certificate signing, ten years. istiod keeps it in istio-ca-secret as
 * ca-cert.pem / ca-key.pem.
 */
export function istiodSelfSignedCa(trustDomain = "cluster.local"): TestCa {
    const id = `istiod${++counter}`;
    openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", `${id}.key`, "-out", `${id}.crt`, "-days", "3650",
        "-subj", `/O=${trustDomain}`, "-addext", "basicConstraints=critical,CA:true", "-addext", "keyUsage=critical,keyCertSign,digitalSignature"]);
    return read(id);
}

/** A cacerts made by hand (Istio's Makefile way): an intermediate under `root`, and its four files. */
export function handMadeCacerts(root: TestCa = selfSignedCa("Hand Root")): { root: TestCa; intermediate: TestCa; files: Record<string, string> } {
    const intermediate = issuedBy(root, "/O=Istio/CN=Intermediate CA/L=by-hand");
    return {
        root,
        intermediate,
        files: {
            "ca-cert.pem": intermediate.certPem,
            "ca-key.pem": intermediate.keyPem,
            "root-cert.pem": root.certPem,
            "cert-chain.pem": intermediate.certPem + root.certPem,
        },
    };
}

/**
 * A cacerts as cert-manager lays it out (a Certificate with isCA: true, secretName cacerts, issued
 * by a CA Issuer): Secret type kubernetes.io/tls, the intermediate in tls.crt, its key in tls.key,
 * the issuing root in ca.crt.
 */
export function certManagerCacerts(root: TestCa = selfSignedCa("cert-manager Root")): { root: TestCa; intermediate: TestCa; files: Record<string, string> } {
    const intermediate = issuedBy(root, "/O=Istio/CN=Intermediate CA/L=cert-manager");
    return { root, intermediate, files: { "tls.crt": intermediate.certPem, "tls.key": intermediate.keyPem, "ca.crt": root.certPem } };
}
