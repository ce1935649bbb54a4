// Deployed stacks record `node dist/lib/cli/main.js <step>` in their step commands, so the path
// stays: moving it would show an update of every step in every stack's next preview.
// The step entry point is steps/main.ts.
import "../../steps/main";
