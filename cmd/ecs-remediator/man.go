package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
)

// runMan prints the man page ecs-remediator(8) in roff. It is a hidden
// command (not in commands()): the packages run it at build time, so the
// page is made of the commands' own --help and the policy reference
// (pkg/policy/reference.yaml) and cannot drift from them.
func runMan(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "ecs-remediator __man: takes no arguments (prints ecs-remediator(8) in roff)")
		return exitError
	}
	w := &bytes.Buffer{}
	fmt.Fprintf(w, ".TH ECS-REMEDIATOR 8 \"\" \"ecs-remediator %s\" \"System Administration\"\n", roffText(version))
	w.WriteString(".SH NAME\necs-remediator \\- keep an Amazon ECS container instance configured for IAM task-role credentials\n")
	w.WriteString(".SH SYNOPSIS\n.B ecs-remediator\n.I command\n.RI [ flags ]\n")
	w.WriteString(".SH DESCRIPTION\n")
	var top bytes.Buffer
	usage(&top)
	preformatted(w, top.String())
	w.WriteString(".SH COMMANDS\n")
	for _, c := range commands() {
		var help bytes.Buffer
		c.run([]string{"--help"}, &help, &help)
		fmt.Fprintf(w, ".SS %s\n", roffText(c.name))
		preformatted(w, help.String())
	}
	w.WriteString(".SH EXIT STATUS\n")
	for _, e := range []struct {
		code int
		what string
	}{
		{exitOK, "compliant, repaired, or the diagnosis passed"},
		{exitDrift, "check found drift; doctor or lint-trust-policy found a problem"},
		{exitError, "a bad flag or policy file, an unreadable file, or a repair that failed"},
	} {
		fmt.Fprintf(w, ".TP\n.B %d\n%s\n", e.code, roffText(e.what))
	}
	w.WriteString(".SH POLICY FILE\n")
	fmt.Fprintf(w, "%s (or \\fB\\-\\-config\\fP \\fIFILE\\fP). Every key, its built-in default and what it does:\n", roffText(policy.DefaultPath))
	preformatted(w, policy.Reference())
	w.WriteString(`.SH FILES
.TP
.I /etc/ecs-remediator/config.yaml
the policy; the packaged file is all comments
.TP
.I /usr/lib/systemd/system/ecs-remediator.service
the daemon's unit; change it with \fBsystemctl edit ecs-remediator\fP
.TP
.I /usr/share/doc/ecs-remediator/README.md
installation, findings and the documentation index
.SH SEE ALSO
.BR systemctl (1),
.BR journalctl (1),
.BR iptables (8),
.BR sysctl (8)
`)
	if _, err := stdout.Write(w.Bytes()); err != nil {
		return exitError
	}
	return exitOK
}

// preformatted writes text as a no-fill block, escaped for roff.
func preformatted(w *bytes.Buffer, text string) {
	w.WriteString(".PP\n.nf\n")
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		w.WriteString(roffLine(line))
		w.WriteByte('\n')
	}
	w.WriteString(".fi\n")
}

// roffText escapes backslashes and hyphens (so flags copy as ASCII minus).
func roffText(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	return strings.ReplaceAll(s, "-", `\-`)
}

// roffLine is roffText for a whole line: a leading "." or "'" would be a
// request, and an empty line is kept as one.
func roffLine(s string) string {
	s = roffText(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
