package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
)

// flags is one command's flag set, its help text and its positional
// arguments.
type flags struct {
	*flag.FlagSet
	stdout     io.Writer
	positional []string
}

// newFlags makes a flag set whose --help (printed to stdout) says what the
// command does and shows an example; flag errors go to stderr.
func newFlags(name, argsUsage, what, example string, stdout, stderr io.Writer) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: ecs-remediator %s%s [flags]\n\n%s\n", name, argsUsage, what)
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprint(w, "\nFlags:\n")
			fs.PrintDefaults()
		}
		fmt.Fprintf(w, "\nExample:\n  %s\n", strings.ReplaceAll(example, "\n", "\n  "))
	}
	return &flags{FlagSet: fs, stdout: stdout}
}

// parse parses flags and positional arguments in any order (so
// "lint-trust-policy FILE --for task" works) and requires exactly nargs
// positional arguments. ok is false when the caller must return code.
func (f *flags) parse(args []string, nargs int) (code int, ok bool) {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "--help" || a == "-help" {
			f.SetOutput(f.stdout)
			f.Usage()
			return exitOK, false
		}
	}
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return exitOK, false
			}
			return exitError, false // flag printed the error and the usage
		}
		args = f.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			f.positional = append(f.positional, args[1:]...)
			break
		}
		f.positional = append(f.positional, args[0])
		args = args[1:]
	}
	if len(f.positional) != nargs {
		if nargs == 0 {
			fmt.Fprintf(f.Output(), "ecs-remediator %s: unexpected argument %q (this command takes no arguments; flags start with --)\n\n", f.Name(), f.positional[0])
		} else {
			fmt.Fprintf(f.Output(), "ecs-remediator %s: expected %d argument(s), got %d\n\n", f.Name(), nargs, len(f.positional))
		}
		f.Usage()
		return exitError, false
	}
	return 0, true
}

// configFlag adds --config and returns a loader for the policy it names.
func (f *flags) configFlag() func() (*policy.Policy, error) {
	path := f.String("config", policy.DefaultPath, "policy `FILE`; when the default file is missing, the built-in defaults are used")
	return func() (*policy.Policy, error) {
		explicit := false
		f.Visit(func(fl *flag.Flag) {
			if fl.Name == "config" {
				explicit = true
			}
		})
		return policy.Load(*path, explicit)
	}
}
