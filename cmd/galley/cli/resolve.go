package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/galley-dev/galley/registry"
)

// resolveHint says what to do when --resolve-images cannot reach an image.
const resolveHint = "--resolve-images asks every image's registry; without it the bundle records tags only"

// imageResolver returns the compiler.Options.ResolveImages of
// --resolve-images: each image pinned to the digest its registry gives
// for its tag, in bundle.json. It has its own client, with the Docker
// config's credentials only: a --username given for the bundle's registry
// must not go to Docker Hub or any other image registry.
func imageResolver(env *Env, plainHTTP bool, timeout time.Duration) func(context.Context, []string) (map[string]string, error) {
	return func(ctx context.Context, images []string) (map[string]string, error) {
		store, err := registry.DockerCredentials(env.Getenv)
		if err != nil {
			return nil, err
		}
		client := registry.New(registry.Options{
			PlainHTTP:       plainHTTP,
			CredentialStore: store,
			UserAgent:       "galley/" + Version(),
			Retry:           registry.RetryOptions{MaxTime: timeout},
		})
		if env.Interactive {
			fmt.Fprintf(env.Stderr, "  resolving %d images\n", len(images))
		}
		digests, err := client.ResolveImages(ctx, images)
		if err != nil {
			return nil, fmt.Errorf("%w (%s)", err, resolveHint)
		}
		pinned := make(map[string]string, len(digests))
		for im, d := range digests {
			pinned[im] = registry.PinnedImage(im, d)
		}
		return pinned, nil
	}
}
