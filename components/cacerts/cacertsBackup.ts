import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { IstioCaConfig } from "../../plan/config";
import { BACKUP_STEP } from "../../steps/stepEnv";
import { stepCommand, stepCommandEnv } from "../rollout/meshRollout";

export interface CacertsBackupArgs {
    config: IstioCaConfig;
    /** Public hash of the content cacerts is about to get (publicContentHash): every new content runs the backup. */
    newContentHash: pulumi.Input<string>;
    /** Content hash of a changed cacerts about to be overwritten (istio-ca:overwriteChangedCacerts): backed up too. */
    overwrites?: string;
}

/**
 * Copies the current `cacerts` to `cacerts-backup-<fingerprint>` before cacerts changes: on the
 * first `up` (a takeover keeps what was there) and on every rotation or restore. The cacerts
 * Secret depends on this command. The copy is made by the step (steps/backupCacerts.ts) with kubectl, not
 * registered as a resource, so `pulumi destroy` never deletes a backup.
 */
export class CacertsBackup extends pulumi.ComponentResource {
    public readonly command: command.local.Command;
    /** The step's JSON summary line (backup name, created or already there). */
    public readonly summary: pulumi.Output<string>;

    constructor(name: string, args: CacertsBackupArgs, opts?: pulumi.ComponentResourceOptions) {
        super("istio-ca:k8s:CacertsBackup", name, {}, opts);
        this.command = new command.local.Command(`${name}-cacerts`, {
            ...stepCommand(BACKUP_STEP),
            // Unlike the restarts, an input change (istio-ca:keepBackups, backupNamespace) runs the
            // step itself: it copies only what is not backed up yet, then prunes to what is kept.
            update: stepCommand(BACKUP_STEP).create,
            // The namespace (how to reach the cluster is in the settings file): nothing secret,
            // nothing that changes with the content.
            environment: stepCommandEnv(args.config, {}, BACKUP_STEP),
            // Known in preview when the content is (no-op, restore): a no-op preview shows no change.
            triggers: args.overwrites ? [args.newContentHash, `overwrites ${args.overwrites}`] : [args.newContentHash],
        }, { parent: this });
        this.summary = this.command.stdout.apply((out) => out.trim().split("\n").pop() ?? "");
        this.registerOutputs({ summary: this.summary });
    }
}
