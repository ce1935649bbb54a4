// Entry point of the step commands: `node dist/lib/cli/main.js [unchanged] <step>` (that file
// loads this one), settings from the environment and the stack's settings file
// (steps/stepEnv.ts). Progress goes to stderr; the last stdout line is a JSON summary (the program
// reads restartedNamespaces from it). Exit 1 with a report on failure. The output is bounded
// (steps/stepOutput.ts): the command provider hangs on a line of 64 KiB or more.
import { projectRoot } from "../common/stackDir";
import { runStep } from "./stepRunner";

runStep(process.argv.slice(2), {
    env: process.env,
    write: (stream, text) => process[stream].write(text),
    root: projectRoot(),
}).then((code) => process.exit(code));
