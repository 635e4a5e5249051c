package policy

import _ "embed"

//go:embed reference.yaml
var reference string

// Reference is the policy reference: every key with its default and a
// comment, as YAML that loads to Default(). The man page prints it; the
// shipped /etc/ecs-remediator/config.yaml is only a commented excerpt.
func Reference() string { return reference }
