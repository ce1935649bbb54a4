// Command pulumi-resource-kubernetes is the Pulumi Kubernetes resource provider plugin.
//
// It mirrors upstream's provider/cmd/pulumi-resource-kubernetes/main.go, which cannot be built
// from the module proxy as is: it //go:embed's schema-embed.json and terraform-mapping-embed.json,
// files produced by `go generate` and ignored by git, hence absent from the module zip.
// toolchain/pulumi.sh produces them in this directory (from the schema.json and
// terraform-mapping.json that the module zip does contain, via ./genembed) before `go build`;
// they are gitignored here too.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var pulumiSchema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	// version.Version is set with -ldflags -X by the build script.
	provider.Serve("kubernetes", version.Version, pulumiSchema, terraformMapping)
}
