package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// The module root, where README.md is.
const moduleRoot = "../.."

func readFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// section is the part of a Markdown text from the heading start (included)
// to the heading end (excluded; "" = to the end).
func section(t *testing.T, text, start, end string) string {
	t.Helper()
	i := strings.Index(text, start)
	if i < 0 {
		t.Fatalf("no heading %q", start)
	}
	text = text[i:]
	if end != "" {
		j := strings.Index(text[len(start):], end)
		if j < 0 {
			t.Fatalf("no heading %q after %q", end, start)
		}
		text = text[:len(start)+j]
	}
	return text
}

var (
	fenceRe   = regexp.MustCompile("(?s)```sh\n(.*?)```")
	inlineRe  = regexp.MustCompile("`([^`\n]+)`")
	commandRe = regexp.MustCompile(`^(sudo |\./bin/ecs-remediator |ecs-remediator |systemctl |journalctl |make |dnf |yum |apt-get )`)
)

// shellCommands lists the commands of a Markdown text: every line of its
// sh blocks (comments cut, "a && b" split) and every inline code span that
// starts with a command this test knows.
func shellCommands(text string) []string {
	var out []string
	add := func(line string) {
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		for _, c := range strings.Split(line, "&&") {
			if c = strings.TrimSpace(c); c != "" && !strings.HasPrefix(c, "#") {
				out = append(out, c)
			}
		}
	}
	for _, m := range fenceRe.FindAllStringSubmatch(text, -1) {
		for _, l := range strings.Split(m[1], "\n") {
			add(l)
		}
	}
	for _, m := range inlineRe.FindAllStringSubmatch(fenceRe.ReplaceAllString(text, ""), -1) {
		if commandRe.MatchString(m[1]) {
			add(m[1])
		}
	}
	return out
}

// operatorText is README's first screen (to "## Documentation") and the
// developer quick start.
func operatorText(t *testing.T) (readme, quick string) {
	return section(t, readFile(t, "README.md"), "# ecs-remediator", "## Documentation"),
		section(t, readFile(t, "docs/development.md"), "## Quick start", "## ")
}

func TestReadmeCommandsWork(t *testing.T) {
	readme, quick := operatorText(t)
	cmds := append(shellCommands(readme), shellCommands(quick)...)
	var binCmds [][]string
	for _, want := range []string{"ecs-remediator check", "ecs-remediator doctor", "journalctl -u ecs-remediator", "systemctl enable --now --no-block ecs-remediator", "dnf install", "make test-unit"} {
		found := false
		for _, c := range cmds {
			found = found || strings.Contains(c, want)
		}
		if !found {
			t.Errorf("README's first screen or the quick start lost %q", want)
		}
	}
	for _, c := range cmds {
		t.Logf("README command: %s", c)
		c = strings.TrimPrefix(c, "sudo ")
		f := strings.Fields(c)
		switch f[0] {
		case "ecs-remediator", "./bin/ecs-remediator":
			binCmds = append(binCmds, f[1:])
		case "systemctl":
			checkSystemctl(t, c, f[1:])
		case "journalctl":
			checkToolFlags(t, c, "journalctl", f[1:])
			checkUnitArgs(t, c, f[1:])
		case "make":
			for _, target := range f[1:] {
				checkMakeTarget(t, c, target)
			}
		case "dnf", "yum", "apt-get":
			checkPackageCommand(t, c, f[1:])
		default:
			t.Errorf("README command %q: this test does not know how to prove it; add a case to readme_test.go", c)
		}
	}
	runBinaryCommands(t, binCmds)
}

