// Our one-function shim; see the replace comment in ../go.mod for why its module path sits under
// github.com/hashicorp/terraform-provider-tls/ (Go's internal-package rule). Only used through
// that local replace; never published or fetched.
module github.com/hashicorp/terraform-provider-tls/shim

go 1.24

require (
	github.com/hashicorp/terraform-plugin-framework v1.17.0
	github.com/hashicorp/terraform-provider-tls v1.2.1-0.20260130152455-857b38cda3fc
)
