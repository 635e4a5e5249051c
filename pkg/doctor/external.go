package doctor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ecs-remediator/ecs-remediator/pkg/safefile"
)

// External describes an ECS Anywhere host (ECS_EXTERNAL=true): there is no
// IMDS; the agent gets its instance credentials from the shared
// credentials file the SSM agent keeps fresh, which ecs-init bind-mounts
// into the agent's container (docs/ecs-config.md, "ECS Anywhere").
type External struct {
	// Why says where ECS_EXTERNAL=true was read ("/etc/ecs/ecs.config line 3").
	Why string
	// Value is ECS_EXTERNAL as written (for a mismatch's detail).
	Value string
	// Agent: the agent reads ECS_EXTERNAL as true (strconv.ParseBool of
	// ecs-init's map); it then uses no IMDS. ECSInit: ecs-init's own
	// process has exactly "true" (systemd's parse); only then does it
	// mount the credentials into the agent's container. Both are set on
	// a host configured as AWS documents it.
	Agent, ECSInit bool
	// CredentialsFile is the host file the agent reads as
	// /rotatingcreds/credentials (ecs-init mounts /root/.aws there).
	CredentialsFile string
	// Profile is the section the agent reads: ECS_ALTERNATE_CREDENTIAL_PROFILE
	// or "default".
	Profile string
	// SSMRegistration is the SSM agent's registration file
	// (/var/lib/amazon/ssm/registration).
	SSMRegistration string
	// Sandboxed is set by the daemon's periodic diagnosis: its unit hides
	// /root (ProtectHome=yes), so a credentials file it cannot see is a
	// skip, not a failure.
	Sandboxed bool
	// MaxAge is how old the credentials file may be before it counts as no
	// longer refreshed (default DefaultCredentialsMaxAge).
	MaxAge time.Duration
}

// DefaultCredentialsMaxAge: the SSM agent rewrites the file when half of the
// credentials' lifetime has passed (amazon-ssm-agent,
// common/identity/credentialproviders/onpremprovider/role_provider.go); a
// file older than an hour is past any lifetime it hands out.
const DefaultCredentialsMaxAge = time.Hour

// maxExternalFile bounds what is read of the registration, the credentials
// file and an environ.
const maxExternalFile = 1 << 20

// ssmAgentComm is the SSM agent's process name as /proc/<pid>/comm holds it
// (16 characters, cut to 15).
const ssmAgentComm = "amazon-ssm-agen"

// Item ids of an external instance.
const (
	ItemExternalSSMRegistration = "external.ssm_registration"
	ItemExternalCredentials     = "external.credentials"
)

// externalRolePolicies is the fix for credentials that cannot be had.
const externalRolePolicies = "the role of the SSM activation (for example ecsAnywhereRole) needs the Systems Manager permissions (AmazonSSMManagedInstanceCore) as well as AmazonEC2ContainerServiceforEC2Role (AWS \"Amazon ECS container instance IAM role\")"

// skipIMDSExternal makes every imds.* item a skip on an external instance.
func skipIMDSExternal(e *External) []Result {
	return skipRest(nil, fmt.Sprintf("ECS Anywhere (ECS_EXTERNAL=true, %s): an external instance has no instance metadata service; the agent's credentials come from the SSM agent instead (see %s, %s)",
		e.Why, ItemExternalSSMRegistration, ItemExternalCredentials))
}

// checkExternal returns external.ssm_registration and external.credentials.
func checkExternal(c Config, now time.Time) []Result {
	e := c.External
	return []Result{checkSSMRegistration(e), checkExternalCredentials(e, c.ProcRoot, now)}
}

