// Command pulumi-tfgen-tls generates the Pulumi package schema of the TLS provider from the
// upstream Terraform schema (`pulumi-tfgen-tls schema --out DIR`). toolchain/provider-tls.sh
// runs it and copies DIR/schema.json next to cmd/pulumi-resource-tls/main.go, which embeds it.
package main

import (
	pftfgen "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfgen"

	"istio-ca/toolchain/provider-tls/info"
)

func main() { pftfgen.Main("tls", info.Provider()) }
