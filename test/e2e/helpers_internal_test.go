package e2e

import "testing"

func TestCredentialRules(t *testing.T) {
	for _, tc := range []struct {
		name        string
		listing     string
		dnat, redir int
	}{
		{"iptables -S", "-P PREROUTING ACCEPT\n-A PREROUTING -d 169.254.170.2/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:51679\n-A OUTPUT -d 169.254.170.2/32 -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 51679\n", 1, 1},
		{"ecs-init spelling", "*nat\n-A PREROUTING -p tcp -d 169.254.170.2 --dport 80 -j DNAT --to-destination 127.0.0.1:51679\n-A OUTPUT -p tcp -d 169.254.170.2 --dport 80 -j REDIRECT --to-ports 51679\nCOMMIT\n", 1, 1},
		{"duplicates", "-A PREROUTING -p tcp -d 169.254.170.2 --dport 80 -j DNAT --to-destination 127.0.0.1:51679\n-A PREROUTING -d 169.254.170.2/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:51679\n", 2, 0},
		{"wrong port", "-A PREROUTING -p tcp -d 169.254.170.2 --dport 80 -j DNAT --to-destination 127.0.0.1:51680\n-A OUTPUT -p tcp -d 169.254.170.3 --dport 80 -j REDIRECT --to-ports 51679\n", 0, 0},
		{"empty", "", 0, 0},
	} {
		d, r := credentialRules(tc.listing)
		if d != tc.dnat || r != tc.redir {
			t.Errorf("%s: got %d DNAT / %d REDIRECT, want %d / %d", tc.name, d, r, tc.dnat, tc.redir)
		}
	}
}

func TestECSConfigRepaired(t *testing.T) {
	for _, tc := range []struct {
		cfg  string
		want bool
	}{
		{"ECS_ENABLE_TASK_IAM_ROLE=true\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n", true},
		{"ECS_ENABLE_TASK_IAM_ROLE=\"true\"\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n", false},
		{"ECS_ENABLE_TASK_IAM_ROLE=true\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\nECS_ENABLE_TASK_IAM_ROLE=false\n", false},
		{"ECS_ENABLE_TASK_IAM_ROLE=true\n", false},
	} {
		if got, why := ecsConfigRepaired(tc.cfg); got != tc.want {
			t.Errorf("ecsConfigRepaired(%q) = %v (%s), want %v", tc.cfg, got, why, tc.want)
		}
	}
}
