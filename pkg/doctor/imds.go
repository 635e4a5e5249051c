package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// imdsProbe walks the instance-role half of the troubleshooting tree. The
// metadata paths are read through the AWS SDK's own IMDS client, the same
// code path the agent and most tools use, with retries disabled so that
// Config.Timeout bounds the whole walk. The IMDSv2 token is also asked for
// directly, because the SDK silently falls back to IMDSv1 and would hide a
// refused token.
type imdsProbe struct {
	c          Config
	client     *imds.Client
	instanceID string
}

func newIMDSProbe(c Config) *imdsProbe {
	client := imds.New(imds.Options{
		Endpoint:          strings.TrimRight(c.IMDSEndpoint, "/"),
		HTTPClient:        c.HTTPClient,
		Retryer:           aws.NopRetryer{},   // one attempt: never multiply the timeout
		ClientEnableState: imds.ClientEnabled, // probe even when AWS_EC2_METADATA_DISABLED is set
		EnableFallback:    aws.TrueTernary,    // read v1-only hosts too; imds.v2 reports the difference
	})
	return &imdsProbe{c: c, client: client}
}

var imdsItems = []string{ItemIMDSReachable, ItemIMDSv2, ItemIMDSInstanceProfile, ItemIMDSInstanceProfileInf, ItemIMDSRoleCredentials}

// skipRest completes rs with skips for the imds items it does not hold yet.
func skipRest(rs []Result, why string) []Result {
	for _, item := range imdsItems[len(rs):] {
		rs = append(rs, Result{Item: item, Status: Skip, Detail: why})
	}
	return rs
}

// checkIMDS returns the five imds.* results, in order.
func checkIMDS(ctx context.Context, c Config) []Result {
	if c.SkipIMDS {
		return skipRest(nil, "IMDS checks turned off (SkipIMDS)")
	}
	p := newIMDSProbe(c)
	reach, v2, ok := p.reachability(ctx)
	rs := []Result{reach}
	if !ok {
		return skipRest(rs, "not checked: IMDS did not answer (see imds.reachable)")
	}
	rs = append(rs, v2)
	prof, ok := p.instanceProfile(ctx)
	rs = append(rs, prof)
	if !ok {
		return skipRest(rs, "not checked: no instance profile (see imds.instance_profile)")
	}
	rs = append(rs, p.profileInfo(ctx), p.roleCredentials(ctx))
	return rs
}

// token asks for an IMDSv2 session token directly. status is 0 when
// nothing answered.
func (p *imdsProbe) token(ctx context.Context) (status int, err error) {
	h := http.Header{"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": {"60"}}
	status, body, err := get(ctx, p.c.HTTPClient, http.MethodPut, strings.TrimRight(p.c.IMDSEndpoint, "/")+"/latest/api/token", h)
	if err != nil {
		return 0, err
	}
	if status == http.StatusOK && len(strings.TrimSpace(string(body))) == 0 {
		return status, errors.New("empty token")
	}
	return status, nil
}

// fetch reads one meta-data path through the SDK. status is the HTTP
// status of an answer (200 with the body, or the error status); 0 with an
// error means nothing answered.
func (p *imdsProbe) fetch(ctx context.Context, path string) (int, []byte, error) {
	out, err := p.client.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
	if err != nil {
		var se interface{ HTTPStatusCode() int }
		if errors.As(err, &se) {
			return se.HTTPStatusCode(), nil, err
		}
		return 0, nil, err
	}
	defer out.Content.Close()
	body, err := io.ReadAll(io.LimitReader(out.Content, maxBody))
	if err != nil {
		return 0, nil, fmt.Errorf("read meta-data/%s: %w", path, err)
	}
	return http.StatusOK, body, nil
}

