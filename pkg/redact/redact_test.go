package redact

import (
	"strings"
	"testing"
)

const pw = "s3cretPw"

func TestIsSecretKey(t *testing.T) {
	for k, want := range map[string]bool{
		"ECS_ENGINE_AUTH_DATA": true, "ECS_ENGINE_AUTH_TYPE": true, "db_password": true,
		"MY_SECRET": true, "GITHUB_TOKEN": true, `"export ECS_ENGINE_AUTH_DATA"`: true,
		"ECS_CLUSTER": false, "HTTP_PROXY": false, "ECS_ENABLE_TASK_IAM_ROLE": false,
	} {
		if IsSecretKey(k) != want {
			t.Errorf("IsSecretKey(%q) = %v", k, !want)
		}
	}
}

// A value is printed through a Scrubber that holds its assignment's
// Secrets: a credential as a placeholder, a proxy URL with its userinfo
// replaced, anything else unchanged.
func TestValue(t *testing.T) {
	for _, tc := range []struct{ k, v, want string }{
		{"ECS_ENGINE_AUTH_DATA", `{"a":"b"}`, "<redacted, 9 bytes>"},
		{"HTTP_PROXY", "http://user:" + pw + "@proxy:3128", "http://<redacted, 13 bytes>@proxy:3128"},
		{"https_proxy", "http://proxy:3128", "http://proxy:3128"},
		{"ECS_CLUSTER", "prod", "prod"},
	} {
		var s Scrubber
		s.Add(Secrets(tc.k, tc.v)...)
		if got := s.String(tc.v); got != tc.want {
			t.Errorf("%s=%s printed as %s, want %s", tc.k, tc.v, got, tc.want)
		}
	}
}

func TestScrubber(t *testing.T) {
	var s Scrubber
	s.Add(Secrets("ECS_ENGINE_AUTH_DATA", `"{\"auth\":\"`+pw+`\"}"`)...)
	s.Add(Secrets("HTTP_PROXY", "u:"+pw+"x@proxy:3128")...)
	s.Add(Secrets("ECS_X_TOKEN", "1")...) // too short to hunt in prose
	for _, in := range []string{
		`value "{\"auth\":\"` + pw + `\"}" differs from extra_settings "x"`,
		"line 3: ECS_ENGINE_AUTH_DATA=" + pw + " and more",
		`GET http://admin:` + pw + `@10.0.0.1/ failed`,
		`HTTPS_PROXY=u:` + pw + `x@proxy:3128`,
		`Environment="DOCKER_TOKEN=` + pw + `" "A=b"`,
	} {
		out := s.String(in)
		if strings.Contains(out, pw) || !strings.Contains(out, "<redacted, ") {
			t.Errorf("String(%q) = %q", in, out)
		}
	}
	// Prose and ordinary values stay.
	for _, in := range []string{"HttpTokens=optional; IMDSv1 also answers", "ECS_ENABLE_TASK_IAM_ROLE=true", "ecs_config.ECS_ENGINE_AUTH_DATA"} {
		if out := s.String(in); out != in {
			t.Errorf("String(%q) = %q", in, out)
		}
	}
}

func TestLines(t *testing.T) {
	var s Scrubber
	diff := strings.Join([]string{
		"--- a/etc/ecs/ecs.config",
		"+++ b/etc/ecs/ecs.config",
		"@@ -1,3 +1,3 @@",
		" ECS_ENGINE_AUTH_DATA={\"https://index.docker.io/v1/\":{\"auth\":\"" + pw + "\"}}\r",
		" HTTP_PROXY=http://user:" + pw + "@proxy:3128",
		"-ECS_X_TOKEN=1",
		"+ECS_X_TOKEN=22",
		` Environment="HTTP_PROXY=http://u:` + pw + `@p:1" "NO_PROXY=a"`,
		" ECS_CLUSTER=prod",
	}, "\n")
	out := s.Lines(diff)
	if strings.Contains(out, pw) || strings.Contains(out, "TOKEN=1") || strings.Contains(out, "TOKEN=22") {
		t.Fatalf("secret left:\n%s", out)
	}
	for _, want := range []string{" ECS_ENGINE_AUTH_DATA=<redacted, 51 bytes>\r\n", "-ECS_X_TOKEN=<redacted, 1 bytes>", "+ECS_X_TOKEN=<redacted, 2 bytes>", " ECS_CLUSTER=prod", "--- a/etc/ecs/ecs.config", `"NO_PROXY=a"`} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
}

func TestFromEnvFile(t *testing.T) {
	got := FromEnvFile([]byte("ECS_CLUSTER=prod\n#ECS_ENGINE_AUTH_DATA=" + pw + "\r\nexport HTTP_PROXY=http://a:" + pw + "@p:1\n"))
	var s Scrubber
	s.Add(got...)
	if out := s.String("x " + pw + " y"); strings.Contains(out, pw) {
		t.Fatalf("%v -> %q", got, out)
	}
}
