package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
)

const testURN = resource.URN("urn:pulumi:dev::p::command:local:Command::c")

func props(m map[string]any) resource.PropertyMap { return resource.NewPropertyMapFromMap(m) }

func TestDiff(t *testing.T) {
	base := map[string]any{"create": "echo hi", "triggers": []any{"a"}, "environment": map[string]any{"X": "1"}}
	olds := props(base)

	if d := diffInputs(olds, props(base), nil); d.Changes != plugin.DiffNone {
		t.Fatalf("same inputs: want no diff, got %+v", d)
	}

	changedTrigger := props(map[string]any{"create": "echo hi", "triggers": []any{"b"}, "environment": map[string]any{"X": "1"}})
	d := diffInputs(olds, changedTrigger, nil)
	if d.Changes != plugin.DiffSome || len(d.ReplaceKeys) != 1 || d.ReplaceKeys[0] != "triggers" {
		t.Fatalf("trigger change: want replace on triggers, got %+v", d)
	}
	if !d.DetailedDiff["triggers"].Kind.IsReplace() {
		t.Fatalf("trigger change: detailed diff must be a replace: %+v", d.DetailedDiff)
	}

	changedEnv := props(map[string]any{"create": "echo hi", "triggers": []any{"a"}, "environment": map[string]any{"X": "2"}})
	d = diffInputs(olds, changedEnv, nil)
	if d.Changes != plugin.DiffSome || len(d.ReplaceKeys) != 0 || d.DetailedDiff["environment"].Kind != plugin.DiffUpdate {
		t.Fatalf("environment change: want update, got %+v", d)
	}

	unknownTrigger := props(map[string]any{"create": "echo hi", "environment": map[string]any{"X": "1"}})
	unknownTrigger["triggers"] = resource.NewArrayProperty([]resource.PropertyValue{
		resource.MakeComputed(resource.NewStringProperty("")),
	})
	if d = diffInputs(olds, unknownTrigger, nil); len(d.ReplaceKeys) != 1 {
		t.Fatalf("unknown trigger: want replace, got %+v", d)
	}

	secretEnv := props(base)
	secretEnv["environment"] = resource.MakeSecret(secretEnv["environment"])
	d = diffInputs(olds, secretEnv, nil)
	if d.Changes != plugin.DiffSome || len(d.ReplaceKeys) != 0 {
		t.Fatalf("secretness change: want update without replace, got %+v", d)
	}
	secretTrig := props(base)
	secretTrig["triggers"] = resource.MakeSecret(secretTrig["triggers"])
	if d = diffInputs(olds, secretTrig, nil); d.Changes != plugin.DiffSome || len(d.ReplaceKeys) != 0 {
		t.Fatalf("trigger secretness change: want update without replace, got %+v", d)
	}

	if d = diffInputs(olds, changedEnv, []string{"environment"}); d.Changes != plugin.DiffNone {
		t.Fatalf("ignoreChanges: want no diff, got %+v", d)
	}
}

func TestCheck(t *testing.T) {
	p := newProvider("1.2.1")
	resp, err := p.Check(context.Background(), plugin.CheckRequest{
		URN: testURN, Type: commandToken,
		News: props(map[string]any{"create": "x", "logging": "loud", "assetPaths": []any{"*.txt"}}),
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range resp.Failures {
		got[string(f.Property)] = true
	}
	if !got["logging"] || !got["assetPaths"] || len(resp.Failures) != 2 {
		t.Fatalf("want failures for logging and assetPaths, got %+v", resp.Failures)
	}
}

func TestCreatePreviewRunsNothing(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	p := newProvider("1.2.1")
	resp, err := p.Create(context.Background(), plugin.CreateRequest{
		URN: testURN, Name: "c", Type: commandToken, Preview: true,
		Properties: props(map[string]any{"create": "touch " + marker}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("preview ran the command")
	}
	if !resp.Properties["stdout"].IsComputed() {
		t.Fatalf("preview stdout should be unknown: %v", resp.Properties["stdout"])
	}
}

func TestCreateUpdateDelete(t *testing.T) {
	dir := t.TempDir()
	p := newProvider("1.2.1")
	ctx := context.Background()
	in := props(map[string]any{
		"create":      "printf 'out %s\\n' \"$GREETING\"; echo err >&2; pwd",
		"update":      "echo \"prev=$PULUMI_COMMAND_STDOUT\" | head -1",
		"delete":      "echo bye > deleted",
		"dir":         dir,
		"environment": map[string]any{"GREETING": "hello"},
	})
	in["environment"] = resource.MakeSecret(in["environment"])
	created, err := p.Create(ctx, plugin.CreateRequest{URN: testURN, Name: "c", Type: commandToken, Properties: in})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(created.ID), "c") {
		t.Fatalf("id %q", created.ID)
	}
	stdout := created.Properties["stdout"]
	if !stdout.IsSecret() {
		t.Fatal("stdout must be secret when an input is secret")
	}
	if got, want := unwrapSecret(stdout).StringValue(), "out hello\n"+dir; got != want {
		t.Fatalf("stdout %q, want %q", got, want)
	}
	if got := unwrapSecret(created.Properties["stderr"]).StringValue(); got != "err" {
		t.Fatalf("stderr %q", got)
	}
	if !created.Properties["environment"].IsSecret() {
		t.Fatal("environment must stay secret in the outputs")
	}

	updated, err := p.Update(ctx, plugin.UpdateRequest{
		URN: testURN, Name: "c", Type: commandToken, ID: created.ID,
		OldInputs: in, OldOutputs: created.Properties, NewInputs: in,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := unwrapSecret(updated.Properties["stdout"]).StringValue(); got != "prev=out hello" {
		t.Fatalf("update stdout %q", got)
	}

	if _, err := p.Delete(ctx, plugin.DeleteRequest{
		URN: testURN, Name: "c", Type: commandToken, ID: created.ID, Inputs: in, Outputs: updated.Properties,
	}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "deleted")); err != nil || string(b) != "bye\n" {
		t.Fatalf("delete command did not run: %v %q", err, b)
	}
}

func TestFailureMessage(t *testing.T) {
	p := newProvider("1.2.1")
	_, err := p.Create(context.Background(), plugin.CreateRequest{
		URN: testURN, Name: "c", Type: commandToken,
		Properties: props(map[string]any{"create": "echo doing; echo broken >&2; exit 3"}),
	})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"exit status 3", `running "echo doing; echo broken >&2; exit 3"`, "doing\n", "broken\n"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not contain %q", err, want)
		}
	}
}

func TestLoggingInterpreterStdin(t *testing.T) {
	var lines []string
	log := func(s string) { lines = append(lines, s) }
	in := inputs{logging: logStderr, interpreter: []string{"/bin/sh", "-c"}, stdin: "from stdin\n"}
	res, err := runCommand(context.Background(), "cat; echo e1 >&2", in, result{}, log)
	if err != nil {
		t.Fatal(err)
	}
	if res.stdout != "from stdin" || strings.Join(lines, "|") != "e1" {
		t.Fatalf("stdout %q, logged %q", res.stdout, lines)
	}
	lines = nil
	in.logging = logStdoutAndStderr
	if _, err := runCommand(context.Background(), "echo a; echo b", in, result{}, log); err != nil {
		t.Fatal(err)
	}
	if strings.Join(lines, "|") != "a|b" {
		t.Fatalf("logged %q", lines)
	}
}

func TestTimeoutKillsProcessGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := runCommand(ctx, "sleep 30 & sleep 30", inputs{logging: logNone}, result{}, func(string) {})
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("want a timeout error, got %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("took %s", time.Since(start))
	}
}

func TestSchemaAndInfo(t *testing.T) {
	p := newProvider("1.2.1")
	info, _ := p.GetPluginInfo(context.Background())
	if info.Version.String() != "1.2.1" {
		t.Fatal(info.Version)
	}
	s, _ := p.GetSchema(context.Background(), plugin.GetSchemaRequest{})
	if !strings.Contains(string(s.Schema), `"command:local:Command"`) {
		t.Fatal("schema lacks command:local:Command")
	}
}

// runs runCommand in the background; the result arrives on the channel unless it hangs.
func runAsync(ctx context.Context, command string, in inputs) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := runCommand(ctx, command, in, result{}, func(string) {})
		done <- err
	}()
	return done
}