func checkSSMRegistration(e *External) Result {
	r := Result{Item: ItemExternalSSMRegistration}
	f, err := safefile.Read(e.SSMRegistration, safefile.Options{Max: maxExternalFile})
	if errors.Is(err, fs.ErrNotExist) {
		r.Status = Fail
		r.Detail = e.SSMRegistration + " does not exist: the SSM agent is not registered, so nobody writes the agent's credentials"
		r.Fix = "register the SSM agent with the activation (amazon-ssm-agent -register -code CODE -id ID -region REGION, as the ECS Anywhere install script does), then systemctl restart amazon-ssm-agent"
		return r
	}
	if err != nil {
		r.Status, r.Detail = Skip, fmt.Sprintf("cannot read %s: %v (run as root)", e.SSMRegistration, err)
		return r
	}
	var reg struct {
		ManagedInstanceID string
		Region            string
	}
	if err := json.Unmarshal(f.Data, &reg); err != nil || reg.ManagedInstanceID == "" {
		r.Status = Fail
		r.Detail = fmt.Sprintf("%s holds no ManagedInstanceID (%v): the registration is incomplete", e.SSMRegistration, err)
		r.Fix = "register the SSM agent again (amazon-ssm-agent -register -clear, then -register -code CODE -id ID -region REGION)"
		return r
	}
	r.Status = OK
	r.Detail = fmt.Sprintf("registered with Systems Manager as %s in %s (%s)", reg.ManagedInstanceID, reg.Region, e.SSMRegistration)
	return r
}

func checkExternalCredentials(e *External, procRoot string, now time.Time) Result {
	r := Result{Item: ItemExternalCredentials}
	failCreds := func(detail, fix string) Result {
		r.Status, r.Detail = Fail, detail
		r.Fix = fix + "; " + externalRolePolicies
		return r
	}
	if !e.Agent || !e.ECSInit {
		// ecs-init compares with "true" after systemd's parse, the agent
		// parses a boolean from ecs-init's map: ECS_EXTERNAL=1 makes only
		// the agent external, ECS_EXTERNAL="true" only ecs-init.
		r.Status = Fail
		if e.Agent {
			r.Detail = fmt.Sprintf("ECS_EXTERNAL=%s (%s) makes the agent external (no IMDS), but ecs-init mounts %s into the agent's container only for exactly ECS_EXTERNAL=true: the agent has no instance credentials", e.Value, e.Why, filepath.Dir(e.CredentialsFile))
		} else {
			r.Detail = fmt.Sprintf("ECS_EXTERNAL=%s (%s) is true for ecs-init (systemd removes the quotes) but not a boolean to the agent (ecs-init keeps them): the agent looks for IMDS, which an external instance does not have", e.Value, e.Why)
		}
		r.Fix = "write the line as ECS_EXTERNAL=true (no quotes, no spaces) in /etc/ecs/ecs.config, then systemctl restart ecs"
		return r
	}
	ssm := findSSMAgent(procRoot)
	if ssm.sharedFile != "" && ssm.sharedFile != e.CredentialsFile {
		return failCreds(fmt.Sprintf("the SSM agent (pid %d) has AWS_SHARED_CREDENTIALS_FILE=%s, but ecs-init mounts only %s into the agent's container (as /rotatingcreds)", ssm.pid, ssm.sharedFile, filepath.Dir(e.CredentialsFile)),
			"remove AWS_SHARED_CREDENTIALS_FILE from the SSM agent's environment (systemctl edit amazon-ssm-agent), then systemctl restart amazon-ssm-agent")
	}
	fi, err := os.Stat(e.CredentialsFile)
	if err != nil && e.Sandboxed {
		r.Status, r.Detail = Skip, fmt.Sprintf("%s cannot be seen from the daemon's sandbox (ProtectHome=yes hides /root): run ecs-remediator doctor as root to check it", e.CredentialsFile)
		return r
	}
	if errors.Is(err, fs.ErrNotExist) {
		return failCreds(e.CredentialsFile+" does not exist: the agent has no instance credentials (it reads it as /rotatingcreds/credentials)"+ssm.note(),
			"make sure the SSM agent runs, is registered and shares its credentials (\"Profile\": {\"ShareCreds\": true} in /etc/amazon/ssm/amazon-ssm-agent.json, the default)")
	}
	if err != nil {
		r.Status, r.Detail = Skip, fmt.Sprintf("cannot read %s: %v (run as root)", e.CredentialsFile, err)
		return r
	}
	cf, err := safefile.Read(e.CredentialsFile, safefile.Options{Max: maxExternalFile})
	if err != nil {
		r.Status, r.Detail = Skip, fmt.Sprintf("cannot read %s: %v (run as root)", e.CredentialsFile, err)
		return r
	}
	keys := iniSection(cf.Data, e.Profile)
	if keys == nil {
		return failCreds(fmt.Sprintf("%s has no [%s] profile, the one the agent reads (ECS_ALTERNATE_CREDENTIAL_PROFILE, default \"default\")", e.CredentialsFile, e.Profile),
			"make ECS_ALTERNATE_CREDENTIAL_PROFILE in ecs.config name the profile the SSM agent writes (its \"ShareProfile\", default \"default\")")
	}
	if keys["aws_access_key_id"] == "" || keys["aws_secret_access_key"] == "" {
		return failCreds(fmt.Sprintf("the [%s] profile of %s lacks aws_access_key_id or aws_secret_access_key", e.Profile, e.CredentialsFile),
			"restart the SSM agent so it writes fresh credentials (systemctl restart amazon-ssm-agent) and read its log (/var/log/amazon/ssm/amazon-ssm-agent.log)")
	}
	maxAge := e.MaxAge
	if maxAge <= 0 {
		maxAge = DefaultCredentialsMaxAge
	}
	age := now.Sub(fi.ModTime()).Truncate(time.Second)
	if age > maxAge {
		return failCreds(fmt.Sprintf("%s was last written %s ago: the SSM agent no longer refreshes it (it rewrites it at half the credentials' lifetime), so the agent's credentials have expired%s", e.CredentialsFile, age, ssm.note()),
			"systemctl restart amazon-ssm-agent and read /var/log/amazon/ssm/amazon-ssm-agent.log (a role without the Systems Manager permissions gets no credentials)")
	}
	r.Status = OK
	r.Detail = fmt.Sprintf("%s [%s] has credentials written %s ago (values not shown)%s", e.CredentialsFile, e.Profile, age, ssm.note())
	return r
}

