// Command pulumi-resource-command is a STAND-IN for the Pulumi "command" resource provider.
//
// It is NOT the upstream pulumi/pulumi-command provider and contains none of its code. The
// upstream provider's Go source is not served by the Go module proxy available to this project,
// so this clean-room plugin implements, from the public schema and documentation only, the subset
// of `command:local:Command` that istio-ca uses. It is installed as plugin version 1.2.1 because
// the npm package @pulumi/command 1.2.1 asks the engine for exactly that version. See README.md
// for the supported subset and the known differences from upstream.
//
// Protocol plumbing: the engine starts the plugin with optional glog-style flags (-v=N,
// --logtostderr, --tracing ENDPOINT) followed by the engine's gRPC address. The plugin serves the
// ResourceProviderServer on a free port and prints that port on stdout, which is how every
// Pulumi plugin announces itself.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"google.golang.org/grpc"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// Version is the plugin version reported by GetPluginInfo and -version. It must equal the
// @pulumi/command npm package version (the engine needs an exact match); the build script sets it
// with -ldflags "-X main.Version=...".
var Version = "1.2.1"

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-command (stand-in): %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	// -v and --logtostderr are registered by glog (imported by the SDK's logging package).
	flag.String("tracing", "", "Zipkin-compatible tracing endpoint (accepted and ignored by the stand-in)")
	showVersion := flag.Bool("version", false, "print the plugin version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Printf("%s (istio-ca clean-room stand-in, not the upstream pulumi-command provider)\n", Version)
		return nil
	}
	logging.InitLogging(false, 0, false)

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()

	prov := newProvider(Version)
	defer prov.Close()

	args := flag.Args()
	switch len(args) {
	case 0:
		// Attach mode / tests: no engine to log to; Handshake may still supply one.
	case 1:
		if err := prov.connectEngine(args[0]); err != nil {
			return fmt.Errorf("could not connect to the engine at %s: %w", args[0], err)
		}
		// Exit when the engine goes away.
		hctx, hcancel := context.WithCancel(ctx)
		defer hcancel()
		if err := rpcutil.Healthcheck(hctx, args[0], 5*time.Minute, cancel); err != nil {
			return fmt.Errorf("could not start the engine health check: %w", err)
		}
	default:
		return fmt.Errorf("expected at most one argument (the engine address), got %q", args)
	}

	stop := make(chan bool)
	go func() {
		<-ctx.Done()
		prov.cancelAll()
		close(stop)
	}()

	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: stop,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterResourceProviderServer(srv, plugin.NewProviderServer(prov))
			return nil
		},
		Options: rpcutil.OpenTracingServerInterceptorOptions(nil),
	})
	if err != nil {
		return err
	}
	// The plugin protocol: announce the chosen port on stdout.
	fmt.Printf("%d\n", handle.Port)
	return <-handle.Done
}
