// Package info holds the Pulumi bridge settings for the TLS provider: the Terraform-to-Pulumi
// token mapping, shared by the schema generator (cmd/pulumi-tfgen-tls) and the plugin
// (cmd/pulumi-resource-tls).
package info

import (
	_ "embed"
	"fmt"
	"os"

	"github.com/hashicorp/terraform-provider-tls/shim"
	pf "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
)

// Version is the plugin version reported to the engine (GetPluginInfo, `-version`). It must equal
// @pulumi/tls's version (the engine looks plugins up by exact version), so it is not defaulted
// here: the build sets it with
//
//	-ldflags "-X istio-ca/toolchain/provider-tls/info.Version=<TLS_PROVIDER_VERSION>"
var Version string

// The bridge requires a metadata store (tfgen fails without one). Pulumi's providers use it to
// remember auto-generated names across releases; we have no history, so it starts empty.
//
//go:embed bridge-metadata.json
var metadata []byte

// Provider returns the bridge configuration. Tokens are written out rather than derived, so they
// are exactly the type tokens the @pulumi/tls SDK uses (its __pulumiType / invoke tokens).
func Provider() tfbridge.ProviderInfo {
	if Version == "" {
		fmt.Fprintln(os.Stderr, "pulumi-resource-tls: built without -ldflags -X istio-ca/toolchain/provider-tls/info.Version=<version>")
		os.Exit(2)
	}
	return tfbridge.ProviderInfo{
		P:            pf.ShimProvider(shim.NewProvider()),
		Name:         "tls",
		Version:      Version,
		GitHubOrg:    "hashicorp",
		MetadataInfo: tfbridge.NewProviderMetadata(metadata),
		Resources: map[string]*tfbridge.ResourceInfo{
			"tls_cert_request":        {Tok: "tls:index/certRequest:CertRequest"},
			"tls_locally_signed_cert": {Tok: "tls:index/locallySignedCert:LocallySignedCert"},
			"tls_private_key":         {Tok: "tls:index/privateKey:PrivateKey"},
			"tls_self_signed_cert":    {Tok: "tls:index/selfSignedCert:SelfSignedCert"},
		},
		DataSources: map[string]*tfbridge.DataSourceInfo{
			"tls_public_key":  {Tok: "tls:index/getPublicKey:getPublicKey"},
			"tls_certificate": {Tok: "tls:index/getCertificate:getCertificate"},
		},
		// The provider's resources start at schema version 0, as in pulumi-tls.
		EnableZeroDefaultSchemaVersion: true,
	}
}
