package ecsconfig

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/envfile"
	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/noproxy"
)

// Keys the enforcer manages itself.
const (
	KeyTaskIAMRole            = "ECS_ENABLE_TASK_IAM_ROLE"
	KeyTaskIAMRoleNetworkHost = "ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST"
	KeyNoProxy                = "NO_PROXY"
)

// ItemPrefix starts every item id of this package.
const ItemPrefix = "ecs_config."

// proxyKeys set a proxy for the agent; any of them makes NO_PROXY matter.
var proxyKeys = []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"}

// view is what ecs-init reads: the base file, overridden by the main file.
// A nil *File is an absent file.
type view struct {
	mainPath, basePath string
	main, base         *File
	sys                *envfile.View // the main file as systemd reads it (nil: absent)
	jsonPath           string        // host path of the agent's JSON file ("" none)
	json               *agentJSON    // that file, read on first need (agentJSON)
}

// source is the line that decides a variable's value.
type source struct {
	file string
	a    Assignment
}

func (s source) where() string { return fmt.Sprintf("%s line %d", s.file, s.a.LineNo()) }

// lookup returns the line that decides key: the last one in the main
// file, else the last one in the base file.
func (v *view) lookup(key string) (source, bool) {
	if v.main != nil {
		if a, ok := v.main.Last(key); ok {
			return source{v.mainPath, a}, true
		}
	}
	if v.base != nil {
		if a, ok := v.base.Last(key); ok {
			return source{v.basePath, a}, true
		}
	}
	return source{}, false
}

// whyUnset explains, when a file holds a line that was meant to set key
// but does not, what that line does instead: a detail and a short reason
// ("" when there is none). Only the main file is searched when base is
// false.
func (v *view) whyUnset(key string, base bool) (detail, reason string) {
	files := []struct {
		path string
		f    *File
	}{{v.mainPath, v.main}}
	if base {
		files = append(files, struct {
			path string
			f    *File
		}{v.basePath, v.base})
	}
	for _, f := range files {
		if f.f == nil {
			continue
		}
		a, ok := f.f.NearMiss(key)
		if !ok {
			a, ok = f.f.Commented(key)
		}
		if ok {
			return f.path + " " + explainMiss(a, key), missReason(a)
		}
	}
	return "", ""
}

// item is one finding and, for a drift, the line that repairs it.
type item struct {
	f         finding.Finding
	noRestart bool   // the agent's running value does not change
	remove    bool   // remove the key's quotes-only lines instead of setting it
	secret    bool   // the value must not be shown (a proxy URL)
	at        int    // 1-based line of the main file to rewrite (0: Set decides)
	key       string // variable to set in the main file ("" when nothing to do)
	value     string // its canonical value
	old       string // effective value before, for Change.Old
	reason    string // for Change.Reason
}

func (it *item) drift(detail, fix, key, value, old, reason string) {
	it.f.Status, it.f.Detail, it.f.Fix = finding.Drift, detail, fix
	it.key, it.value, it.old, it.reason = key, value, old, reason
}

func (it *item) ok(detail string) {
	it.f.Status, it.f.Detail, it.f.Fix = finding.OK, detail, ""
}

func (it *item) fail(detail, fix string) {
	it.f.Status, it.f.Detail, it.f.Fix = finding.Error, detail, fix
	it.key, it.value = "", ""
}

