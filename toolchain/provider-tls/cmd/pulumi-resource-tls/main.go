// Command pulumi-resource-tls is the Pulumi TLS resource provider plugin: the upstream Terraform
// provider served over the Pulumi provider protocol by the bridge.
//
// schema.json is generated at build time by cmd/pulumi-tfgen-tls (toolchain/provider-tls.sh)
// and is gitignored; `go build` here fails with "pattern schema.json: no matching files" until it
// exists. The bridge serves it for GetSchema and builds its request dispatch table from it, so it
// must be generated from the same info/ settings as the binary (the build script guarantees that).
package main

import (
	"context"
	_ "embed"

	pf "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"

	"istio-ca/toolchain/provider-tls/info"
)

//go:embed schema.json
var schema []byte

func main() {
	pf.Main(context.Background(), "tls", info.Provider(), pf.ProviderMetadata{PackageSchema: schema})
}
