package reliability

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"github.com/ecs-remediator/ecs-remediator/test/testpolicy"
)

// policyCase is one mistake in a policy file. The line holding the
// mistake ends with the marker "#<"; key is the dotted key the error must
// name (list entries as [0]).
type policyCase struct {
	kind string // type, unknown, enum, duration, value
	key  string
	doc  string
}

var policyCases = []policyCase{
	// Wrong types, every key at least once.
	{"type", "ecs_config", "ecs_config: [a, b] #<\n"},
	{"type", "ecs_config_base", "ecs_config_base: {x: 1} #<\n"},
	{"type", "ecs_config_json", "ecs_config_json: [/x] #<\n"},
	{"type", "backup", "backup: [/x] #<\n"},
	{"type", "task_iam_role", "task_iam_role: [enforce] #<\n"},
	{"type", "task_iam_role_network_host", "task_iam_role_network_host: {a: b} #<\n"},
	{"type", "no_proxy", "no_proxy: [auto] #<\n"},
	{"type", "extra_settings", "extra_settings: [ECS_CLUSTER] #<\n"},
	{"type", "extra_settings.ECS_CLUSTER", "extra_settings:\n  ECS_CLUSTER: [prod] #<\n"},
	{"type", "network", "network: 5 #<\n"},
	{"type", "persist", "persist: [a] #<\n"},
	{"type", "agent", "agent: on #<\n"},
	{"type", "docker", "docker: on #<\n"},
	{"type", "docker.no_proxy", "docker:\n  no_proxy: [auto] #<\n"},
	{"type", "docker.dropin_dir", "docker:\n  dropin_dir: [/etc] #<\n"},
	{"type", "docker.sysconfig", "docker:\n  sysconfig: {a: b} #<\n"},
	{"type", "doctor", "doctor: 1s #<\n"},
	{"type", "metrics", "metrics: [off] #<\n"},
	{"type", "log_level", "log_level: {level: info} #<\n"},
	{"type", "resync_interval", "resync_interval: [30s] #<\n"},
	{"type", "poll_interval", "poll_interval: true #<\n"},
	{"type", "debounce", "debounce: {ms: 20} #<\n"},
	{"type", "network.mode", "network:\n  mode: [enforce] #<\n"},
	{"type", "network.iptables", "network:\n  iptables: [iptables] #<\n"},
	{"type", "network.agent_port", "network:\n  agent_port: many #<\n"},
	{"type", "network.introspection_port", "network:\n  introspection_port: 51678.5 #<\n"},
	{"type", "network.route_localnet", "network:\n  route_localnet: {a: 1} #<\n"},
	{"type", "network.localhost_guard", "network:\n  localhost_guard: \"yes\" #<\n"},
	{"type", "network.block_introspection", "network:\n  block_introspection: 1 #<\n"},
	{"type", "network.block_instance_role_for_bridge", "network:\n  block_instance_role_for_bridge: [true] #<\n"},
	{"type", "network.proc_sys", "network:\n  proc_sys: [/proc/sys] #<\n"},
	{"type", "network.docker_socket", "network:\n  docker_socket: [/var/run/docker.sock] #<\n"},
	{"type", "network.credentials_input", "network:\n  credentials_input: [enforce] #<\n"},
	{"type", "network.task_bridges", "network:\n  task_bridges: docker0 #<\n"},
	{"type", "persist.iptables", "persist:\n  iptables: [auto] #<\n"},
	{"type", "persist.sysctl", "persist:\n  sysctl: {off: true} #<\n"},
	{"type", "persist.auto_candidates", "persist:\n  auto_candidates: /etc/sysconfig/iptables #<\n"},
	{"type", "persist.auto_candidates[0]", "persist:\n  auto_candidates:\n    - /etc/sysconfig/iptables #<\n"},
	{"type", "persist.auto_candidates[0].path", "persist:\n  auto_candidates:\n    - {path: [/x], service: iptables.service} #<\n"},
	{"type", "persist.auto_candidates[1].service", "persist:\n  auto_candidates:\n    - {path: /x, service: iptables.service}\n    - path: /y\n      service: {a: b} #<\n"},
	{"type", "persist.systemd_dir", "persist:\n  systemd_dir: [/etc/systemd/system] #<\n"},
	{"type", "agent.unit", "agent:\n  unit: [ecs.service] #<\n"},
	{"type", "agent.restart", "agent:\n  restart: {on: change} #<\n"},
	{"type", "agent.min_restart_interval", "agent:\n  min_restart_interval: 60 #<\n"},
	{"type", "agent.proxy_dropin_dir", "agent:\n  proxy_dropin_dir: [/etc] #<\n"},
	{"type", "agent.proxy_dropin", "agent:\n  proxy_dropin: [auto] #<\n"},
	{"type", "agent.introspection_url", "agent:\n  introspection_url: {url: x} #<\n"},
	{"type", "doctor.imds_endpoint", "doctor:\n  imds_endpoint: [http://169.254.169.254] #<\n"},
	{"type", "doctor.credentials_url", "doctor:\n  credentials_url: {a: b} #<\n"},
	{"type", "doctor.timeout", "doctor:\n  timeout: 2 #<\n"},
	{"type", "doctor.interval", "doctor:\n  interval: [5m] #<\n"},
	{"type", "doctor.proc_root", "doctor:\n  proc_root: [/proc] #<\n"},
	{"type", "doctor.ssm_registration", "doctor:\n  ssm_registration: [/x] #<\n"},
	{"type", "doctor.external_credentials", "doctor:\n  external_credentials: {a: b} #<\n"},
	{"type", "metrics.textfile", "metrics:\n  textfile: [auto] #<\n"},
	{"type", "metrics.listen", "metrics:\n  listen: [off] #<\n"},
	{"type", "metrics.allow_remote", "metrics:\n  allow_remote: \"yes\" #<\n"},

	// Unknown keys at every level.
	{"unknown", "ecs_confg", "ecs_config: /etc/ecs/ecs.config\necs_confg: /x #<\n"},
	{"unknown", "network.agentport", "network:\n  mode: ignore\n  agentport: 1 #<\n"},
	{"unknown", "persist.iptable", "persist:\n  iptable: auto #<\n"},
	{"unknown", "persist.auto_candidates[0].unit", "persist:\n  auto_candidates:\n    - path: /x\n      service: a.service\n      unit: b.service #<\n"},
	{"unknown", "agent.service", "agent:\n  service: ecs.service #<\n"},
	{"unknown", "docker.noproxy", "docker:\n  noproxy: auto #<\n"},
	{"unknown", "doctor.imds", "doctor:\n  imds: http://x #<\n"},
	{"unknown", "metrics.port", "metrics:\n  port: 9100 #<\n"},

	// Values outside an enum.
	{"enum", "task_iam_role", "task_iam_role: on #<\n"},
	{"enum", "task_iam_role_network_host", "task_iam_role_network_host: Enforce #<\n"},
	{"enum", "no_proxy", "no_proxy: true #<\n"},
	{"enum", "log_level", "log_level: verbose #<\n"},
	{"enum", "network.mode", "network:\n  mode: off #<\n"},
	{"enum", "network.route_localnet", "network:\n  route_localnet: \"1\" #<\n"},
	{"enum", "network.credentials_input", "network:\n  credentials_input: repair #<\n"},
	{"enum", "agent.restart", "agent:\n  restart: always #<\n"},
	{"enum", "agent.proxy_dropin", "agent:\n  proxy_dropin: enforce #<\n"},
	{"enum", "docker.no_proxy", "docker:\n  no_proxy: enforce #<\n"},
	{"enum", "persist.iptables", "persist:\n  iptables: maybe #<\n"},
	{"enum", "persist.sysctl", "persist:\n  sysctl: auto #<\n"},
	{"enum", "metrics.textfile", "metrics:\n  textfile: on #<\n"},

	// Invalid durations.
	{"duration", "resync_interval", "resync_interval: 30 #<\n"},
	{"duration", "poll_interval", "poll_interval: 1ms #<\n"},
	{"duration", "debounce", "debounce: -20ms #<\n"},
	{"duration", "agent.min_restart_interval", "agent:\n  min_restart_interval: 1 minute #<\n"},
	{"duration", "doctor.timeout", "doctor:\n  timeout: 0s #<\n"},
	{"duration", "doctor.interval", "doctor:\n  interval: 500ms #<\n"},
	// Upper bounds (a typo such as 30h for 30s switches a safety net off).
	{"duration", "resync_interval", "resync_interval: 30h #<\n"},
	{"duration", "debounce", "debounce: 1m #<\n"},
	{"duration", "doctor.timeout", "doctor:\n  timeout: 10m #<\n"},
	{"duration", "agent.min_restart_interval", "agent:\n  min_restart_interval: 48h #<\n"},

	// Other invalid values.
	{"value", "ecs_config", "ecs_config: etc/ecs/ecs.config #<\n"},
	{"value", "ecs_config_base", "ecs_config_base: none #<\n"},
	{"value", "ecs_config_json", "ecs_config_json: ecs.config.json #<\n"},
	{"value", "backup", "backup: ecs.config.orig #<\n"},
	{"value", "extra_settings.ECS-CLUSTER", "extra_settings:\n  ECS-CLUSTER: prod #<\n"},
	{"value", "extra_settings.ECS_ENABLE_TASK_IAM_ROLE", "extra_settings:\n  ECS_ENABLE_TASK_IAM_ROLE: \"true\" #<\n"},
	{"value", "network.iptables", "network:\n  iptables: \"iptables -w\" #<\n"},
	{"value", "network.agent_port", "network:\n  agent_port: 0 #<\n"},
	{"value", "network.introspection_port", "network:\n  introspection_port: 65536 #<\n"},
	{"value", "network.proc_sys", "network:\n  proc_sys: proc/sys #<\n"},
	{"value", "network.docker_socket", "network:\n  docker_socket: docker.sock #<\n"},
	{"value", "network.block_introspection", "network:\n  block_introspection: sometimes #<\n"},
	{"value", "persist.auto_candidates", "persist:\n  auto_candidates: #<\n    - {path: relative, service: x.service}\n"},
	{"value", "persist.systemd_dir", "persist:\n  systemd_dir: systemd #<\n"},
	{"value", "agent.unit", "agent:\n  unit: ecs #<\n"},
	{"value", "agent.proxy_dropin_dir", "agent:\n  proxy_dropin_dir: ecs.service.d #<\n"},
	{"value", "docker.sysconfig", "docker:\n  sysconfig: sysconfig/docker #<\n"},
	{"value", "agent.introspection_url", "agent:\n  introspection_url: localhost:51678 #<\n"},
	{"value", "doctor.imds_endpoint", "doctor:\n  imds_endpoint: ftp://169.254.169.254 #<\n"},
	{"value", "doctor.credentials_url", "doctor:\n  credentials_url: http:// #<\n"},
	{"value", "doctor.proc_root", "doctor:\n  proc_root: proc #<\n"},
	{"value", "doctor.ssm_registration", "doctor:\n  ssm_registration: registration #<\n"},
	{"value", "doctor.external_credentials", "doctor:\n  external_credentials: .aws/credentials #<\n"},
	{"value", "metrics.listen", "metrics:\n  listen: 0.0.0.0:9723 #<\n"},
	{"value", "metrics.listen", "metrics:\n  listen: 9723 #<\n"},
	{"value", "metrics.listen", "metrics:\n  listen: 127.0.0.1:70000 #<\n"},
	{"value", "doctor.credentials_url", "doctor:\n  credentials_url: http://169.254.170.2:0/v2/credentials/ #<\n"},
	{"value", "agent.introspection_url", "agent:\n  introspection_url: http://localhost:99999/v1/metadata #<\n"},
	{"value", "ecs_config", "ecs_config: \"/etc/ecs/ecs\\0.config\" #<\n"},
	{"value", "persist.sysctl", "persist:\n  sysctl: \"/etc/sysctl.d/90.conf\\nx\" #<\n"},
	{"value", "no_proxy", "no_proxy: auto\nno_proxy: ignore #<\n"},
}

