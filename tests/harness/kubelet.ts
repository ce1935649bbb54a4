// What the kubelet does for the real Istio processes the test rig runs outside pods: follow API
// objects (one `kubectl get --watch` each) and lay a Secret's or ConfigMap's keys into a directory
// the way the kubelet updates a mounted volume (pkg/volume/util/atomic_writer.go): the files are
// written into a new timestamped directory, `..data` is swapped to it with one rename, and each key
// is a symlink through `..data`. A reader (istiod's fsnotify watch on its cert dir) never sees a
// half-written set.
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Cluster } from "./cluster";
import { JsonObjectSplitter } from "../../kube/kubeWatch";

export interface WatchEvent<T> {
    type: "ADDED" | "MODIFIED" | "DELETED" | string;
    object: T;
}

/** Follows `kubectl get <args> --watch` (restarted when kubectl ends) until stop() is called. */
export class KubeWatch<T> {
    private child: ChildProcess | undefined;
    private running = true;
    private readonly loop: Promise<void>;

    constructor(private readonly cluster: Cluster, private readonly args: string[], private readonly onEvent: (ev: WatchEvent<T>) => void) {
        this.loop = (async () => {
            while (this.running) {
                await this.once();
                if (this.running) await new Promise((r) => setTimeout(r, 500));
            }
        })();
    }

    private once(): Promise<void> {
        return new Promise((resolve) => {
            const child = spawn(path.join(this.cluster.binDir, "kubectl"), [
                "--kubeconfig", this.cluster.kubeconfig, "get", ...this.args, "--watch", "--output-watch-events", "-o", "json",
            ], { stdio: ["ignore", "pipe", "ignore"] });
            this.child = child;
            const splitter = new JsonObjectSplitter();
            child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
                for (const text of splitter.push(chunk)) {
                    this.onEvent(JSON.parse(text) as WatchEvent<T>);
                }
            });
            child.on("error", () => resolve());
            child.on("close", () => resolve());
        });
    }

    async stop(): Promise<void> {
        this.running = false;
        this.child?.kill();
        await this.loop;
    }
}

/** Decoded values of a Secret's `data` (or a ConfigMap's `data` as is). */
export function secretFiles(data: Record<string, string> | undefined): Record<string, string> {
    return Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]));
}

let generation = 0;

/** Makes `dir` hold exactly `files`, swapped in atomically as the kubelet does. */
export function writeVolumeAtomically(dir: string, files: Record<string, string>): void {
    fs.mkdirSync(dir, { recursive: true });
    const stamp = `..${new Date().toISOString().replace(/[-:.]/g, "_")}.${process.pid}.${++generation}`;
    const target = path.join(dir, stamp);
    fs.mkdirSync(target);
    for (const [name, content] of Object.entries(files)) {
        fs.writeFileSync(path.join(target, name), content, { mode: 0o644 });
    }
    const previous = readLinkOrUndefined(path.join(dir, "..data"));
    fs.symlinkSync(stamp, path.join(dir, "..data_tmp"));
    fs.renameSync(path.join(dir, "..data_tmp"), path.join(dir, "..data"));
    for (const name of Object.keys(files)) {
        if (readLinkOrUndefined(path.join(dir, name)) === undefined) {
            fs.symlinkSync(path.join("..data", name), path.join(dir, name));
        }
    }
    for (const entry of fs.readdirSync(dir)) {
        if (!entry.startsWith("..") && !(entry in files)) fs.rmSync(path.join(dir, entry), { force: true });
    }
    if (previous && previous !== stamp) fs.rmSync(path.join(dir, previous), { recursive: true, force: true });
}

function readLinkOrUndefined(p: string): string | undefined {
    try {
        return fs.readlinkSync(p);
    } catch {
        return undefined;
    }
}