// flagItem judges a task-role flag the policy wants "true".
func (v *view) flagItem(key, off string) item {
	it := item{f: finding.Finding{Item: ItemPrefix + key}}
	fix := fmt.Sprintf("ecs-remediator apply, or set the line to %s=true (no quotes, no spaces around =) in %s and run systemctl restart ecs", key, v.mainPath)
	s, found := v.lookup(key)
	if !found {
		// ecs-init's defaults hold KEY=true and the file does not
		// override it: the agent ecs-init starts already runs with true.
		detail := v.missing() + "unset (true by ecs-init's default); pinning " + key + "=true, so that a changed default or an agent started without ecs-init keeps it on (no agent restart: the agent already runs with true)"
		reason := "unset (true by ecs-init's default); pinned to true, no agent restart needed"
		if why, short := v.whyUnset(key, true); why != "" {
			detail = why + "; " + detail
			reason = short + "; true by ecs-init's default, pinned, no agent restart needed"
		}
		it.drift(detail, fmt.Sprintf("ecs-remediator apply, or add the line %s=true to %s (no restart needed)", key, v.mainPath),
			key, "true", oldValue("", false), reason)
		it.noRestart = true
		return it
	}
	line := s.where() + ": " + showLine(key, s.a.Value)
	why, reason := explainBool(s.a.Value, off)
	if why == "" {
		it.ok(line)
		return it
	}
	decides, runsTrue := v.whatDecides(key, s.a.Value)
	detail := line + ": " + why + v.fromBase(s)
	if earlier := v.earlierTrue(s, key); earlier != "" {
		detail += "; " + earlier
	}
	if decides != "" {
		detail += "; " + decides
	}
	it.drift(detail, fix, key, "true", oldValue(s.a.Value, true), reason)
	if runsTrue {
		it.noRestart = true
		it.reason += "; the agent already runs with true (" + jsonField[key] + " in " + v.json.path + "), no agent restart needed"
	}
	return it
}

// agentJSON reads the agent's JSON file the first time a flag needs it: a
// pass over a compliant file reads nothing more.
func (v *view) agentJSON() *agentJSON {
	if v.json == nil {
		v.json = readAgentJSON(v, v.jsonPath)
	}
	return v.json
}

// whatDecides says, for a flag whose ecs.config value the agent does not
// take as true, what decides the value the agent runs with
// (agent/config/config.go NewConfig: environment, then the JSON file, then
// EC2 user data, then the default false; docs/ecs-config.md). runsTrue is
// true when that is known to be true.
func (v *view) whatDecides(key, value string) (detail string, runsTrue bool) {
	b, valid := ParseBool(value)
	if valid && (b || key == KeyTaskIAMRole) {
		return "", false // an explicit value the agent takes
	}
	// An empty or invalid value is "not set" for the agent; for the
	// host-network flag (a plain bool) false is too.
	lead := "the agent treats this as not set"
	if valid {
		lead = "false is the zero value of the agent's " + jsonField[key] + ", so it counts as not set"
	}
	field := jsonField[key]
	userData := fmt.Sprintf("EC2 user data in JSON ({\"ECSAgentConfiguration\":{\"%s\":true}}) may still switch it, else it is off (check the instance's user data)", field)
	j := v.agentJSON()
	switch {
	case j == nil || (j.path == "" && j.note == ""):
		return lead + ": " + userData, false
	case j.path == "":
		return lead + "; " + j.note + "; " + userData, false
	case j.err != nil:
		return lead + "; " + j.err.Error(), false
	}
	src := j.path
	if j.note != "" {
		src += " (" + j.note + ")"
	}
	if !j.exists {
		return fmt.Sprintf("%s, and the agent's JSON file %s does not exist: %s", lead, src, userData), false
	}
	jb, ok := j.flags[key]
	if !ok || !jb.set {
		return fmt.Sprintf("%s, and the agent's JSON file %s does not set %s: %s", lead, src, field, userData), false
	}
	return fmt.Sprintf("%s, so the agent's JSON file %s decides: %s is %s there", lead, src, field, jb.raw), jb.val
}

// missing notes that the main file does not exist ("" when it does).
func (v *view) missing() string {
	if v.main == nil {
		return v.mainPath + " does not exist; "
	}
	return ""
}

// fromBase notes that the deciding line is in the base file, and why a
// near-miss line of the main file does not override it.
func (v *view) fromBase(s source) string {
	if s.file == v.mainPath {
		return ""
	}
	note := " (set in the base file, and " + v.mainPath + " does not override it)"
	if why, _ := v.whyUnset(s.a.Key, false); why != "" {
		note += "; " + why
	}
	return note
}

