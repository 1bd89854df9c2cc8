package cloudwatch

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/cwos/cloudwatch-opensearch/internal/report"
	"github.com/cwos/cloudwatch-opensearch/internal/sink"
)

// maxKnown bounds the memory of streams known to exist; names come from records, and forgetting
// costs nothing but a less precise log line.
const maxKnown = 100_000

// retentionRetry is how long to wait before trying PutRetentionPolicy again on a group we
// created but could not set the retention of.
const retentionRetry = time.Minute

// provisioner creates missing log streams and groups. The happy path never calls it: PutLogEvents
// goes first, and only ResourceNotFound leads here. Concurrent callers for the same name share
// one creation, and ResourceAlreadyExists (another worker or node won) counts as success, so
// Fluent Bit workers and DaemonSet pods racing for a new group never fail.
type provisioner struct {
	d *Destination

	mu        sync.Mutex
	known     map[streamKey]time.Time // streams that accepted events or that we created: when
	flights   map[string]*flight
	retention map[string]time.Time // groups we created whose retention is not set yet: last try
	pendingRP atomic.Int32         // len(retention), read without the lock on the hot path
}

type flight struct {
	done chan struct{}
	err  error
}

func newProvisioner(d *Destination) *provisioner {
	return &provisioner{d: d, known: map[streamKey]time.Time{}, flights: map[string]*flight{}, retention: map[string]time.Time{}}
}

