package ecsconfig

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
)

// goProxyKeys are the proxy variables the agent's HTTP client reads
// (ecs-agent/utils/httpproxy FromEnvironment: the upper-case name wins when
// it is not empty).
var goProxyKeys = []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"}

// onlyQuotes reports a value that holds quotes and nothing else (`""`,
// `”`, `" "`): systemd makes it empty, but ecs-init hands it to the agent
// with the quotes.
func onlyQuotes(v string) bool {
	return strings.ContainsAny(v, `"'`) && strings.Trim(v, "\"' \t") == ""
}

// isProxyKey is a *_PROXY variable other than NO_PROXY.
func isProxyKey(k string) bool {
	u := strings.ToUpper(k)
	return strings.HasSuffix(u, "_PROXY") && u != "NO_PROXY" && envKeyRE.MatchString(k)
}

// proxyKeysSet lists the proxy variables ecs-init hands the agent from
// either file: the four the agent reads, in their order, then any other
// *_PROXY variable, sorted.
func (v *view) proxyKeysSet() []string {
	seen := map[string]bool{}
	var others []string
	for _, f := range []*File{v.main, v.base} {
		if f == nil {
			continue
		}
		for _, l := range f.Lines {
			if k, _, ok := KV(l.Text); ok && isProxyKey(k) && !seen[k] {
				seen[k] = true
				if !isGoProxyKey(k) {
					others = append(others, k)
				}
			}
		}
	}
	var out []string
	for _, k := range goProxyKeys {
		if seen[k] {
			out = append(out, k)
		}
	}
	sort.Strings(others)
	return append(out, others...)
}

func isGoProxyKey(k string) bool {
	for _, g := range goProxyKeys {
		if g == k {
			return true
		}
	}
	return false
}

// proxyItems judges each proxy variable ecs.config sets (item
// ecs_config.<KEY>, reported only for a variable that is set). A value that
// is only quotes is a broken proxy: the agent sends every request of that
// scheme to a proxy at the host `""`. A quoted URL is broken the same way
// for the agent (systemd, and so ecs-init, read it unquoted). Values are
// never printed: a proxy URL may hold a password.
func (v *view) proxyItems() []item {
	var items []item
	for _, key := range v.proxyKeysSet() {
		s, ok := v.lookup(key)
		if !ok {
			continue
		}
		it := item{f: finding.Finding{Item: ItemPrefix + key}}
		inner, quoted := unquote(s.a.Value)
		reads := "the agent"
		if !isGoProxyKey(key) {
			reads = "the agent does not read " + key + ", but anything in its container that does"
		}
		switch {
		case onlyQuotes(s.a.Value):
			detail := fmt.Sprintf("%s: %s=%s is a broken proxy, not \"no proxy\": ecs-init hands the quotes to the agent literally, so %s sends every %s request to a proxy at the host %s and it fails (systemd removes the quotes, so only ecs-init itself has no proxy)",
				s.where(), key, show(s.a.Value), reads, scheme(key), show(s.a.Value))
			fix := fmt.Sprintf("ecs-remediator apply (removes the line; a backup is kept), or delete %s (write %s= for \"no proxy\") and run systemctl restart ecs", s.where(), key)
			it.drift(detail, fix, key, "", show(s.a.Value), key+" is only quotes: a proxy at the host "+show(s.a.Value))
			it.remove = true
			if v.exposes(key) || s.file != v.mainPath {
				// Removing the line would let another line's proxy take
				// over (or the line is in the base file, never
				// written): the empty value means "no proxy" to every
				// reader.
				it.remove = false
			}
		case quoted && inner != "":
			detail := fmt.Sprintf("%s: %s is quoted (value not shown): ecs-init keeps the quotes, so %s cannot parse the proxy URL and every %s request fails (systemd removes them, so ecs-init itself uses the proxy)",
				s.where(), key, reads, scheme(key))
			fix := fmt.Sprintf("ecs-remediator apply (removes the quotes), or remove the quotes on %s and run systemctl restart ecs", s.where())
			it.drift(detail, fix, key, inner, "(quoted, not shown)", key+" is quoted: the agent cannot parse the proxy URL")
			it.secret = true
		case isGoProxyKey(key):
			it.ok(fmt.Sprintf("%s: %s is set (value not shown)", s.where(), key))
		default:
			continue
		}
		items = append(items, it)
	}
	return items
}

// exposes reports whether removing key's quotes-only lines from the main
// file would leave another line setting it (an earlier line of the main
// file, or the base file).
func (v *view) exposes(key string) bool {
	for _, f := range []*File{v.main, v.base} {
		if f == nil {
			continue
		}
		for _, a := range f.All(key) {
			if !onlyQuotes(a.Value) {
				return true
			}
		}
	}
	return false
}

func scheme(key string) string {
	switch strings.ToUpper(key) {
	case "HTTP_PROXY":
		return "http (IMDS, the credentials endpoint, ECS over a proxy)"
	case "HTTPS_PROXY":
		return "https (ECS, ECR, S3)"
	}
	return strings.ToLower(strings.TrimSuffix(strings.ToUpper(key), "_PROXY"))
}

// ecsInitOwn are the variables of ecs.config that ecs-init itself reads from
// its process environment.
var ecsInitOwn = []string{"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
	"ECS_SKIP_LOCALHOST_TRAFFIC_FILTER", "ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS", "ECS_EXTERNAL", "AWS_DEFAULT_REGION"}

// environmentFileItem warns (item ecs_config.environment_file, reported only
// then) when systemd refuses the whole file for ecs-init's own process.
// Nothing is repaired: the bytes are the operator's.
func (v *view) environmentFileItem() (item, bool) {
	if v.sys == nil || v.sys.Skipped == nil {
		return item{}, false
	}
	var lost []string
	for _, k := range ecsInitOwn {
		if _, ok := v.main.Last(k); ok {
			lost = append(lost, k)
		}
	}
	what := "its proxy settings and ecs-init's own switches"
	if len(lost) > 0 {
		what = strings.Join(lost, ", ") + " from it"
	}
	it := item{f: finding.Finding{Item: ItemPrefix + "environment_file"}}
	it.ok(fmt.Sprintf("%s line %d: %s, so systemd skips the whole file for ecs-init's own process (EnvironmentFile=-%s): ecs-init runs without %s; the agent reads the file itself and is not affected",
		v.mainPath, v.sys.Skipped.Line, v.sys.Skipped.Msg, v.mainPath, what))
	it.f.Fix = fmt.Sprintf("re-encode line %d of %s as UTF-8 (for Latin-1: iconv -f latin1 -t utf-8) or remove the byte, then systemctl restart ecs; ecs-remediator does not change bytes it does not own", v.sys.Skipped.Line, v.mainPath)
	it.f.Warn()
	return it, true
}
