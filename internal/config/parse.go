package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cwos/cloudwatch-opensearch/internal/template"
)

// Source gives the raw value of a key; "" means absent (Fluent Bit cannot tell absent from empty).
type Source interface {
	Get(key string) string
}

// MapSource is a Source over a map; keys are matched case-insensitively, as Fluent Bit does.
type MapSource map[string]string

// Get returns the value of key, ignoring case.
func (m MapSource) Get(key string) string {
	if v, ok := m[key]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

// Error is one problem with one key.
type Error struct {
	Key      string
	Value    string // already masked for secrets
	Expected string
}

func (e *Error) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("config: %s: %s", e.Key, e.Expected)
	}
	return fmt.Sprintf("config: %s = %q: %s", e.Key, e.Value, e.Expected)
}

// key describes one [OUTPUT] key: its name, default (as text, parsed like a user value) and
// whether its value is secret.
type key struct {
	name   string
	def    string
	secret bool
}

// keys lists every key the plugin reads, in README order.
var keys = []key{
	{name: "region"},
	{name: "cloudwatch", def: "on"},
	{name: "opensearch", def: "on"},
	{name: "log_group_name"},
	{name: "log_group_template"},
	{name: "log_stream_template"},
	{name: "log_stream_name"},
	{name: "log_stream_prefix"},
	{name: "log_key"},
	{name: "auto_create_group", def: "off"},
	{name: "auto_create_stream", def: "on"},
	{name: "log_retention_days"},
	{name: "log_group_class"},
	{name: "log_group_tags"},
	{name: "log_group_kms_key_id"},
	{name: "cloudwatch_endpoint"},
	{name: "sts_endpoint"},
	{name: "role_arn"},
	{name: "external_id", secret: true},
	{name: "opensearch_endpoint"},
	{name: "index_template", def: DefaultIndexTemplate},
	{name: "opensearch_document", def: DocumentCWL},
	{name: "opensearch_auth"},
	{name: "opensearch_user"},
	{name: "opensearch_password", secret: true},
	{name: "opensearch_aws_service"},
	{name: "opensearch_region"},
	{name: "opensearch_role_arn"},
	{name: "opensearch_tls_verify", def: "on"},
	{name: "opensearch_tls_ca_file"},
	{name: "opensearch_bulk_max_bytes", def: "5M"},
	{name: "opensearch_compress", def: "off"},
	{name: "opensearch_id"},
	{name: "time_key", def: "@timestamp"},
	{name: "flush_timeout", def: "20s"},
	{name: "request_timeout", def: "30s"},
	{name: "max_inflight", def: "8"},
	{name: "exit_grace", def: "5s"},
	{name: "dead_letter_file"},
	{name: "dead_letter_max_size", def: "100M"},
}

// Keys returns the names of every key the plugin reads.
func Keys() []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.name
	}
	return out
}

// Known reports whether name is one of the plugin's keys (case-insensitive).
func Known(name string) bool {
	return slices.ContainsFunc(keys, func(k key) bool { return strings.EqualFold(k.name, name) })
}

// Default returns the documented default of a key ("" when it has none).
func Default(name string) string {
	for _, k := range keys {
		if k.name == name {
			return k.def
		}
	}
	return ""
}

// Secret reports whether the key holds a secret whose value must never be printed.
func IsSecret(name string) bool {
	return slices.ContainsFunc(keys, func(k key) bool { return k.secret && strings.EqualFold(k.name, name) })
}

