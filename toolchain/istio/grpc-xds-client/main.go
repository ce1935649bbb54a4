// Command grpc-xds-client is the application of a test workload: a proxyless gRPC client that
// resolves one service through its pilot-agent, the way an application in Istio's `grpc-agent`
// injection mode does. pilot-agent opens its stream to istiod per downstream client, so without
// one the agent never shows in `istioctl proxy-status`. The test rig starts one beside each agent.
//
// pilot-agent writes etc/istio/proxy/grpc-bootstrap.json under its working directory with the
// socket path of a real pod (unix:///etc/istio/proxy/XDS); this client points it at the agent's
// socket under -agent-dir and hands the result to gRPC's xDS resolver.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/xds" // registers the xds:/// resolver
)

func main() {
	agentDir := flag.String("agent-dir", ".", "the pilot-agent's working directory")
	target := flag.String("target", "", "service to resolve, host:port (e.g. reviews.bookinfo.svc.cluster.local:9080)")
	wait := flag.Duration("wait", 2*time.Minute, "how long to wait for the agent's bootstrap file")
	flag.Parse()
	if *target == "" {
		log.Fatal("-target is required")
	}
	dir, err := filepath.Abs(*agentDir)
	if err != nil {
		log.Fatal(err)
	}
	var bootstrap []byte
	if os.Getenv("GRPC_XDS_BOOTSTRAP_CONFIG") == "" {
		if bootstrap, err = localBootstrap(dir, *wait); err != nil {
			log.Fatal(err)
		}
	}
	// gRPC reads its bootstrap variables once, at package init: start again with the variable set.
	if os.Getenv("GRPC_XDS_BOOTSTRAP_CONFIG") == "" {
		self, err := os.Executable()
		if err != nil {
			log.Fatal(err)
		}
		env := append(os.Environ(), "GRPC_XDS_BOOTSTRAP_CONFIG="+string(bootstrap))
		log.Fatal(syscall.Exec(self, os.Args, env))
	}
	conn, err := grpc.NewClient("xds:///"+*target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatalf("grpc client for %s: %v", *target, err)
	}
	conn.Connect()
	log.Printf("resolving %s through %s", *target, dir)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	_ = conn.Close()
}

// localBootstrap waits for the agent's gRPC bootstrap and rewrites its server URI to the agent's socket.
func localBootstrap(dir string, wait time.Duration) ([]byte, error) {
	path := filepath.Join(dir, "etc", "istio", "proxy", "grpc-bootstrap.json")
	deadline := time.Now().Add(wait)
	for {
		raw, err := os.ReadFile(path)
		if err == nil {
			var doc map[string]any
			if err := json.Unmarshal(raw, &doc); err != nil {
				return nil, fmt.Errorf("%s: %v", path, err)
			}
			servers, _ := doc["xds_servers"].([]any)
			if len(servers) == 0 {
				return nil, fmt.Errorf("%s has no xds_servers", path)
			}
			for _, s := range servers {
				if server, ok := s.(map[string]any); ok {
					server["server_uri"] = "unix://" + filepath.Join(dir, "etc", "istio", "proxy", "XDS")
				}
			}
			return json.Marshal(doc)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no gRPC bootstrap at %s after %s (is pilot-agent running there?)", path, wait)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