// runBinaryCommands runs each ecs-remediator command line from the docs
// against the built binary in a private network namespace, with a policy
// that points every path into a temporary directory. A usage error (exit
// 2 from a renamed flag or command) fails.
func runBinaryCommands(t *testing.T, cmds [][]string) {
	b := nstest.Backends[0]
	nstest.Require(t, b.Iptables, b.Save, b.Restore, "ip")
	h := newHost(t, "ECS_ENABLE_TASK_IAM_ROLE=\"true\"\n")
	p := h.netPolicy(b.Iptables)
	p.ECSConfigBase = policy.Off
	p.Persist.Iptables, p.Persist.Sysctl = filepath.Join(h.dir, "rules.v4"), filepath.Join(h.dir, "90.conf")
	p.Doctor.IMDSEndpoint = "http://127.0.0.1:9"
	h.writePolicy(t, p)
	nstest.Run(t, func() {
		for _, args := range cmds {
			name := "ecs-remediator " + strings.Join(args, " ")
			if len(args) == 0 {
				t.Errorf("%q: no command", name)
				continue
			}
			full := append([]string{}, args...)
			switch args[0] {
			case "check", "apply", "doctor":
				if !contains(args, "--config") {
					full = append(full, "--config", h.policy)
				}
			case "run":
				// The daemon is not started here: its flags are proved by
				// parsing them before the (missing) policy is loaded.
				r := run(t, append(full, "--config", filepath.Join(h.dir, "absent.yaml"))...)
				if r.code != 2 || !strings.Contains(r.stderr, "does not exist") {
					t.Errorf("%s: the flags do not parse: exit %d %q", name, r.code, r.stderr)
				}
				continue
			}
			r := run(t, full...)
			t.Logf("%s: exit %d", name, r.code)
			if r.code != 0 && r.code != 1 {
				t.Errorf("%s (as %v): exit %d\n%s%s", name, full, r.code, r.stdout, r.stderr)
			}
		}
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// unitFile is the packaged unit the docs' systemctl and journalctl name.
func checkUnitArgs(t *testing.T, cmd string, args []string) {
	for i, a := range args {
		if (a == "-u" || a == "--unit") && i+1 < len(args) {
			checkUnit(t, cmd, args[i+1])
		}
	}
}

func checkUnit(t *testing.T, cmd, unit string) {
	unit = strings.TrimSuffix(unit, ".service")
	if unit == "ecs" || unit == "iptables" { // the ECS agent's unit; iptables-services' restore unit
		return
	}
	if _, err := os.Stat(filepath.Join(moduleRoot, "systemd", unit+".service")); err != nil {
		t.Errorf("%q names unit %s, which the package does not ship (systemd/%s.service)", cmd, unit, unit)
	}
}

var systemctlVerbs = map[string]bool{"enable": true, "disable": true, "start": true, "stop": true, "restart": true, "reload": true, "status": true, "edit": true}

func checkSystemctl(t *testing.T, cmd string, args []string) {
	checkToolFlags(t, cmd, "systemctl", args)
	var words []string
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			words = append(words, a)
		}
	}
	if len(words) < 2 || !systemctlVerbs[words[0]] {
		t.Errorf("%q: not a systemctl verb and unit", cmd)
		return
	}
	for _, u := range words[1:] {
		checkUnit(t, cmd, u)
	}
	if words[0] == "reload" {
		unit := readFile(t, "systemd/ecs-remediator.service")
		if !strings.Contains(unit, "ExecReload=") {
			t.Errorf("%q: the unit has no ExecReload=", cmd)
		}
	}
}

// checkToolFlags proves every --flag of a command line is one the tool
// (systemctl, journalctl) documents in its --help.
func checkToolFlags(t *testing.T, cmd, tool string, args []string) {
	var flags []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			flags = append(flags, strings.SplitN(a, "=", 2)[0])
		}
	}
	if len(flags) == 0 {
		return
	}
	help, err := exec.Command(tool, "--help").CombinedOutput()
	if err != nil && len(help) == 0 {
		t.Logf("%q: %s is not installed here; its flags are not checked", cmd, tool)
		return
	}
	for _, fl := range flags {
		if !regexp.MustCompile(`(^|[\s,])` + regexp.QuoteMeta(fl) + `([\s=,]|$)`).Match(help) {
			t.Errorf("%q: %s --help does not list %s", cmd, tool, fl)
		}
	}
}

func checkMakeTarget(t *testing.T, cmd, target string) {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(target) + `:`)
	for _, f := range []string{"Makefile", "packaging/package.mk"} {
		if b, err := os.ReadFile(filepath.Join(moduleRoot, f)); err == nil && re.Match(b) {
			return
		}
	}
	t.Errorf("%q: no make target %q", cmd, target)
}

// checkPackageCommand proves a dnf/yum/apt-get line names the package and
// the files make rpm / make deb write. An RPM name is checked against a
// real RPM: packaging/rpm/build.sh (what make rpm runs) builds one into a
// temporary dist/ and the README's file name (its glob, or <version> and
// <release> filled in) must name it. A deb name is checked against the
// naming the deb recipe uses (nfpm: NAME_V-R_ARCH.deb).
func checkPackageCommand(t *testing.T, cmd string, args []string) {
	if !strings.Contains(readFile(t, "packaging/nfpm.yaml"), "name: ecs-remediator\n") {
		t.Fatalf("packaging/nfpm.yaml no longer names the package ecs-remediator")
	}
	deb := regexp.MustCompile(`^\./(dist/)?ecs-remediator_(\*|<version>-<release>)_(amd64|arm64)\.deb$`)
	for _, a := range args {
		switch {
		case strings.HasPrefix(a, "-") || a == "install" || a == "remove" || a == "purge":
		case a == "ecs-remediator", a == "iptables", a == "iptables-services": // the package, or a dependency the docs install
		case strings.HasSuffix(a, ".rpm"):
			checkRPMName(t, cmd, a)
		case strings.HasSuffix(a, ".deb") && deb.MatchString(a):
			// make deb needs nfpm from the network: its output is taken from
			// packaging/package.mk, which documents it.
			if !regexp.MustCompile(`make deb\s+dist/ecs-remediator_V-R_\{amd64,arm64\}\.deb`).MatchString(readFile(t, "packaging/package.mk")) {
				t.Errorf("%q: packaging/package.mk no longer says make deb writes dist/ecs-remediator_V-R_ARCH.deb", cmd)
			}
		default:
			t.Errorf("%q: %q is not the package or a package file make rpm/deb writes", cmd, a)
		}
	}
}