// retentionDays are the values PutRetentionPolicy accepts.
var retentionDays = []int32{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

// parser reads keys from a Source and collects one Error per problem.
type parser struct {
	src  Source
	errs []error
}

func (p *parser) raw(name string) (string, bool) {
	v := strings.TrimSpace(p.src.Get(name))
	if v == "" {
		return Default(name), false
	}
	return v, true
}

func (p *parser) str(name string) string { v, _ := p.raw(name); return v }

func (p *parser) fail(name, value, expected string) {
	if IsSecret(name) && value != "" {
		value = "****"
	}
	p.errs = append(p.errs, &Error{Key: name, Value: value, Expected: expected})
}

func (p *parser) boolean(name string) bool {
	v, _ := p.raw(name)
	b, err := ParseBool(v)
	if err != nil {
		p.fail(name, v, "expected on/off, true/false or yes/no")
	}
	return b
}

func (p *parser) duration(name string) time.Duration {
	v, _ := p.raw(name)
	d, err := ParseDuration(v)
	if err != nil || d <= 0 {
		p.fail(name, v, "expected a positive duration such as 500ms, 20s or 2m (a plain number is seconds)")
	}
	return d
}

func (p *parser) size(name string, max int64) int64 {
	v, _ := p.raw(name)
	n, err := ParseSize(v)
	switch {
	case err != nil || n <= 0:
		p.fail(name, v, "expected a positive size such as 512K or 5M (K = 1,000, M = 1,000,000)")
	case max > 0 && n > max:
		p.fail(name, v, fmt.Sprintf("expected at most %d bytes", max))
	}
	return n
}

func (p *parser) template(name string, kind template.Kind) *template.Template {
	v, _ := p.raw(name)
	if v == "" {
		return nil
	}
	t, err := template.Compile(v, kind)
	if err != nil {
		p.fail(name, v, "invalid template: "+err.Error())
		return nil
	}
	return t
}

func (p *parser) oneOf(name string, allowed ...string) string {
	v, _ := p.raw(name)
	if v == "" {
		return ""
	}
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a
		}
	}
	p.fail(name, v, "expected one of "+strings.Join(allowed, ", "))
	return ""
}

func (p *parser) url(name, v string) *url.URL {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.fail(name, v, "expected an http:// or https:// URL with a host")
		return nil
	}
	if u.User != nil {
		p.fail(name, u.Redacted(), "credentials in the URL are not allowed: use opensearch_user and opensearch_password")
		return nil
	}
	return u
}