// ssmAgent is the running SSM agent, if found.
type ssmAgent struct {
	pid        int
	sharedFile string // its AWS_SHARED_CREDENTIALS_FILE
	searched   bool
}

func (s ssmAgent) note() string {
	switch {
	case !s.searched:
		return ""
	case s.pid == 0:
		return "; no amazon-ssm-agent process runs"
	}
	return fmt.Sprintf("; amazon-ssm-agent runs (pid %d)", s.pid)
}

func findSSMAgent(procRoot string) ssmAgent {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return ssmAgent{}
	}
	s := ssmAgent{searched: true}
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(procRoot, ent.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != ssmAgentComm {
			continue
		}
		s.pid = pid
		if env, err := safefile.Read(filepath.Join(procRoot, ent.Name(), "environ"), safefile.Options{Max: maxExternalFile}); err == nil {
			for _, kv := range bytes.Split(env.Data, []byte{0}) {
				if v, ok := strings.CutPrefix(string(kv), "AWS_SHARED_CREDENTIALS_FILE="); ok {
					s.sharedFile = v
				}
			}
		}
		return s
	}
	return s
}

// iniSection returns the keys of [name] in an AWS shared credentials file
// (nil when the section is absent). Values are only tested for presence.
func iniSection(data []byte, name string) map[string]string {
	var keys map[string]string
	in := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' || l[0] == ';' {
			continue
		}
		if strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]") {
			in = strings.TrimSpace(l[1:len(l)-1]) == name
			if in && keys == nil {
				keys = map[string]string{}
			}
			continue
		}
		if k, v, ok := strings.Cut(l, "="); ok && in {
			keys[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return keys
}