// reachability returns imds.reachable and imds.v2, and whether IMDS
// answered well enough to go on.
func (p *imdsProbe) reachability(ctx context.Context) (reach, v2 Result, ok bool) {
	ep := p.c.IMDSEndpoint
	reach = Result{Item: ItemIMDSReachable}
	v2 = Result{Item: ItemIMDSv2}
	tokStatus, tokErr := p.token(ctx)
	if tokStatus == 0 {
		return p.unreachable(tokErr), v2, false
	}

	status, body, err := p.fetch(ctx, "instance-id")
	switch {
	case err == nil:
		p.instanceID = strings.TrimSpace(string(body))
		reach.Status = OK
		reach.Detail = fmt.Sprintf("IMDS answers at %s (instance %s)", ep, p.instanceID)
	case status == 0:
		reach.Status = Fail
		reach.Detail = fmt.Sprintf("IMDS at %s answered the token request but not GET meta-data/instance-id: %v", ep, err)
		reach.Fix = "a firewall or proxy lets some requests to 169.254.169.254 through and drops others: check `iptables -S OUTPUT` and that 169.254.169.254 is in NO_PROXY"
		return reach, v2, false
	case status == http.StatusForbidden:
		reach.Status = Fail
		reach.Detail = fmt.Sprintf("IMDS at %s answers but refuses requests (HTTP 403)", ep)
		reach.Fix = "instance metadata is turned off for this instance: `aws ec2 modify-instance-metadata-options --instance-id INSTANCE_ID --http-endpoint enabled`; or a proxy forwards the requests (add 169.254.169.254 to NO_PROXY)"
		return reach, v2, false
	default:
		reach.Status = Fail
		reach.Detail = fmt.Sprintf("IMDS at %s answered GET meta-data/instance-id with HTTP %d", ep, status)
		reach.Fix = "if the token request was refused too, a proxy or filter sits in front of IMDS (add 169.254.169.254 to NO_PROXY); otherwise retry and contact AWS support"
		return reach, v2, false
	}

	switch {
	case tokStatus == http.StatusOK && tokErr == nil:
		v2.Status = OK
		v2.Detail = "IMDSv2 session token accepted"
		// Tell whether IMDSv1 is still open: informational, AWS recommends
		// HttpTokens=required but the ECS agent works either way.
		if s, _, err := get(ctx, p.c.HTTPClient, http.MethodGet, strings.TrimRight(ep, "/")+"/latest/meta-data/", nil); err == nil {
			switch s {
			case http.StatusOK:
				v2.Detail += "; IMDSv1 also answers (HttpTokens=optional; `--http-tokens required` would turn it off)"
			case http.StatusUnauthorized:
				v2.Detail += "; IMDSv1 is refused (HttpTokens=required)"
			}
		}
	default:
		v2.Status = Warn
		why := fmt.Sprintf("HTTP %d", tokStatus)
		if tokErr != nil {
			why = tokErr.Error()
		}
		v2.Detail = fmt.Sprintf("the IMDSv2 token request (PUT /latest/api/token) was refused (%s): only IMDSv1 answers", why)
		v2.Fix = "tools that require IMDSv2 will get no instance-role credentials. A proxy in the path makes IMDS refuse tokens (requests with X-Forwarded-For): put 169.254.169.254 in NO_PROXY; a local filter may block PUT requests. Then consider `aws ec2 modify-instance-metadata-options --instance-id " + p.id() + " --http-tokens required`"
	}
	return reach, v2, true
}

// unreachable words imds.reachable when nothing answered. Off EC2 that is
// expected and reported as skip; on EC2 (or when sysfs cannot tell) it is a
// failure: a firewall blocks 169.254.169.254 or metadata is turned off.
func (p *imdsProbe) unreachable(err error) Result {
	r := Result{Item: ItemIMDSReachable}
	ev, why := detectEC2(p.c.SysRoot)
	what := fmt.Sprintf("nothing answers at %s (%s)", p.c.IMDSEndpoint, classify(err))
	if classify(err) == netOther {
		what = fmt.Sprintf("nothing answers at %s: %v", p.c.IMDSEndpoint, err)
	}
	if ev == ec2No {
		r.Status = Skip
		r.Detail = what + "; this machine is not an EC2 instance (" + why + ")"
		return r
	}
	r.Status = Fail
	r.Detail = what
	if ev == ec2Unknown {
		r.Detail += "; could not tell whether this is an EC2 instance (" + why + ")"
	} else {
		r.Detail += "; this is an EC2 instance (" + why + ")"
	}
	r.Fix = "a firewall blocks 169.254.169.254: look for DROP/REJECT rules (`iptables -S OUTPUT`; a DOCKER-USER rule meant for containers must not match host traffic) " +
		"or an OUTPUT policy of DROP; or instance metadata is turned off: `aws ec2 modify-instance-metadata-options --instance-id INSTANCE_ID --http-endpoint enabled`"
	return r
}