// policyKeys walks the Policy type: every key of the file (list entries as
// [0]), the sections (structs, with their unknown-key level) and the
// duration keys.
func policyKeys() (all, sections, durations []string) {
	dur := reflect.TypeOf(policy.Policy{}.ResyncInterval)
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			key := tag
			if prefix != "" {
				key = prefix + "." + tag
			}
			all = append(all, key)
			ft := t.Field(i).Type
			switch {
			case ft == dur:
				durations = append(durations, key)
			case ft.Kind() == reflect.Struct:
				sections = append(sections, key)
				walk(ft, key)
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				all = append(all, key+"[0]")
				sections = append(sections, key+"[0]")
				walk(ft.Elem(), key+"[0]")
			}
		}
	}
	walk(reflect.TypeOf(policy.Policy{}), "")
	return
}

// enumKeys are the keys with a fixed set of values.
var enumKeys = []string{"task_iam_role", "task_iam_role_network_host", "no_proxy", "log_level", "network.mode",
	"network.route_localnet", "network.credentials_input", "agent.restart", "agent.proxy_dropin", "persist.iptables", "persist.sysctl", "metrics.textfile"}

var indexRE = regexp.MustCompile(`\[\d+\]`)

// The table covers the whole policy: a wrong type for every key, an
// unknown key in every section, every enum and every duration. A key added
// to policy.Policy without a case here fails this test.
func TestPolicyCasesCoverEveryKey(t *testing.T) {
	has := map[string]map[string]bool{}
	for _, c := range policyCases {
		k := indexRE.ReplaceAllString(c.key, "[0]")
		if has[c.kind] == nil {
			has[c.kind] = map[string]bool{}
		}
		has[c.kind][k] = true
		// An unknown key counts for its section.
		if c.kind == "unknown" {
			if i := strings.LastIndexByte(k, '.'); i >= 0 {
				has["unknown-in"] = merge(has["unknown-in"], k[:i])
			} else {
				has["unknown-in"] = merge(has["unknown-in"], "")
			}
		}
	}
	all, sections, durations := policyKeys()
	var missing []string
	for _, k := range all {
		if !has["type"][k] && !strings.HasPrefix(k, "extra_settings.") {
			missing = append(missing, "wrong type for "+k)
		}
	}
	for _, s := range append([]string{""}, sections...) {
		if !has["unknown-in"][s] {
			missing = append(missing, fmt.Sprintf("unknown key in section %q", s))
		}
	}
	for _, k := range durations {
		if !has["duration"][k] {
			missing = append(missing, "invalid duration for "+k)
		}
	}
	for _, k := range enumKeys {
		if !has["enum"][k] {
			missing = append(missing, "invalid enum value for "+k)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("the policy table lacks cases:\n%s", strings.Join(missing, "\n"))
	}
}

// sections splits p's policy file into its top-level keys, each with the
// lines below it.
func sections(t *testing.T, p *policy.Policy) []string {
	data, err := testpolicy.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.SplitAfter(string(data), "\n") {
		if l == "" {
			continue
		}
		if len(out) == 0 || !strings.HasPrefix(l, " ") {
			out = append(out, "")
		}
		out[len(out)-1] += l
	}
	return out
}

func merge(m map[string]bool, k string) map[string]bool {
	if m == nil {
		m = map[string]bool{}
	}
	m[k] = true
	return m
}

// Every mistake in the policy file: check exits 2 before touching anything,
// and stderr names the file, the line and the key.
func TestPolicyMistakes(t *testing.T) {
	dir := t.TempDir()
	ecsConfig := filepath.Join(dir, "etc/ecs/ecs.config")
	os.MkdirAll(filepath.Dir(ecsConfig), 0o755)
	os.WriteFile(ecsConfig, []byte(drifted), 0o644)
	safePolicy := testpolicy.New(dir)
	safePolicy.Network.Mode = policy.Ignore
	safe := sections(t, safePolicy)
	before := snapshot(t, dir)
	for i, c := range policyCases {
		t.Run(fmt.Sprintf("%s/%s", c.kind, c.key), func(t *testing.T) {
			// Should a case wrongly pass, check must still read nothing of
			// the host's: the sections the case leaves alone are those of
			// a policy that points every path at the temp dir.
			doc := c.doc
			for _, section := range safe {
				key := section[:strings.Index(section, ":")]
				if !regexp.MustCompile(`(?m)^` + key + `:`).MatchString(doc) {
					doc = section + doc
				}
			}
			line := 0
			for n, l := range strings.Split(doc, "\n") {
				if strings.HasSuffix(l, "#<") {
					line = n + 1
				}
			}
			if line == 0 {
				t.Fatalf("case without a #< marker: %q", c.doc)
			}
			file := filepath.Join(dir, fmt.Sprintf("policy-%d.yaml", i))
			if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
			defer os.Remove(file)
			r := run(t, "check", "--config", file)
			want := fmt.Sprintf("%s:%d: key %q: ", file, line, c.key)
			if r.code != 2 || !strings.Contains(r.stderr, want) {
				t.Fatalf("exit %d, stderr %q\nwant exit 2 and %q\npolicy:\n%s", r.code, r.stderr, want, doc)
			}
			if r.stdout != "" {
				t.Errorf("a bad policy still printed a report:\n%s", r.stdout)
			}
		})
	}
	if after := snapshot(t, dir); after != before {
		t.Fatalf("bad policies changed files:\n%s\n---\n%s", before, after)
	}
}