// earlierTrue notes an earlier line that set key to true but lost to the
// deciding line s (the last duplicate wins).
func (v *view) earlierTrue(s source, key string) string {
	f := v.main
	if s.file != v.mainPath {
		f = v.base
	}
	var lines []string
	for _, a := range f.All(key) {
		if b, ok := ParseBool(a.Value); ok && b && a.Index < s.a.Index {
			lines = append(lines, strconv.Itoa(a.LineNo()))
		}
	}
	if len(lines) == 0 {
		return ""
	}
	return fmt.Sprintf("line %s sets it to true, but the last line wins", strings.Join(lines, ", "))
}

// noProxyItem judges NO_PROXY: with a proxy set, it must hold the entries
// the agent needs, unquoted. A repair keeps every entry either reader had:
// the agent's (ecs-init's loop) and ecs-init's own process's (systemd's
// parse, which reads "NO_PROXY = a,b" as NO_PROXY=a,b), and rewrites the
// line both of them then read.
func (v *view) noProxyItem() item {
	it := item{f: finding.Finding{Item: ItemPrefix + KeyNoProxy}}
	var proxies, broken []string
	for _, k := range proxyKeys {
		if s, ok := v.lookup(k); ok {
			if inner, _ := unquote(s.a.Value); inner != "" {
				// Never print the value: a proxy URL may hold a password.
				proxies = append(proxies, fmt.Sprintf("%s (%s)", k, s.where()))
			}
		}
	}
	for _, k := range v.proxyKeysSet() {
		if s, ok := v.lookup(k); ok && onlyQuotes(s.a.Value) {
			broken = append(broken, ItemPrefix+k)
		}
	}
	if len(proxies) == 0 {
		if len(broken) > 0 {
			it.ok("no working proxy configured (a proxy that is only quotes is broken: see " + strings.Join(broken, ", ") + ")")
			return it
		}
		it.ok("no proxy configured")
		return it
	}
	via := "a proxy is set by " + strings.Join(proxies, ", ")
	harm := "credential and metadata requests go to the proxy and fail"
	need := strings.Join(noproxy.Required, ",")
	fix := fmt.Sprintf("ecs-remediator apply, or make the NO_PROXY line in %s hold %s (unquoted, keep your own entries) and run systemctl restart ecs", v.mainPath, need)

	// ecs-init's own process: the line systemd takes NO_PROXY from (or
	// would, once a byte that makes it skip the file is fixed).
	sysVal, sysLine := "", 0
	if sv, ok := v.sys.LookupAnyway(KeyNoProxy); ok {
		sysVal, sysLine = sv.Value, sv.Line
	}
	s, found := v.lookup(KeyNoProxy)
	if !found {
		start, from := "", ""
		if l, ok := v.lookup("no_proxy"); ok {
			start, _ = unquote(l.a.Value)
			from = fmt.Sprintf(" (the new NO_PROXY starts from the entries of no_proxy at %s)", l.where())
		}
		if sysLine > 0 {
			start = union(start, sysVal)
			from += fmt.Sprintf(" (and keeps the entries ecs-init's own process reads from line %d)", sysLine)
		}
		merged, _ := noproxy.Merge(start)
		it.drift(fmt.Sprintf("%sNO_PROXY is not set and %s: %s%s", v.missing(), via, harm, from), fix,
			KeyNoProxy, merged, oldValue("", false), "NO_PROXY missing while a proxy is set")
		it.at = sysLine
		return it
	}
	inner, quoted := unquote(s.a.Value)
	merged, missing := noproxy.Merge(inner)
	line := s.where() + ": " + showLine(KeyNoProxy, s.a.Value)
	if !quoted && len(missing) == 0 {
		it.ok(line + " (" + via + ")")
		return it
	}
	var why, reasons []string
	if quoted {
		why = append(why, "the value is quoted and ecs-init keeps the quotes, so the agent's first and last entries include a quote character and do not match")
		reasons = append(reasons, "value is quoted")
	}
	if len(missing) > 0 {
		why = append(why, "it lacks "+strings.Join(missing, ", "))
		reasons = append(reasons, "lacks "+strings.Join(missing, ", "))
	}
	if sysLine > 0 && (s.file != v.mainPath || sysLine > s.a.LineNo()) {
		// systemd reads NO_PROXY from a later line of the main file:
		// that line is rewritten, so both readers read the new value.
		merged, _ = noproxy.Merge(union(inner, sysVal))
		it.at = sysLine
	} else if sysLine == s.a.LineNo() && s.file == v.mainPath {
		merged, _ = noproxy.Merge(union(inner, sysVal))
	}
	it.drift(fmt.Sprintf("%s: %s%s; %s: %s", line, strings.Join(why, "; "), v.fromBase(s), via, harm), fix,
		KeyNoProxy, merged, oldValue(s.a.Value, true), strings.Join(reasons, "; ")+" while a proxy is set")
	return it
}

