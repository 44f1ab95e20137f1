package cli

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/galley-dev/galley/bundles"
)

// limitFlags bound what reading a bundle's layer may cost, for the
// commands that download or unpack one. docs/limits.md explains them.
type limitFlags struct {
	maxLayer     sizeFlag
	maxFiles     int
	maxFile      sizeFlag
	maxExtracted sizeFlag
}

// limitsHelp is the paragraph the commands with limit flags add to their
// help.
const limitsHelp = `Limits (see docs/limits.md): a layer larger than --max-layer-size is
refused before it is downloaded; unpacking stops at --max-files files,
a file over --max-file-size, or --max-extracted-size bytes in all.`

func (l *limitFlags) register(fs *pflag.FlagSet) {
	l.maxLayer = sizeFlag(bundles.MaxLayerSize)
	l.maxFiles = bundles.DefaultLimits.MaxFiles
	l.maxFile = sizeFlag(bundles.DefaultLimits.MaxFileSize)
	l.maxExtracted = sizeFlag(bundles.DefaultLimits.MaxTotalSize)
	fs.Var(&l.maxLayer, "max-layer-size", "largest compressed layer to download or read (bytes, or with a unit: KiB, MiB, GiB, KB, MB, GB)")
	fs.Var((*positiveInt)(&l.maxFiles), "max-files", "most files (and, separately, directories) to unpack from a layer")
	fs.Var(&l.maxFile, "max-file-size", "largest single file to unpack from a layer")
	fs.Var(&l.maxExtracted, "max-extracted-size", "most bytes to unpack from a layer, all files together")
}

// limits returns the unpacking limits.
func (l *limitFlags) limits() bundles.Limits {
	return bundles.Limits{MaxFiles: l.maxFiles, MaxFileSize: int64(l.maxFile), MaxTotalSize: int64(l.maxExtracted)}
}

// checkLayer applies --max-layer-size to a bundle read from disk (a
// registry client applies it before downloading).
func (l *limitFlags) checkLayer(b *bundles.Bundle) error {
	if size := b.LayerDescriptor.Size; size > int64(l.maxLayer) {
		return fmt.Errorf("%w: layer %s is %d bytes, limit is %d (--max-layer-size)", bundles.ErrLimitExceeded, b.LayerDescriptor.Digest, size, int64(l.maxLayer))
	}
	return nil
}

// sizeFlag is a byte count written as a number with an optional unit.
type sizeFlag int64

var sizeUnits = []struct {
	suffix string
	n      int64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3},
	{"B", 1},
}

func (s *sizeFlag) String() string {
	n := int64(*s)
	for _, u := range sizeUnits[:4] {
		if n >= u.n && n%u.n == 0 {
			return strconv.FormatInt(n/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

func (s *sizeFlag) Type() string { return "size" }

func (s *sizeFlag) Set(v string) error {
	num, mult := strings.TrimSpace(v), int64(1)
	for _, u := range sizeUnits {
		if len(num) > len(u.suffix) && strings.EqualFold(num[len(num)-len(u.suffix):], u.suffix) {
			// "1MB" must not read as "1M" bytes with a "B" unit.
			num, mult = strings.TrimSpace(num[:len(num)-len(u.suffix)]), u.n
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return fmt.Errorf("want a positive number of bytes, optionally with a unit (KiB, MiB, GiB, KB, MB, GB), e.g. 512MiB")
	}
	if n > math.MaxInt64/mult {
		return fmt.Errorf("%s is too large", v)
	}
	*s = sizeFlag(n * mult)
	return nil
}

// positiveInt is an int flag that refuses zero and negative values.
type positiveInt int

func (p *positiveInt) String() string { return strconv.Itoa(int(*p)) }
func (p *positiveInt) Type() string   { return "int" }
func (p *positiveInt) Set(v string) error {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return fmt.Errorf("want a positive whole number")
	}
	*p = positiveInt(n)
	return nil
}

// ctxReader stops reading once ctx is done, so an interrupt stops a long
// unpack; the unpacker then removes what it had written.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