var builtRPM struct {
	dir string // holds dist/ with one x86_64 RPM, version 1.2.3, release 1
	err error
}

func checkRPMName(t *testing.T, cmd, name string) {
	if builtRPM.dir == "" && builtRPM.err == nil {
		if _, err := exec.LookPath("rpmbuild"); err != nil {
			t.Logf("%q: rpmbuild is not installed; the RPM name is not checked", cmd)
			return
		}
		dir, err := os.MkdirTemp("", "readme-rpm")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			var out []byte
			out, err = exec.Command("sh", filepath.Join(moduleRoot, "packaging/rpm/build.sh"), "amd64", "1.2.3", "1", bin, filepath.Join(dir, "dist")).CombinedOutput()
			if err != nil {
				err = fmt.Errorf("packaging/rpm/build.sh: %v\n%s", err, out)
			}
		}
		builtRPM.dir, builtRPM.err = dir, err
	}
	if builtRPM.err != nil {
		t.Fatal(builtRPM.err)
	}
	pattern := strings.NewReplacer("<version>", "1.2.3", "<release>", "1").Replace(name)
	switch {
	case strings.HasPrefix(pattern, "./dist/"): // built here
	case strings.Contains(name, "<version>"): // a release's file: the same name, downloaded
		pattern = "./dist/" + strings.TrimPrefix(pattern, "./")
	default:
		t.Errorf("%q: %s is neither in dist/ (where make rpm writes) nor a release's file name", cmd, name)
		return
	}
	m, _ := filepath.Glob(filepath.Join(builtRPM.dir, pattern))
	if len(m) != 1 {
		all, _ := filepath.Glob(filepath.Join(builtRPM.dir, "dist", "*"))
		t.Errorf("%q: %s names no RPM that make rpm builds (it built %v)", cmd, name, all)
	}
}

// The policy keys README tells the operator to set (`key: value`, dotted
// for a section) are keys the policy file accepts, with those values.
func TestReadmePolicyKeysParse(t *testing.T) {
	readme, _ := operatorText(t)
	kv := regexp.MustCompile(`^([a-z_]+(?:\.[a-z_]+)?): (\S+)$`)
	n := 0
	for _, m := range inlineRe.FindAllStringSubmatch(readme, -1) {
		p := kv.FindStringSubmatch(m[1])
		if p == nil {
			continue
		}
		n++
		doc := p[1] + ": " + p[2] + "\n"
		if sec, key, ok := strings.Cut(p[1], "."); ok {
			doc = sec + ":\n  " + key + ": " + p[2] + "\n"
		}
		if _, err := policy.Parse([]byte(doc), "README.md"); err != nil {
			t.Errorf("README says `%s`: %v", m[1], err)
		}
	}
	if n < 10 {
		t.Errorf("only %d policy settings found in README's first screen", n)
	}
	// The whole policy file of the reference parses as it is.
	block := regexp.MustCompile("(?s)## Policy file.*?```yaml\n(.*?)```").FindStringSubmatch(readFile(t, "README.md"))
	if block == nil {
		t.Fatal("README has no policy file block")
	}
	if _, err := policy.Parse([]byte(block[1]), "README.md"); err != nil {
		t.Errorf("README's policy file: %v", err)
	}
}

// pendingDocs are files other work adds; a link to one of them may dangle
// until it lands. Empty: every linked file exists.
var pendingDocs = map[string]bool{}

// Every relative link of README.md and docs/*.md resolves, anchors too.
func TestDocLinksResolve(t *testing.T) {
	files := []string{"README.md"}
	docs, _ := filepath.Glob(filepath.Join(moduleRoot, "docs", "*.md"))
	for _, d := range docs {
		rel, _ := filepath.Rel(moduleRoot, d)
		files = append(files, rel)
	}
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, f := range files {
		text := readFile(t, f)
		for _, m := range link.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			file := f
			if path != "" {
				file = filepath.Clean(filepath.Join(filepath.Dir(f), path))
			}
			if _, err := os.Stat(filepath.Join(moduleRoot, file)); err != nil {
				if !pendingDocs[file] {
					t.Errorf("%s: link %q: %s does not exist", f, target, file)
				}
				continue
			}
			if anchor != "" && strings.HasSuffix(file, ".md") && !hasAnchor(readFile(t, file), anchor) {
				t.Errorf("%s: link %q: no heading #%s in %s", f, target, anchor, file)
			}
		}
	}
}

// hasAnchor reports whether a Markdown text has a heading whose GitHub
// anchor is anchor.
func hasAnchor(text, anchor string) bool {
	inFence := false
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "```") {
			inFence = !inFence
		}
		if inFence || !strings.HasPrefix(l, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(l, "#")))
		var b strings.Builder
		for _, r := range h {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
				b.WriteRune(r)
			}
		}
		if b.String() == anchor {
			return true
		}
	}
	return false
}
