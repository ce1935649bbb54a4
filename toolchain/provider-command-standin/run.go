// STAND-IN: running one command for command:local:Command (istio-ca). Not upstream code.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

type loggingMode string

const (
	logStdout          loggingMode = "stdout"
	logStderr          loggingMode = "stderr"
	logStdoutAndStderr loggingMode = "stdoutAndStderr"
	logNone            loggingMode = "none"
)

func parseLogging(s string) (loggingMode, bool) {
	switch m := loggingMode(s); m {
	case logStdout, logStderr, logStdoutAndStderr, logNone:
		return m, true
	}
	return "", false
}

// result is what a run leaves in the state: its output, without the final newline.
type result struct {
	stdout, stderr string
}

// defaultInterpreter is used when `interpreter` is not set (the schema's documented default).
var defaultInterpreter = []string{"/bin/sh", "-c"}

// logOutput is upstream's LogOutput: one log line per scanned line, default bufio.Scanner limit
// (bufio.MaxScanTokenSize, 64 KiB). It stops at the first longer line and never reads again.
func logOutput(r io.Reader, done chan<- struct{}, logLine func(string)) {
	defer close(done)
	scanner := bufio.NewScanner(r)
	for scanner.Scan() {
		logLine(scanner.Text())
	}
}

// lockedWriter serialises writes from the stdout and stderr copiers into one buffer.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// runCommand runs `command` through the interpreter with the provider's environment plus
// in.environment (plus PULUMI_COMMAND_STDOUT/STDERR from the previous run when
// addPreviousOutputInEnv), in in.dir or the provider's working directory. Each output line is
// passed to logLine according to in.logging while the command runs. A failure (start error,
// non-zero exit, signal, timeout) is returned with the command's combined output.
func runCommand(ctx context.Context, command string, in inputs, prev result, logLine func(string)) (result, error) {
	argv := append(append([]string{}, defaultInterpreter...), command)
	if len(in.interpreter) > 0 {
		argv = append(append([]string{}, in.interpreter...), command)
	}
	dir := in.dir
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return result{}, err
		}
		dir = wd
	}

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = os.Environ()
	for k, v := range in.environment {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if in.addPreviousOutputInEnv {
		if prev.stdout != "" {
			cmd.Env = append(cmd.Env, "PULUMI_COMMAND_STDOUT="+prev.stdout)
		}
		if prev.stderr != "" {
			cmd.Env = append(cmd.Env, "PULUMI_COMMAND_STDERR="+prev.stderr)
		}
	}
	if in.stdin != "" {
		cmd.Stdin = strings.NewReader(in.stdin)
	}
	// Own process group, so cancellation also stops the interpreter's children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}

	// Output is read as upstream pulumi-command 1.2.1 reads it (provider/pkg/provider/local/
	// commandOutputs.go `run`, util/util.go `LogOutput`): each stream goes to its buffer, to the
	// combined buffer and, when logged, into ONE io.Pipe that a bufio.Scanner with the default
	// 64 KiB token limit turns into log lines. After a longer line the scanner stops reading, the
	// next write into the pipe blocks forever, so Wait never returns and `pulumi up` hangs. The
	// stand-in keeps that on purpose: the tests hang or fail where a user's `up` would.
	var stdout, stderr, combined bytes.Buffer
	var combinedMu sync.Mutex
	combinedW := lockedWriter{mu: &combinedMu, w: &combined}
	logR, logW := io.Pipe()
	stdoutWriters := []io.Writer{&stdout, combinedW}
	if in.logging == logStdout || in.logging == logStdoutAndStderr {
		stdoutWriters = append(stdoutWriters, logW)
	}
	stderrWriters := []io.Writer{&stderr, combinedW}
	if in.logging == logStderr || in.logging == logStdoutAndStderr {
		stderrWriters = append(stderrWriters, logW)
	}
	cmd.Stdout = io.MultiWriter(stdoutWriters...)
	cmd.Stderr = io.MultiWriter(stderrWriters...)
	logged := make(chan struct{})
	go logOutput(logR, logged, logLine)

	if err := cmd.Start(); err != nil {
		_ = logW.Close()
		<-logged
		return result{}, fmt.Errorf("starting %q: %w", argv[0], err)
	}
	// Stop the whole process group when the operation is cancelled or times out.
	waitDone := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-waitDone:
			case <-time.After(10 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			}
		case <-waitDone:
		}
	}()
	werr := cmd.Wait() // also waits for the output copiers (and so for the log pipe)
	close(waitDone)
	_ = logW.Close()
	<-logged

	res := result{
		stdout: strings.TrimSuffix(stdout.String(), "\n"),
		stderr: strings.TrimSuffix(stderr.String(), "\n"),
	}
	if werr != nil {
		reason := werr.Error() // e.g. "exit status 3", "signal: terminated"
		if ctxErr := ctx.Err(); ctxErr != nil {
			if errors.Is(ctxErr, context.DeadlineExceeded) {
				reason += " (timed out)"
			} else {
				reason += " (cancelled)"
			}
		}
		return res, fmt.Errorf("%s: running %q:\n%s", reason, command, combined.String())
	}
	return res, nil
}
