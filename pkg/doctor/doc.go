// Package doctor diagnoses what ecs-remediator cannot repair: whether the
// ECS agent runs and is registered, whether the task credentials endpoint
// answers through 169.254.170.2, whether the instance metadata service
// (IMDS) hands out instance-role credentials, and whether task processes
// lost AWS_CONTAINER_CREDENTIALS_RELATIVE_URI. It walks the troubleshooting
// tree of docs/doctor.md; the ecs.config, sysctl and iptables checks belong to
// `check` and are not repeated here.
//
// It only reads: HTTP GETs (and the IMDSv2 token PUT), /proc and /sys,
// with one exception that leaves nothing behind: credentials.bridge_path
// puts a throw-away network namespace on the task bridge for the length of
// one request (bridgepath.go says how it is made, named and removed, also
// after a kill). Apart from that it never changes the host, never restarts anything, never prints secret
// values (access keys, tokens, environment values) and never imports
// pkg/policy: the caller fills Config.
//
// Schedule is the daemon's periodic diagnosis: how often it runs, when
// IMDS is asked, and that each failure and recovery is logged once
// (Tracker); the daemon only wires it to its loop and to metrics.
//
// Every network check has one deadline (Config.Timeout); the independent
// groups (agent, credentials endpoint, IMDS) run concurrently, the SDK's
// retries are disabled and proxies from the environment are ignored, so a
// whole run ends within about Config.Timeout even when nothing answers.
//
// Result item ids are a stable contract (doctor --json):
//
//	agent.unit                 ActiveState of the agent's systemd unit
//	agent.introspection        the agent's introspection API: cluster and container instance ARN
//	credentials.endpoint       GET 169.254.170.2/v2/credentials/ answered by the agent (NAT path works)
//	credentials.bridge_path    GET 169.254.170.2/ from a throw-away namespace on the task bridge is answered (bridge path works)
//	imds.reachable             something answers at the IMDS endpoint
//	imds.v2                    the IMDSv2 token PUT works (warn when only IMDSv1 answers)
//	imds.instance_profile      meta-data/iam/ exists (an instance profile is attached)
//	imds.instance_profile_info meta-data/iam/info says Success (profile exists and holds a role)
//	imds.role_credentials      meta-data/iam/security-credentials/<role> says Success
//	external.ssm_registration  ECS Anywhere only: the SSM agent's registration file names a managed instance
//	external.credentials       ECS Anywhere only: the shared credentials file the agent reads exists, has its profile, is fresh
//	tasks.credentials_env      no task process lost AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
package doctor
