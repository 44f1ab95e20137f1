// Package compat holds the tests that check galley's bundles and
// signatures with the clients people already run, not with galley's own
// reading of them: cosign v2 and v3 (verify and sign, both directions),
// Flux's pull code, oras and crane, against a real CNCF Distribution
// registry. The clients are pinned in tools/ and built by `make tools`.
package compat
