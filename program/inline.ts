// The program as the Automation API runs it inline (the driver, the tests, the demo, the benchmark):
// the same code `pulumi up` runs from index.ts.
import * as automation from "@pulumi/pulumi/automation";

/** The program, run inline: the same code `pulumi up` runs from index.ts. */
export const inlineProgram: automation.PulumiFn = async () => {
    const { runIstioCa } = await import("./istioCa");
    return runIstioCa();
};
