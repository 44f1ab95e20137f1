package cli

import (
	"errors"

	"github.com/spf13/pflag"

	"github.com/galley-dev/galley/compiler/stack"
)

// rootFlags are the flags of commands that read a stack's files: by
// default a stack may only name files inside the Git repository that holds
// it (or its own directory outside any repository), so building a pull
// request cannot read the runner's credentials.
type rootFlags struct {
	dir          string
	allowOutside bool
}

func (f *rootFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.dir, "root", "", "directory every file the stack names must resolve inside (default: the Git repository holding the stack, else the stack directory); recorded in bundle.json")
	fs.BoolVar(&f.allowOutside, "allow-outside-root", false, "let the stack name files anywhere on this machine, for stacks you trust; recorded in bundle.json")
}

// root is the stack.Root the flags ask for.
func (f *rootFlags) root() (stack.Root, error) {
	if f.dir != "" && f.allowOutside {
		return stack.Root{}, &usageError{errors.New("--root and --allow-outside-root: give one (--allow-outside-root turns the root off)")}
	}
	return stack.Root{Dir: f.dir, AllowOutside: f.allowOutside}, nil
}