// once runs fn for key unless a call for key is already running, in which case it waits for
// that call's result (or for ctx).
func (p *provisioner) once(ctx context.Context, key string, fn func(context.Context) error) error {
	p.mu.Lock()
	if f, ok := p.flights[key]; ok {
		p.mu.Unlock()
		select {
		case <-f.done:
			return f.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f := &flight{done: make(chan struct{})}
	p.flights[key] = f
	p.mu.Unlock()

	f.err = fn(ctx)

	p.mu.Lock()
	delete(p.flights, key)
	p.mu.Unlock()
	close(f.done)
	return f.err
}

// delivered notes that key accepted events, and retries a retention policy still owed to its
// group.
func (p *provisioner) delivered(ctx context.Context, key streamKey) {
	p.mu.Lock()
	if len(p.known) >= maxKnown {
		clear(p.known)
	}
	p.known[key] = time.Now()
	due := false
	if p.pendingRP.Load() > 0 {
		if t, ok := p.retention[key.group]; ok && p.d.now().Sub(t) >= retentionRetry {
			p.retention[key.group] = p.d.now()
			due = true
		}
	}
	p.mu.Unlock()
	if due {
		p.applyRetention(ctx, key.group)
	}
}

// forget drops key from the known streams and reports whether it was known to exist before
// sent, when the request that found it missing went out.
func (p *provisioner) forget(key streamKey, sent time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.known[key]
	if ok && t.Before(sent) {
		delete(p.known, key)
		return true
	}
	return false
}

// ensureStream makes key exist after a PutLogEvents sent at sent said ResourceNotFound (putMsg is
// the service's message, which names the missing resource). It returns nil when the stream exists now, a
// *sink.PermissionError when an operator must act (denied, or creation turned off), or an error
// to retry.
func (p *provisioner) ensureStream(ctx context.Context, key streamKey, putMsg string, sent time.Time) error {
	d := p.d
	if p.forget(key, sent) {
		d.rep.Add("cloudwatch_vanished", 1)
		d.rep.Limited("cloudwatch:vanished:"+key.group+"/"+key.stream, report.Warn,
			"cloudwatch: log stream %q of log group %q no longer exists (deleted while in use?): %s", key.stream, key.group, putMsg)
	}
	groupMissing := strings.Contains(putMsg, "log group")
	switch {
	case groupMissing && !d.cfg.AutoCreateGroup:
		return p.missing(key, true)
	case !d.cfg.AutoCreateStream:
		return p.missing(key, groupMissing)
	}
	return p.once(ctx, "s\x00"+key.group+"\x00"+key.stream, func(ctx context.Context) error {
		if groupMissing {
			if err := p.ensureGroup(ctx, key.group); err != nil {
				return err
			}
		}
		err := p.createStream(ctx, key)
		if c, _ := classify(err); err != nil && c == classNotFound && !isContextErr(ctx, err) {
			if !d.cfg.AutoCreateGroup {
				return p.missing(key, true)
			}
			if gerr := p.ensureGroup(ctx, key.group); gerr != nil {
				return gerr
			}
			err = p.createStream(ctx, key)
		}
		c, code := classify(err)
		switch {
		case err == nil:
			d.rep.Add("cloudwatch_streams_created", 1)
		case c == classAlreadyExists:
		case isContextErr(ctx, err):
			return err
		case c == classDenied || c == classCredentials:
			return d.denied(ctx, "logs:CreateLogStream", key.group, "", c, code, err, keptRetried)
		default:
			return fmt.Errorf("CreateLogStream %q in log group %q: %w", key.stream, key.group, err)
		}
		p.mu.Lock()
		p.known[key] = time.Now()
		p.mu.Unlock()
		return nil
	})
}

func (p *provisioner) createStream(ctx context.Context, key streamKey) error {
	return p.d.call(ctx, func(ctx context.Context) error {
		_, err := p.d.client.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{
			LogGroupName: &key.group, LogStreamName: &key.stream,
		})
		return err
	})
}

// ensureGroup creates group with the configured class, tags, KMS key and retention.
// ResourceAlreadyExists is success: whoever created it applies the settings.
func (p *provisioner) ensureGroup(ctx context.Context, group string) error {
	d := p.d
	return p.once(ctx, "g\x00"+group, func(ctx context.Context) error {
		in := &cloudwatchlogs.CreateLogGroupInput{LogGroupName: &group}
		if len(d.cfg.LogGroupTags) > 0 {
			in.Tags = d.cfg.LogGroupTags
		}
		if d.cfg.LogGroupKMSKeyID != "" {
			in.KmsKeyId = &d.cfg.LogGroupKMSKeyID
		}
		if d.cfg.LogGroupClass != "" {
			in.LogGroupClass = types.LogGroupClass(d.cfg.LogGroupClass)
		}
		err := d.call(ctx, func(ctx context.Context) error {
			_, err := d.client.CreateLogGroup(ctx, in)
			return err
		})
		c, code := classify(err)
		switch {
		case err == nil:
			d.rep.Add("cloudwatch_groups_created", 1)
			d.rep.Infof("cloudwatch: created log group %q%s", group, p.groupSettings())
			p.applyRetention(ctx, group)
			return nil
		case c == classAlreadyExists:
			return nil
		case isContextErr(ctx, err):
			return err
		case c == classDenied || c == classCredentials:
			action := "logs:CreateLogGroup"
			if len(d.cfg.LogGroupTags) > 0 {
				action += " and logs:TagResource"
			}
			return d.denied(ctx, action, group, "", c, code, err, keptRetried)
		case c == classInvalid:
			// A bad KMS key, class or tag: only the config can fix it; keep the data.
			hint := "check log_group_kms_key_id, log_group_class and log_group_tags"
			if d.cfg.LogGroupKMSKeyID != "" {
				hint += "; the KMS key's policy must allow the CloudWatch Logs service principal of region " + d.region
			}
			d.rep.Limited("cloudwatch:badgroup:"+group, report.Error,
				"cloudwatch: cannot create log group %q (%s: %s); fix: %s. %s", group, code, apiMessage(err), hint, keptRetried)
			return &sink.PermissionError{Destination: Name, Target: group, Err: err, Hint: hint}
		}
		return fmt.Errorf("CreateLogGroup %q: %w", group, err)
	})
}

// groupSettings describes what a created group got, for the log line.
func (p *provisioner) groupSettings() string {
	c := p.d.cfg
	var parts []string
	if c.LogRetentionDays > 0 {
		parts = append(parts, fmt.Sprintf("retention %d days", c.LogRetentionDays))
	}
	if c.LogGroupClass != "" {
		parts = append(parts, "class "+c.LogGroupClass)
	}
	if len(c.LogGroupTags) > 0 {
		keys := make([]string, 0, len(c.LogGroupTags))
		for k := range c.LogGroupTags {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts = append(parts, "tags "+strings.Join(keys, ","))
	}
	if c.LogGroupKMSKeyID != "" {
		parts = append(parts, "KMS key "+c.LogGroupKMSKeyID)
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// applyRetention sets log_retention_days on a group we created. A failure does not hold up
// delivery (the events are stored either way); the policy is tried again a minute later, on the
// next delivery to the group, until it is set.
func (p *provisioner) applyRetention(ctx context.Context, group string) {
	d := p.d
	days := d.cfg.LogRetentionDays
	if days <= 0 {
		return
	}
	err := d.call(ctx, func(ctx context.Context) error {
		_, err := d.client.PutRetentionPolicy(ctx, &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: &group, RetentionInDays: &days})
		return err
	})
	p.mu.Lock()
	if err == nil {
		delete(p.retention, group)
	} else {
		p.retention[group] = d.now()
	}
	p.pendingRP.Store(int32(len(p.retention)))
	p.mu.Unlock()
	if err == nil {
		return
	}
	d.rep.Add("cloudwatch_retention_failed", 1)
	const consequence = "Events are still delivered (kept forever until the policy is set); trying again in a minute."
	if c, code := classify(err); c == classDenied || c == classCredentials {
		d.denied(ctx, "logs:PutRetentionPolicy", group, "", c, code, err, consequence)
		return
	}
	d.rep.Limited("cloudwatch:retention:"+group, report.Warn, "cloudwatch: could not set a retention of %d days on log group %q: %v. %s", days, group, err, consequence)
}

// missing reports a missing group (group is true when the service said the group is missing) or
// stream with creation turned off: one line per name per minute, and a *sink.PermissionError
// (data kept, FLB_RETRY) since an operator must act.
func (p *provisioner) missing(key streamKey, group bool) error {
	d := p.d
	var target, msg, hint string
	if group && !d.cfg.AutoCreateGroup {
		target = key.group
		hint = fmt.Sprintf("create log group %q (with its retention policy) or set auto_create_group on", key.group)
		msg = fmt.Sprintf("log group %q does not exist and auto_create_group is off", key.group)
	} else {
		target = key.group + "/" + key.stream
		hint = fmt.Sprintf("create log stream %q in log group %q or set auto_create_stream on", key.stream, key.group)
		nor := ""
		if group {
			nor = " (nor does the group)"
		}
		msg = fmt.Sprintf("log stream %q in log group %q does not exist%s and auto_create_stream is off", key.stream, key.group, nor)
	}
	d.rep.Add("cloudwatch_missing_target", 1)
	d.rep.Limited("cloudwatch:missing:"+target, report.Error, "cloudwatch: %s; fix: %s. %s", msg, hint, keptRetried)
	return &sink.PermissionError{Destination: Name, Target: target, Err: fmt.Errorf("%s", msg), Hint: hint}
}

const keptRetried = "The records are kept and Fluent Bit retries the chunk."

// denied reports an error an operator must fix, naming the IAM action and the ARN to allow, at
// most once a minute per action and name, and returns it as a *sink.PermissionError.
func (d *Destination) denied(ctx context.Context, action, group, stream string, c class, code string, err error, consequence string) *sink.PermissionError {
	target := group
	if stream != "" {
		target = group + "/" + stream
	}
	// Credential and key problems are the same for every name: one line a minute in all.
	// Denials are per action and name: the policy may allow some groups and not others.
	var hint, what string
	key := "cloudwatch:denied:" + action + ":" + target
	switch {
	case c == classCredentials:
		key, what = "cloudwatch:credentials", "cannot get AWS credentials (calling "+action+")"
		hint = "check the AWS credential chain: IRSA (AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE), EKS Pod Identity, or the node's instance profile over IMDSv2 (hop limit 2 for pods)"
		if d.cfg.RoleARN != "" {
			hint += "; and that this identity may sts:AssumeRole " + d.cfg.RoleARN + " (trust policy, external_id)"
		}
	case strings.HasPrefix(code, "ExpiredToken"):
		key, what = "cloudwatch:auth:"+code, "the AWS credentials expired (calling "+action+")"
		hint = "the credentials expired and were not refreshed: check their source (IRSA token file, EKS Pod Identity agent, instance profile)"
	case code == "AccessDeniedException" || code == "AccessDenied" || code == "NotAuthorized" || code == "":
		arn := arnInMessage(apiMessage(err))
		if arn == "" {
			arn = resourceARN(d.partition, d.region, d.account(ctx), group, stream)
		}
		what = fmt.Sprintf("%s for %q was denied", action, target)
		hint = "allow " + action + " on " + arn + " in the IAM policy of the plugin's role"
	default: // UnrecognizedClient, signature problems
		key, what = "cloudwatch:auth:"+code, "the AWS access key was refused (calling "+action+")"
		hint = "the access key or its signature is not valid: check the credentials given to the plugin and the node's clock"
	}
	detail := apiMessage(err)
	if code != "" {
		detail = code + ": " + detail
	}
	d.rep.Add("cloudwatch_denied", 1)
	d.rep.Limited(key, report.Error, "cloudwatch: %s: %s; fix: %s. %s", what, detail, hint, consequence)
	return &sink.PermissionError{Destination: Name, Target: target, Err: err, Hint: hint}
}

// account returns the AWS account of the credentials when the provider says it, else "".
func (d *Destination) account(ctx context.Context) string {
	if d.creds == nil {
		return ""
	}
	cr, err := d.creds.Retrieve(ctx)
	if err != nil {
		return ""
	}
	return cr.AccountID
}
