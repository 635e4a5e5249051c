package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"github.com/ecs-remediator/ecs-remediator/pkg/suggest"
)

// flags is one command's flag set, its help text and its positional
// arguments. Help and errors are GNU style (--config FILE); a usage error
// is one line on stderr, never the whole help.
type flags struct {
	*flag.FlagSet
	stdout, stderr io.Writer
	positional     []string
	argsUsage      string
	what, example  string
}

// newFlags makes a flag set whose --help (printed to stdout) says what the
// command does and shows an example; flag errors go to stderr.
func newFlags(name, argsUsage, what, example string, stdout, stderr io.Writer) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by parse, in one line
	f := &flags{FlagSet: fs, stdout: stdout, stderr: stderr, argsUsage: argsUsage, what: what, example: example}
	fs.Usage = func() {}
	return f
}

// help prints the command's help to w.
func (f *flags) help(w io.Writer) {
	fmt.Fprintf(w, "Usage: ecs-remediator %s%s [flags]\n\n%s\n", f.Name(), f.argsUsage, f.what)
	type row struct{ left, usage string }
	var rows []row
	f.VisitAll(func(fl *flag.Flag) {
		name, usage := flag.UnquoteUsage(fl)
		left := "--" + fl.Name
		if !isBool(fl) {
			left += " " + placeholder(fl, name)
		}
		if d := fl.DefValue; d != "" && !isBool(fl) && d != "0" && d != "0s" {
			usage += " (default " + d + ")"
		}
		rows = append(rows, row{left, usage})
	})
	rows = append(rows, row{"-h, --help", "print this help"})
	width := 0
	for _, r := range rows {
		width = max(width, len(r.left))
	}
	fmt.Fprint(w, "\nFlags:\n")
	for _, r := range rows {
		lines := wrap(r.usage, max(80-width-6, 30))
		fmt.Fprintf(w, "  %-*s  %s\n", width, r.left, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(w, "  %-*s  %s\n", width, "", l)
		}
	}
	fmt.Fprintf(w, "\nExample:\n  %s\n", strings.ReplaceAll(f.example, "\n", "\n  "))
}

// placeholder is the value's name in help: the back-quoted word of the
// usage, or one from the flag's type.
func placeholder(fl *flag.Flag, name string) string {
	switch {
	case isDuration(fl):
		return "DURATION"
	case name == "" || name == "value" || name == "string":
		return "VALUE"
	case strings.Contains(name, "|"):
		return name // a list of the values: task|instance
	}
	return strings.ToUpper(name)
}

func isBool(fl *flag.Flag) bool {
	b, ok := fl.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func isDuration(fl *flag.Flag) bool {
	g, ok := fl.Value.(flag.Getter)
	if !ok {
		return false
	}
	_, ok = g.Get().(time.Duration)
	return ok
}

// usageError prints one line: what is wrong, and where the help is. It
// returns the exit code of a usage error.
func (f *flags) usageError(format string, args ...any) int {
	fmt.Fprintf(f.stderr, "ecs-remediator %s: %s; run 'ecs-remediator %s --help'\n", f.Name(), fmt.Sprintf(format, args...), f.Name())
	return exitError
}

// The errors of the flag package, which has no typed errors.
var (
	errUndefined = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	errValue     = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-([^:]+): `)
	errNoArg     = regexp.MustCompile(`^flag needs an argument: -+(.*)$`)
)

// explain turns an error of the flag package into one line naming the
// flag and what it accepts.
func (f *flags) explain(err error) string {
	msg := err.Error()
	if m := errUndefined.FindStringSubmatch(msg); m != nil {
		s := fmt.Sprintf("unknown flag --%s", m[1])
		var names []string
		f.VisitAll(func(fl *flag.Flag) { names = append(names, fl.Name) })
		if c := suggest.Closest(m[1], append(names, "help")); c != "" {
			s += fmt.Sprintf(" (did you mean --%s?)", c)
		}
		return s
	}
	if m := errValue.FindStringSubmatch(msg); m != nil {
		if fl := f.Lookup(m[2]); fl != nil {
			return fmt.Sprintf("--%s %q: %s", fl.Name, m[1], allowed(fl))
		}
	}
	if m := errNoArg.FindStringSubmatch(msg); m != nil {
		if fl := f.Lookup(m[1]); fl != nil {
			return fmt.Sprintf("--%s needs a value: %s", fl.Name, allowed(fl))
		}
	}
	return strings.Replace(msg, " -", " --", 1)
}

// allowed says what a flag accepts.
func allowed(fl *flag.Flag) string {
	switch {
	case isBool(fl):
		return "this flag takes no value (or =true, =false)"
	case isDuration(fl):
		return "give a duration with a unit, e.g. 2s or 500ms"
	}
	name, _ := flag.UnquoteUsage(fl)
	return "give " + placeholder(fl, name)
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
			f.help(f.stdout)
			return exitOK, false
		}
	}
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.help(f.stdout)
				return exitOK, false
			}
			return f.usageError("%s", f.explain(err)), false
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
			return f.usageError("unexpected argument %q (this command takes no arguments; flags start with --)", f.positional[0]), false
		}
		return f.usageError("expected %d argument(s) (%s), got %d", nargs, strings.TrimSpace(f.argsUsage), len(f.positional)), false
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

// commandNames lists the commands, for suggestions.
func commandNames() []string {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	sort.Strings(names)
	return names
}