// Parse reads, defaults and validates every key. On problems it returns a nil Config and an
// error joining one *Error per problem (errors.As finds each; Error() has one line per problem).
func Parse(src Source) (*Config, error) {
	p := &parser{src: src}
	c := &Config{}

	c.Region = p.str("region")
	if c.Region == "" {
		c.Region = os.Getenv("AWS_REGION")
	}
	if c.Region == "" {
		c.Region = os.Getenv("AWS_DEFAULT_REGION")
	}
	c.CloudWatch = p.boolean("cloudwatch")
	c.OpenSearch = p.boolean("opensearch")
	if !c.CloudWatch && !c.OpenSearch {
		p.fail("cloudwatch", p.str("cloudwatch"), "at least one of cloudwatch and opensearch must be on")
	}

	c.LogGroupName = p.str("log_group_name")
	c.LogGroupTemplate = p.template("log_group_template", template.Group)
	c.LogStreamTemplate = p.template("log_stream_template", template.Stream)
	c.LogStreamName = p.str("log_stream_name")
	c.LogStreamPrefix = p.str("log_stream_prefix")
	c.LogKey = p.str("log_key")
	c.AutoCreateGroup = p.boolean("auto_create_group")
	c.AutoCreateStream = p.boolean("auto_create_stream")
	if v := p.str("log_retention_days"); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || !slices.Contains(retentionDays, int32(n)) {
			p.fail("log_retention_days", v, "expected one of the values CloudWatch accepts: "+joinInts(retentionDays))
		}
		c.LogRetentionDays = int32(n)
	}
	c.LogGroupClass = p.oneOf("log_group_class", "STANDARD", "INFREQUENT_ACCESS", "DELIVERY")
	if v := p.str("log_group_tags"); v != "" {
		tags, err := ParseTags(v)
		if err != nil {
			p.fail("log_group_tags", v, err.Error())
		}
		c.LogGroupTags = tags
	}
	c.LogGroupKMSKeyID = p.str("log_group_kms_key_id")
	if v := p.str("cloudwatch_endpoint"); v != "" {
		if u := p.url("cloudwatch_endpoint", v); u != nil {
			c.CloudWatchEndpoint = u.String()
		}
	}
	if v := p.str("sts_endpoint"); v != "" {
		if u := p.url("sts_endpoint", v); u != nil {
			c.STSEndpoint = u.String()
		}
	}
	c.RoleARN = p.str("role_arn")
	c.ExternalID = p.str("external_id")
	if c.RoleARN != "" && !strings.HasPrefix(c.RoleARN, "arn:") {
		p.fail("role_arn", c.RoleARN, "expected an IAM role ARN such as arn:aws:iam::123456789012:role/fluent-bit")
	}

	if c.CloudWatch {
		if c.LogGroupName == "" {
			p.fail("log_group_name", "", "required when cloudwatch is on (it is the fallback group when log_group_template cannot render)")
		}
		if c.LogStreamName == "" && c.LogStreamPrefix == "" {
			p.fail("log_stream_name", "", "one of log_stream_name or log_stream_prefix is required when cloudwatch is on (the fallback stream)")
		}
	}

	// OpenSearch.
	for _, e := range strings.Split(p.str("opensearch_endpoint"), ",") {
		if e = strings.TrimSpace(e); e != "" {
			if u := p.url("opensearch_endpoint", e); u != nil {
				c.OpenSearchEndpoints = append(c.OpenSearchEndpoints, u)
			}
		}
	}
	c.IndexTemplate = p.template("index_template", template.Index)
	c.OpenSearchDocument = p.oneOf("opensearch_document", DocumentCWL, DocumentRecord)
	c.OpenSearchUser = p.str("opensearch_user")
	c.OpenSearchPassword = Secret(p.str("opensearch_password"))
	c.OpenSearchAuth = p.oneOf("opensearch_auth", AuthNone, AuthBasic, AuthSigV4)
	amazon, aoss := false, false
	for _, u := range c.OpenSearchEndpoints {
		h := strings.ToLower(u.Hostname())
		amazon = amazon || strings.HasSuffix(h, ".amazonaws.com")
		aoss = aoss || strings.HasSuffix(h, ".aoss.amazonaws.com")
	}
	if c.OpenSearchAuth == "" && p.str("opensearch_auth") == "" {
		c.OpenSearchAuth = AuthNone
		if amazon {
			c.OpenSearchAuth = AuthSigV4
		}
	}
	c.OpenSearchAWSService = p.oneOf("opensearch_aws_service", "es", "aoss")
	if c.OpenSearchAWSService == "" && p.str("opensearch_aws_service") == "" {
		c.OpenSearchAWSService = "es"
		if aoss {
			c.OpenSearchAWSService = "aoss"
		}
	}
	c.OpenSearchRegion = p.str("opensearch_region")
	if c.OpenSearchRegion == "" {
		c.OpenSearchRegion = c.Region
	}
	c.OpenSearchRoleARN = p.str("opensearch_role_arn")
	if c.OpenSearchRoleARN != "" && !strings.HasPrefix(c.OpenSearchRoleARN, "arn:") {
		p.fail("opensearch_role_arn", c.OpenSearchRoleARN, "expected an IAM role ARN such as arn:aws:iam::123456789012:role/fluent-bit")
	}
	c.OpenSearchTLSVerify = p.boolean("opensearch_tls_verify")
	c.OpenSearchTLSCAFile = p.str("opensearch_tls_ca_file")
	if c.OpenSearchTLSCAFile != "" {
		if _, err := os.Stat(c.OpenSearchTLSCAFile); err != nil {
			p.fail("opensearch_tls_ca_file", c.OpenSearchTLSCAFile, "cannot read the CA file: "+errText(err))
		}
	}
	c.OpenSearchBulkMaxBytes = int(p.size("opensearch_bulk_max_bytes", MaxBulkBytes))
	switch v := strings.ToLower(p.str("opensearch_compress")); v {
	case "gzip":
		c.OpenSearchCompress = true
	case "off", "false", "no", "none":
	default:
		p.fail("opensearch_compress", v, "expected off or gzip")
	}
	if v := p.str("opensearch_id"); v != "" {
		c.OpenSearchID = p.boolean("opensearch_id")
	} else {
		c.OpenSearchID = c.OpenSearchAWSService != "aoss"
	}
	c.TimeKey = p.str("time_key")

	if c.OpenSearch {
		if len(c.OpenSearchEndpoints) == 0 && p.str("opensearch_endpoint") == "" {
			p.fail("opensearch_endpoint", "", "required when opensearch is on: one or more URLs, comma-separated")
		}
		switch c.OpenSearchAuth {
		case AuthBasic:
			if c.OpenSearchUser == "" {
				p.fail("opensearch_user", "", "required when opensearch_auth is basic")
			}
			if c.OpenSearchPassword == "" {
				p.fail("opensearch_password", "", "required when opensearch_auth is basic")
			}
		case AuthSigV4:
			if c.OpenSearchRegion == "" {
				p.fail("opensearch_region", "", "required for aws_sigv4 (set opensearch_region, region or AWS_REGION)")
			}
		}
		if c.OpenSearchAWSService == "aoss" && c.OpenSearchID && p.str("opensearch_id") != "" {
			p.fail("opensearch_id", p.str("opensearch_id"), "must be off for aoss: OpenSearch Serverless time-series collections reject documents with an _id")
		}
		if c.IndexTemplate != nil && !c.CloudWatch && c.LogGroupName == "" && c.LogGroupTemplate == nil &&
			c.IndexTemplate.UsesLogGroup() {
			p.fail("index_template", c.IndexTemplate.Source(), "uses $LOG_GROUP but no log group is configured: set log_group_name / log_group_template or an index_template without $LOG_GROUP")
		}
	}
	if c.CloudWatch && c.Region == "" {
		p.fail("region", "", "required for CloudWatch: set region or AWS_REGION")
	}

	c.FlushTimeout = p.duration("flush_timeout")
	c.RequestTimeout = p.duration("request_timeout")
	c.ExitGrace = p.duration("exit_grace")
	if v := p.str("max_inflight"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxMaxInflight {
			p.fail("max_inflight", v, fmt.Sprintf("expected an integer from 1 to %d", MaxMaxInflight))
		}
		c.MaxInflight = n
	}
	c.DeadLetterFile = p.str("dead_letter_file")
	c.DeadLetterMaxSize = p.size("dead_letter_max_size", 0)

	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return c, nil
}

