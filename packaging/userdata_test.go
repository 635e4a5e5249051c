package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The user data and cloud-init files parse (bash -n, YAML), and each uses
// what its distribution has: Amazon Linux 2 yum, no amazon-linux-extras,
// no `systemctl enable --now` (upstream systemd 219 has no --now, it came
// in 220; RHEL 7's 219 backports it),
// and iptables-services by name (yum installs no Recommends); Amazon Linux
// 2023 dnf; Ubuntu and Debian apt. Every one starts the daemon with
// --no-block (user data runs inside cloud-final.service).
func TestUserData(t *testing.T) {
	files, _ := filepath.Glob("user-data/*")
	want := map[string]bool{
		"user-data/al2-user-data.sh": true, "user-data/al2-cloud-init.yaml": true,
		"user-data/al2023-user-data.sh": true, "user-data/al2023-cloud-init.yaml": true,
		"user-data/ubuntu-debian-user-data.sh": true,
	}
	for _, f := range files {
		delete(want, f)
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		switch filepath.Ext(f) {
		case ".sh":
			if !strings.HasPrefix(s, "#!/bin/bash\n") {
				t.Errorf("%s: user data must start with #!/bin/bash", f)
			}
			if out, err := exec.Command("bash", "-n", f).CombinedOutput(); err != nil {
				t.Errorf("bash -n %s: %v\n%s", f, err, out)
			}
		case ".yaml":
			if !strings.HasPrefix(s, "#cloud-config\n") {
				t.Errorf("%s: cloud-init user data must start with #cloud-config", f)
			}
			var doc struct {
				Runcmd [][]string `yaml:"runcmd"`
			}
			if err := yaml.Unmarshal(b, &doc); err != nil || len(doc.Runcmd) == 0 {
				t.Errorf("%s: not cloud-config with a runcmd list: %v", f, err)
			}
		default:
			continue // the Packer snippet
		}
		var code []string // the lines that run, without comments
		for _, l := range strings.Split(s, "\n") {
			if line := strings.TrimSpace(l); line != "" && !strings.HasPrefix(line, "#") {
				code = append(code, l)
			}
		}
		has := func(sub string) bool { return strings.Contains(strings.Join(code, "\n"), sub) }
		if !has("--no-block") {
			t.Errorf("%s does not start the daemon with --no-block (a cloud-final deadlock)", f)
		}
		base := filepath.Base(f)
		switch {
		case strings.HasPrefix(base, "al2-"):
			for _, bad := range []string{"dnf ", "[dnf", "amazon-linux-extras", "enable --now", "enable, --now"} {
				if has(bad) {
					t.Errorf("%s uses %q, which Amazon Linux 2 does not have or need", f, bad)
				}
			}
			for _, need := range []string{"yum", "iptables-services", "rpm", "-K"} {
				if !has(need) {
					t.Errorf("%s lacks %q", f, need)
				}
			}
		case strings.HasPrefix(base, "al2023-"):
			if !has("dnf") {
				t.Errorf("%s does not install with dnf", f)
			}
		case strings.HasPrefix(base, "ubuntu-debian"):
			if !has("apt-get install") {
				t.Errorf("%s does not install with apt-get", f)
			}
		}
	}
	for f := range want {
		t.Errorf("%s is missing", f)
	}
}
