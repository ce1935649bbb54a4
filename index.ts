// istio-ca: Istio's plug-in CA for one cluster. The stack's config (Pulumi.<stack>.yaml) says
// which cluster and which key generations; program/istioCa.ts checks the change, builds the
// PKI, the cacerts Secret and the ordered restarts. Nothing here holds key material.
import { runIstioCa } from "./program/istioCa";

export = runIstioCa;
