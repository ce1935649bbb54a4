//go:build tools

// Wrapper module that builds real Istio control-plane binaries from the published istio.io/istio
// module: pilot-discovery (istiod), pilot-agent and istioctl. The Go module proxy serves only
// master pseudo-versions of istio.io/istio (this one: 2026-08-27, the 1.30 line); go.sum pins
// every dependency. toolchain/istio.sh builds them.
package tools

import (
	_ "istio.io/istio/istioctl/cmd/istioctl"
	_ "istio.io/istio/pilot/cmd/pilot-agent"
	_ "istio.io/istio/pilot/cmd/pilot-discovery"
)