func joinInts(v []int32) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(int(n))
	}
	return strings.Join(s, ", ")
}

func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// ParseBool accepts on/off, true/false, yes/no (any case), as Fluent Bit does.
func ParseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "on", "true", "yes":
		return true, nil
	case "off", "false", "no":
		return false, nil
	}
	return false, fmt.Errorf("invalid boolean %q", v)
}

// ParseSize reads Fluent Bit sizes: a number with an optional K, M or G suffix (powers of 1,000;
// KB, MB, GB accepted too).
func ParseSize(v string) (int64, error) {
	s := strings.ToUpper(strings.TrimSpace(v))
	s = strings.TrimSuffix(s, "B")
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1_000, s[:len(s)-1]
	case strings.HasSuffix(s, "M"):
		mult, s = 1_000_000, s[:len(s)-1]
	case strings.HasSuffix(s, "G"):
		mult, s = 1_000_000_000, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q", v)
	}
	return n * mult, nil
}

// ParseDuration reads Go durations ("500ms", "20s", "2m"); a plain number is seconds, as in
// Fluent Bit's own time keys.
func ParseDuration(v string) (time.Duration, error) {
	s := strings.TrimSpace(v)
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		if n < 0 || n > 1e6 {
			return 0, fmt.Errorf("invalid duration %q", v)
		}
		return time.Duration(n * float64(time.Second)), nil
	}
	return time.ParseDuration(s)
}

// ParseTags reads k=v,k=v.
func ParseTags(v string) (map[string]string, error) {
	tags := map[string]string{}
	for _, pair := range strings.Split(v, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		k, val, ok := strings.Cut(pair, "=")
		k, val = strings.TrimSpace(k), strings.TrimSpace(val)
		if !ok || k == "" {
			return nil, fmt.Errorf("expected key=value pairs separated by commas, got %q", pair)
		}
		if len(k) > 128 || len(val) > 256 {
			return nil, fmt.Errorf("tag %q: keys are at most 128 and values at most 256 characters", k)
		}
		tags[k] = val
	}
	if len(tags) > 50 {
		return nil, fmt.Errorf("at most 50 tags, got %d", len(tags))
	}
	return tags, nil
}
