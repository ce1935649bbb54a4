// istio-ca: Istio's plug-in CA for one cluster. The stack's config (Pulumi.<stack>.yaml) says
// which cluster and which key generations; components/program.ts builds the PKI, the cacerts
// Secret and the ordered restarts. Nothing here holds key material.
import { loadConfig } from "./components/config";
import { istioCa } from "./components/program";

const ca = istioCa(loadConfig());

export const clusterName = ca.clusterName;
export const istioNamespace = ca.istioNamespace;
export const signingRoot = ca.signingRoot;
export const trustedRoots = ca.trustedRoots;
export const intermediate = ca.intermediate;
export const restartedNamespaces = ca.restartedNamespaces;
export const cacertsContentHash = ca.cacertsContentHash;