func (p *imdsProbe) id() string {
	if p.instanceID == "" {
		return "INSTANCE_ID"
	}
	return p.instanceID
}

// instanceProfile returns imds.instance_profile and whether a profile is
// attached.
func (p *imdsProbe) instanceProfile(ctx context.Context) (Result, bool) {
	r := Result{Item: ItemIMDSInstanceProfile}
	status, body, err := p.fetch(ctx, "iam/")
	switch {
	case err == nil:
		r.Status = OK
		r.Detail = "an instance profile is attached (meta-data/iam/ lists " + strings.Join(listing(body), ", ") + ")"
		return r, true
	case status == http.StatusNotFound:
		r.Status = Fail
		r.Detail = "no instance profile is attached: meta-data/iam/ answers 404"
		r.Fix = "attach one: `aws ec2 associate-iam-instance-profile --instance-id " + p.id() + " --iam-instance-profile Name=ecsInstanceRole`. " +
			"Its role needs the AmazonEC2ContainerServiceforEC2Role managed policy (or its ECS/ECR permissions) and a trust policy for ec2.amazonaws.com (`ecs-remediator lint-trust-policy FILE --for instance`)"
	case status == 0:
		r.Status = Fail
		r.Detail = fmt.Sprintf("GET meta-data/iam/: no answer: %v", err)
		r.Fix = "IMDS answered a moment ago; retry `ecs-remediator doctor` and raise --timeout if the host is overloaded"
	default:
		r.Status = Fail
		r.Detail = fmt.Sprintf("GET meta-data/iam/ answered HTTP %d", status)
		r.Fix = "retry; if it persists, check the instance profile association: `aws ec2 describe-iam-instance-profile-associations --filters Name=instance-id,Values=" + p.id() + "`"
	}
	return r, false
}

func (p *imdsProbe) profileInfo(ctx context.Context) Result {
	status, body, err := p.fetch(ctx, "iam/info")
	if status == 0 {
		return Result{Item: ItemIMDSInstanceProfileInf, Status: Fail,
			Detail: fmt.Sprintf("GET meta-data/iam/info: no answer: %v", err),
			Fix:    "retry `ecs-remediator doctor`; raise --timeout if the host is overloaded"}
	}
	return judgeIAMInfo(status, body, p.id())
}

func (p *imdsProbe) roleCredentials(ctx context.Context) Result {
	status, body, err := p.fetch(ctx, "iam/security-credentials/")
	if status == 0 {
		return Result{Item: ItemIMDSRoleCredentials, Status: Fail,
			Detail: fmt.Sprintf("GET meta-data/iam/security-credentials/: no answer: %v", err),
			Fix:    "retry `ecs-remediator doctor`; raise --timeout if the host is overloaded"}
	}
	roles := listing(body)
	if status != http.StatusOK || len(roles) == 0 {
		return judgeRoleCredentials("", status, nil)
	}
	role := roles[0]
	status, body, err = p.fetch(ctx, "iam/security-credentials/"+role)
	if status == 0 {
		return Result{Item: ItemIMDSRoleCredentials, Status: Fail,
			Detail: fmt.Sprintf("GET meta-data/iam/security-credentials/%s: no answer: %v", role, err),
			Fix:    "retry `ecs-remediator doctor`; raise --timeout if the host is overloaded"}
	}
	return judgeRoleCredentials(role, status, body)
}

// listing returns the entries of a meta-data directory answer, without
// trailing slashes and duplicates.
func listing(body []byte) []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range strings.Fields(string(body)) {
		f = strings.TrimSuffix(f, "/")
		if f != "" && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}
