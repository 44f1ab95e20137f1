// Package registry moves galley bundles and their cosign signatures to and
// from OCI registries, on oras-go v2.
//
// References are written oci://host[:port]/repository[:tag][@digest], as
// Argo CD and Flux write repository URLs. Every transfer is checked: pushes
// upload only the blobs a registry lacks and never rewrite a tag that
// already names the digest; pulls verify each byte against its digest and
// size, and the manifest against bundles.Validate, before returning.
//
// Errors are *Error values naming the operation and the reference, with a
// one-line cause that wraps one of the sentinels (ErrUnreachable,
// ErrUnauthorized, ErrDenied, ErrRepositoryNotFound, ErrNotFound,
// ErrDigestMismatch, ErrNotSigned, ...). They never contain credentials.
//
// Failures that may pass (5xx, 429, dropped connections, timeouts) are
// retried per step with backoff, honouring Retry-After, and every
// operation is bounded in time (see RetryOptions); giving up is a
// *RetryError naming the last cause.
//
// Plain HTTP is used only when Options.PlainHTTP says so.
package registry