// Upstream's 64 KiB line limit (bufio.Scanner in LogOutput): a logged line of 60 KiB is fine; one of
// 70 KiB stops the log reader, and the run never finishes (a user's `pulumi up` hangs); with
// logging off (nothing scans the output) the same line is fine.
func TestOutputLineLimitHangsLikeUpstream(t *testing.T) {
	line := func(kib int) string { return fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x; echo; echo after", kib*1024) }
	if err := <-runAsync(context.Background(), line(60), inputs{logging: logStdoutAndStderr}); err != nil {
		t.Fatalf("60 KiB line: %v", err)
	}
	if err := <-runAsync(context.Background(), line(70), inputs{logging: logNone}); err != nil {
		t.Fatalf("70 KiB line, logging none: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // the hung run's copier stays blocked: upstream's behaviour, leaked on purpose here
	select {
	case err := <-runAsync(ctx, line(70), inputs{logging: logStdoutAndStderr}):
		t.Fatalf("70 KiB logged line: want the run to hang as upstream's does, it returned (%v)", err)
	case <-time.After(3 * time.Second):
	}
	for _, logging := range []loggingMode{logStdout, logStderr} {
		cmd := line(70)
		if logging == logStderr {
			cmd = "{ " + cmd + "; } >&2"
		}
		select {
		case err := <-runAsync(ctx, cmd, inputs{logging: logging}):
			t.Fatalf("70 KiB line, logging %s: want a hang, got %v", logging, err)
		case <-time.After(2 * time.Second):
		}
	}
}

// Upstream passes the previous stdout in PULUMI_COMMAND_STDOUT (addPreviousOutputInEnv, default
// true): past Linux's 128 KiB limit for one environment string the next update cannot start.
// addPreviousOutputInEnv: false leaves it out.
func TestPreviousOutputInEnvironment(t *testing.T) {
	big := result{stdout: strings.Repeat("n", 200*1024)}
	_, err := runCommand(context.Background(), "true", inputs{logging: logNone, addPreviousOutputInEnv: true}, big, func(string) {})
	if err == nil || !strings.Contains(err.Error(), "argument list too long") {
		t.Fatalf("200 KiB previous stdout: want 'argument list too long', got %v", err)
	}
	res, err := runCommand(context.Background(), `echo "${PULUMI_COMMAND_STDOUT:-unset}"`, inputs{logging: logNone}, big, func(string) {})
	if err != nil || res.stdout != "unset" {
		t.Fatalf("addPreviousOutputInEnv false: want no PULUMI_COMMAND_STDOUT, got %q %v", res.stdout, err)
	}
	res, err = runCommand(context.Background(), `echo "$PULUMI_COMMAND_STDOUT"`, inputs{logging: logNone, addPreviousOutputInEnv: true}, result{stdout: "prev"}, func(string) {})
	if err != nil || res.stdout != "prev" {
		t.Fatalf("addPreviousOutputInEnv true: got %q %v", res.stdout, err)
	}
}