// union returns the entries of a, then those of b that a lacks; a itself
// when b adds nothing.
func union(a, b string) string {
	have := map[string]bool{}
	entries := noproxy.Split(a)
	for _, e := range entries {
		have[e] = true
	}
	added := false
	for _, e := range noproxy.Split(b) {
		if !have[e] {
			have[e] = true
			entries = append(entries, e)
			added = true
		}
	}
	if !added {
		return a
	}
	return strings.Join(entries, ",")
}

var envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// extraItem judges one extra_settings entry: the effective value must be
// want exactly.
func (v *view) extraItem(key, want string) item {
	it := item{f: finding.Finding{Item: ItemPrefix + key}}
	switch {
	case !envKeyRE.MatchString(key):
		it.fail(fmt.Sprintf("extra_settings key %s is not a variable name", strconv.Quote(key)),
			"fix extra_settings in the policy file: use letters, digits and _")
		return it
	case key == KeyTaskIAMRole || key == KeyTaskIAMRoleNetworkHost || key == KeyNoProxy:
		it.fail(fmt.Sprintf("extra_settings.%s duplicates a key the policy manages with its own setting", key),
			"remove it from extra_settings in the policy file")
		return it
	case strings.ContainsAny(want, "\r\n\x00") || strings.TrimRightFunc(want, isSpace) != want:
		it.fail(fmt.Sprintf("extra_settings.%s = %s cannot be written to ecs.config: ecs-init trims trailing spaces and splits at line breaks", key, strconv.Quote(want)),
			"fix extra_settings in the policy file")
		return it
	}
	fix := fmt.Sprintf("ecs-remediator apply, or set the line %s in %s and run systemctl restart ecs", showLine(key, want), v.mainPath)
	s, found := v.lookup(key)
	if !found {
		detail := v.missing() + "not set; the policy (extra_settings) wants " + showLine(key, want)
		reason := "not set; extra_settings wants " + strconv.Quote(want)
		if why, short := v.whyUnset(key, true); why != "" {
			detail = why + "; the policy (extra_settings) wants " + showLine(key, want)
			reason = short
		}
		it.drift(detail, fix, key, want, oldValue("", false), reason)
		return it
	}
	if s.a.Value == want {
		it.ok(s.where() + ": " + showLine(key, want))
		return it
	}
	it.drift(fmt.Sprintf("%s: %s%s; the policy (extra_settings) wants %s", s.where(), showLine(key, s.a.Value), v.fromBase(s), showLine(key, want)), fix,
		key, want, oldValue(s.a.Value, true), fmt.Sprintf("value %s differs from extra_settings %s", strconv.Quote(s.a.Value), strconv.Quote(want)))
	return it
}

func isSpace(r rune) bool { return strings.TrimSpace(string(r)) == "" }
