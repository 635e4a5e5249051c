// Package noproxy holds the one NO_PROXY merge rule shared by ecs.config
// and the ecs unit's proxy drop-in: keep the user's entries and their order,
// append the entries the ECS agent needs that are missing. Pure logic.
package noproxy

import "strings"

// Required are the entries the ECS agent needs to bypass a proxy: IMDS, the
// credentials endpoint and the Docker socket (AWS "HTTP proxy configuration
// for Linux container instances").
var Required = []string{"169.254.169.254", "169.254.170.2", "/var/run/docker.sock"}

// Split returns the entries of a NO_PROXY value: split on ",", spaces
// trimmed, empty entries dropped.
func Split(v string) []string {
	var out []string
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// Merge returns current with every missing Required entry appended, and the
// entries that were missing (nil when current already has them all). The
// user's entries keep their order and spelling; empty entries and stray
// spaces are dropped only when something has to be appended.
func Merge(current string) (merged string, missing []string) {
	return MergeWith(current, Required)
}

// DockerRequired are the entries Docker's daemon needs to bypass a proxy:
// IMDS and the credentials endpoint, for the awslogs driver and ECR pulls
// (AWS "HTTP proxy configuration for Linux container instances").
var DockerRequired = []string{"169.254.169.254", "169.254.170.2"}

// MergeWith is Merge for another list of required entries.
func MergeWith(current string, required []string) (merged string, missing []string) {
	have := map[string]bool{}
	entries := Split(current)
	for _, e := range entries {
		have[e] = true
	}
	for _, r := range required {
		if !have[r] {
			missing = append(missing, r)
		}
	}
	if len(missing) == 0 {
		return current, nil
	}
	return strings.Join(append(entries, missing...), ","), missing
}
