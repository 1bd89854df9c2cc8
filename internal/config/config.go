// Package config turns the keys of one [OUTPUT] block into a typed, validated Config.
// Every key of SPEC.md is parsed here once, with its default; every problem is reported as its
// own *Error naming the key, the (masked) value and what is expected.
package config

import (
	"net/url"
	"time"

	"github.com/cwos/cloudwatch-opensearch/internal/template"
)

// Config is one instance's settings. Zero values are never relied on: Parse fills defaults.
type Config struct {
	Region string // AWS region (region key, else AWS_REGION, else AWS_DEFAULT_REGION)

	CloudWatch bool
	OpenSearch bool

	// CloudWatch names.
	LogGroupName      string             // fallback group
	LogGroupTemplate  *template.Template // nil when not set
	LogStreamTemplate *template.Template // nil when not set
	LogStreamName     string
	LogStreamPrefix   string
	LogKey            string // send only this key's value as the message; "" = whole record

	// CloudWatch provisioning.
	AutoCreateGroup    bool
	AutoCreateStream   bool
	LogRetentionDays   int32             // 0 = not set
	LogGroupClass      string            // "" = service default; STANDARD, INFREQUENT_ACCESS, DELIVERY
	LogGroupTags       map[string]string // nil = none
	LogGroupKMSKeyID   string
	CloudWatchEndpoint string // custom endpoint URL, "" = AWS
	STSEndpoint        string
	RoleARN            string
	ExternalID         string

	// OpenSearch.
	OpenSearchEndpoints    []*url.URL
	IndexTemplate          *template.Template // always set (default: Lambda mode)
	OpenSearchDocument     string             // DocumentCWL or DocumentRecord
	OpenSearchAuth         string             // AuthNone, AuthBasic, AuthSigV4
	OpenSearchUser         string
	OpenSearchPassword     Secret
	OpenSearchAWSService   string // "es" or "aoss"
	OpenSearchRegion       string
	OpenSearchRoleARN      string
	OpenSearchTLSVerify    bool
	OpenSearchTLSCAFile    string
	OpenSearchBulkMaxBytes int
	OpenSearchCompress     bool // gzip request bodies
	OpenSearchID           bool // deterministic _id with action create; off = action index, server ids
	TimeKey                string

	// Delivery.
	FlushTimeout      time.Duration
	RequestTimeout    time.Duration
	MaxInflight       int
	ExitGrace         time.Duration
	DeadLetterFile    string
	DeadLetterMaxSize int64 // bytes before the file is rotated to FILE.1
}

// Values of the enumerated keys.
const (
	DocumentCWL    = "cwl"
	DocumentRecord = "record"

	AuthNone  = "none"
	AuthBasic = "basic"
	AuthSigV4 = "aws_sigv4"
)

// DefaultIndexTemplate reproduces the CloudWatch -> OpenSearch Lambda's index names byte for byte.
const DefaultIndexTemplate = template.LambdaIndex

// Limits enforced on keys.
const (
	MaxBulkBytes   = 100_000_000
	MaxMaxInflight = 256
)

// Secret holds a password or key. Its String and GoString never reveal it, so it cannot leak
// through logs, errors or %v / %#v dumps of a Config.
type Secret string

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "****"
}

// GoString masks the secret in %#v.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// Reveal returns the secret for the one place that needs it (the HTTP client).
func (s Secret) Reveal() string { return string(s) }
