// istio-ca: Istio's plug-in CA for one cluster. The stack's config (Pulumi.<stack>.yaml) says which
// cluster and which root generations. program/istioCa.ts runs the manual procedure's steps in order:
//   1. decide the change and refuse it before anything is applied   (program/change.ts, plan/)
//   2. make the roots and the intermediate                            (components/pki/)
//   3. back up cacerts, then write it in place                        (components/cacerts/)
//   4. restart istiod, wait for the bundle, restart workloads, verify (components/rollout/, steps/)
//   5. record what was deployed once the last check passed            (the stack outputs)
// Nothing here holds key material.
import { runIstioCa } from "./program/istioCa";

export = runIstioCa;
