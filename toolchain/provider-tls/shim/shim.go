// Package shim exposes the upstream TLS provider's constructor, which lives in an internal
// package of github.com/hashicorp/terraform-provider-tls and so can only be imported from a
// package path under that module's prefix (see ../go.mod).
package shim

import (
	"github.com/hashicorp/terraform-plugin-framework/provider"
	tlsprovider "github.com/hashicorp/terraform-provider-tls/internal/provider"
)

// NewProvider returns the upstream terraform-plugin-framework provider (tls_* resources).
func NewProvider() provider.Provider { return tlsprovider.New() }
