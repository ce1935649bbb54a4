// The test rig's kubelet lays a Secret into istiod's cert directory as the kubelet does: one atomic
// swap of `..data`, each key a symlink through it, keys that left the Secret removed.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { writeVolumeAtomically } from "../harness/kubelet";

test("a volume update swaps ..data once; keys are symlinks through it; removed keys go", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "volume-"));
    try {
        writeVolumeAtomically(dir, { "ca-cert.pem": "one", "tls.crt": "stale" });
        const first = fs.readlinkSync(path.join(dir, "..data"));
        assert.equal(fs.readlinkSync(path.join(dir, "ca-cert.pem")), path.join("..data", "ca-cert.pem"));
        writeVolumeAtomically(dir, { "ca-cert.pem": "two", "root-cert.pem": "root" });
        const second = fs.readlinkSync(path.join(dir, "..data"));
        assert.notEqual(second, first);
        assert.equal(fs.readFileSync(path.join(dir, "ca-cert.pem"), "utf8"), "two");
        assert.equal(fs.readFileSync(path.join(dir, "root-cert.pem"), "utf8"), "root");
        assert.ok(!fs.existsSync(path.join(dir, "tls.crt")), "a key that left the Secret leaves the volume");
        assert.ok(!fs.existsSync(path.join(dir, first)), "the previous data directory is removed");
        assert.ok(!fs.existsSync(path.join(dir, "..data_tmp")));
        writeVolumeAtomically(dir, {});
        assert.deepEqual(fs.readdirSync(dir).filter((e) => !e.startsWith("..")), [], "an absent Secret: an empty volume");
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});
