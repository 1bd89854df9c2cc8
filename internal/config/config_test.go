package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// base is the smallest valid config with both destinations on.
func base() MapSource {
	return MapSource{
		"region":              "eu-west-1",
		"log_group_name":      "/aws/containerinsights/demo/application",
		"log_stream_prefix":   "node-1-",
		"opensearch_endpoint": "https://search.example.com",
	}
}

func with(kv ...string) MapSource {
	m := base()
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "<unset>" {
			delete(m, kv[i])
			continue
		}
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestDefaults(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	c, err := Parse(base())
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"cloudwatch", c.CloudWatch, true},
		{"opensearch", c.OpenSearch, true},
		{"auto_create_group", c.AutoCreateGroup, false},
		{"auto_create_stream", c.AutoCreateStream, true},
		{"index_template", c.IndexTemplate.Source(), "cwl$LOG_GROUP-%Y.%m.%d"},
		{"opensearch_document", c.OpenSearchDocument, "cwl"},
		{"opensearch_auth", c.OpenSearchAuth, "none"},
		{"opensearch_aws_service", c.OpenSearchAWSService, "es"},
		{"opensearch_region", c.OpenSearchRegion, "eu-west-1"},
		{"opensearch_tls_verify", c.OpenSearchTLSVerify, true},
		{"opensearch_bulk_max_bytes", c.OpenSearchBulkMaxBytes, 5_000_000},
		{"opensearch_compress", c.OpenSearchCompress, false},
		{"opensearch_id", c.OpenSearchID, true},
		{"time_key", c.TimeKey, "@timestamp"},
		{"flush_timeout", c.FlushTimeout, 20 * time.Second},
		{"request_timeout", c.RequestTimeout, 30 * time.Second},
		{"max_inflight", c.MaxInflight, 8},
		{"exit_grace", c.ExitGrace, 5 * time.Second},
		{"dead_letter_max_size", c.DeadLetterMaxSize, int64(100_000_000)},
		{"log_group_template", c.LogGroupTemplate == nil, true},
		{"log_retention_days", c.LogRetentionDays, int32(0)},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

func TestParse(t *testing.T) {
	cases := []struct {
		name  string
		src   MapSource
		check func(*Config) error
	}{
		{"keys are case-insensitive", with("LOG_GROUP_TEMPLATE", "/aws/$kubernetes['namespace_name']", "Auto_Create_Group", "On"),
			func(c *Config) error {
				if c.LogGroupTemplate == nil || !c.AutoCreateGroup {
					return fmt.Errorf("mixed-case keys ignored")
				}
				return nil
			}},
		{"amazonaws host defaults to sigv4 es", with("opensearch_endpoint", "https://vpc-logs-abc.eu-west-1.es.amazonaws.com"),
			func(c *Config) error {
				if c.OpenSearchAuth != AuthSigV4 || c.OpenSearchAWSService != "es" || !c.OpenSearchID {
					return fmt.Errorf("auth=%s service=%s id=%v", c.OpenSearchAuth, c.OpenSearchAWSService, c.OpenSearchID)
				}
				return nil
			}},
		{"aoss host defaults to aoss without ids", with("opensearch_endpoint", "https://abc123.eu-west-1.aoss.amazonaws.com"),
			func(c *Config) error {
				if c.OpenSearchAuth != AuthSigV4 || c.OpenSearchAWSService != "aoss" || c.OpenSearchID {
					return fmt.Errorf("auth=%s service=%s id=%v", c.OpenSearchAuth, c.OpenSearchAWSService, c.OpenSearchID)
				}
				return nil
			}},
		{"several endpoints with a path prefix", with("opensearch_endpoint", "http://127.0.0.1:9200/prefix, http://127.0.0.2:9200"),
			func(c *Config) error {
				if len(c.OpenSearchEndpoints) != 2 || c.OpenSearchEndpoints[0].Path != "/prefix" {
					return fmt.Errorf("endpoints %v", c.OpenSearchEndpoints)
				}
				return nil
			}},
		{"sizes in Fluent Bit units", with("opensearch_bulk_max_bytes", "512K", "dead_letter_max_size", "1M"),
			func(c *Config) error {
				if c.OpenSearchBulkMaxBytes != 512_000 || c.DeadLetterMaxSize != 1_000_000 {
					return fmt.Errorf("sizes %d %d", c.OpenSearchBulkMaxBytes, c.DeadLetterMaxSize)
				}
				return nil
			}},
		{"plain number durations are seconds", with("flush_timeout", "3", "request_timeout", "1500ms"),
			func(c *Config) error {
				if c.FlushTimeout != 3*time.Second || c.RequestTimeout != 1500*time.Millisecond {
					return fmt.Errorf("durations %v %v", c.FlushTimeout, c.RequestTimeout)
				}
				return nil
			}},
		{"tags and provisioning", with("log_group_tags", "team=platform, env=prod", "log_retention_days", "30", "log_group_class", "infrequent_access"),
			func(c *Config) error {
				if c.LogGroupTags["team"] != "platform" || c.LogGroupTags["env"] != "prod" || c.LogRetentionDays != 30 || c.LogGroupClass != "INFREQUENT_ACCESS" {
					return fmt.Errorf("tags %v retention %d class %s", c.LogGroupTags, c.LogRetentionDays, c.LogGroupClass)
				}
				return nil
			}},
		{"opensearch only needs no group", MapSource{"cloudwatch": "off", "opensearch_endpoint": "http://127.0.0.1:9200", "index_template": "logs-$TAG-%Y.%m.%d"},
			func(c *Config) error {
				if c.CloudWatch || !c.OpenSearch {
					return fmt.Errorf("destinations %v %v", c.CloudWatch, c.OpenSearch)
				}
				return nil
			}},
		{"cloudwatch only needs no endpoint", with("opensearch", "off", "opensearch_endpoint", "<unset>"),
			func(c *Config) error {
				if !c.CloudWatch || c.OpenSearch {
					return fmt.Errorf("destinations %v %v", c.CloudWatch, c.OpenSearch)
				}
				return nil
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(tc.src)
			if err != nil {
				t.Fatalf("unexpected error:\n%v", err)
			}
			if err := tc.check(c); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	cases := []struct {
		name string
		src  MapSource
		want []string // one line per problem, each naming the key
	}{
		{"both off", with("cloudwatch", "off", "opensearch", "no"), []string{"config: cloudwatch = \"off\": at least one of cloudwatch and opensearch must be on"}},
		{"bad boolean", with("auto_create_group", "maybe"), []string{`config: auto_create_group = "maybe": expected on/off, true/false or yes/no`}},
		{"missing group and stream", with("log_group_name", "<unset>", "log_stream_prefix", "<unset>"), []string{
			"config: log_group_name: required when cloudwatch is on",
			"config: log_stream_name: one of log_stream_name or log_stream_prefix is required"}},
		{"missing region", with("region", "<unset>"), []string{"config: region: required for CloudWatch"}},
		{"bad endpoint", with("opensearch_endpoint", "search.example.com:9200"), []string{`config: opensearch_endpoint = "search.example.com:9200": expected an http:// or https:// URL with a host`}},
		{"credentials in endpoint are masked", with("opensearch_endpoint", "https://admin:hunter2@search.example.com"), []string{`config: opensearch_endpoint = "https://admin:xxxxx@search.example.com": credentials in the URL are not allowed`}},
		{"missing endpoint", with("opensearch_endpoint", "<unset>"), []string{"config: opensearch_endpoint: required when opensearch is on"}},
		{"basic auth without password", with("opensearch_auth", "basic", "opensearch_user", "admin"), []string{"config: opensearch_password: required when opensearch_auth is basic"}},
		{"bad auth", with("opensearch_auth", "kerberos"), []string{`config: opensearch_auth = "kerberos": expected one of none, basic, aws_sigv4`}},
		{"bad document", with("opensearch_document", "raw"), []string{`config: opensearch_document = "raw": expected one of cwl, record`}},
		{"bulk over the hard cap", with("opensearch_bulk_max_bytes", "200M"), []string{`config: opensearch_bulk_max_bytes = "200M": expected at most 100000000 bytes`}},
		{"bad size", with("opensearch_bulk_max_bytes", "lots"), []string{`config: opensearch_bulk_max_bytes = "lots": expected a positive size`}},
		{"bad compress", with("opensearch_compress", "zstd"), []string{`config: opensearch_compress = "zstd": expected off or gzip`}},
		{"bad duration", with("flush_timeout", "-1s"), []string{`config: flush_timeout = "-1s": expected a positive duration`}},
		{"bad inflight", with("max_inflight", "0"), []string{`config: max_inflight = "0": expected an integer from 1 to 256`}},
		{"bad retention", with("log_retention_days", "10"), []string{`config: log_retention_days = "10": expected one of the values CloudWatch accepts: 1, 3, 5`}},
		{"bad class", with("log_group_class", "COLD"), []string{`config: log_group_class = "COLD": expected one of STANDARD, INFREQUENT_ACCESS, DELIVERY`}},
		{"bad tags", with("log_group_tags", "team"), []string{`config: log_group_tags = "team": expected key=value pairs`}},
		{"bad role", with("role_arn", "fluent-bit"), []string{`config: role_arn = "fluent-bit": expected an IAM role ARN`}},
		{"missing CA file", with("opensearch_tls_ca_file", "/nonexistent/ca.pem"), []string{`config: opensearch_tls_ca_file = "/nonexistent/ca.pem": cannot read the CA file: no such file or directory`}},
		{"aoss with ids", with("opensearch_endpoint", "https://x.eu-west-1.aoss.amazonaws.com", "opensearch_id", "on"), []string{`config: opensearch_id = "on": must be off for aoss`}},
		{"bad group template", with("log_group_template", "/aws/$(kubernetes['ns']"), []string{`config: log_group_template = "/aws/$(kubernetes['ns']": invalid template: `}},
		{"LOG_GROUP in a group template", with("log_group_template", "/aws/$LOG_GROUP"), []string{`config: log_group_template = "/aws/$LOG_GROUP": invalid template: `}},
		{"index needs a group", MapSource{"cloudwatch": "off", "opensearch_endpoint": "http://127.0.0.1:9200"}, []string{`config: index_template = "cwl$LOG_GROUP-%Y.%m.%d": uses $LOG_GROUP but no log group is configured`}},
		{"every problem at once", with("max_inflight", "x", "opensearch_compress", "lz4", "cloudwatch", "perhaps"), []string{
			`config: cloudwatch = "perhaps"`, `config: opensearch_compress = "lz4"`, `config: max_inflight = "x"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(tc.src)
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("got %d lines, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], w) && !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in:\n%v", w, err)
				}
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Key == "" {
				t.Fatalf("errors.As(*Error) failed on %v", err)
			}
		})
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	src := with("opensearch_auth", "basic", "opensearch_user", "admin", "opensearch_password", "s3cr3t-P4ss",
		"external_id", "ext-s3cr3t", "max_inflight", "bad")
	_, err := Parse(src)
	if err == nil {
		t.Fatal("expected the max_inflight error")
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("secret in error: %v", err)
	}
	src["max_inflight"] = "4"
	c, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, dump := range []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
		if strings.Contains(dump, "s3cr3t-P4ss") {
			t.Fatalf("password in a dump of the config: %s", dump)
		}
	}
	if c.OpenSearchPassword.Reveal() != "s3cr3t-P4ss" {
		t.Fatal("Reveal lost the password")
	}
	if !IsSecret("OpenSearch_Password") || IsSecret("opensearch_user") {
		t.Fatal("IsSecret wrong")
	}
}

func TestKnownKeys(t *testing.T) {
	for _, k := range []string{"region", "Log_Group_Template", "opensearch_bulk_max_bytes", "dead_letter_file"} {
		if !Known(k) {
			t.Errorf("Known(%q) = false", k)
		}
	}
	for _, k := range []string{"log_group", "workers", "opensearch_pasword"} {
		if Known(k) {
			t.Errorf("Known(%q) = true", k)
		}
	}
}

func TestParseSize(t *testing.T) {
	cases := map[string]int64{"0": 0, "1": 1, "5M": 5_000_000, "5m": 5_000_000, "512K": 512_000, "1G": 1_000_000_000, "10KB": 10_000}
	for in, want := range cases {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "M", "1.5M", "99999999999999999999"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("flush_timeout", "20s", "opensearch_bulk_max_bytes", "5M")
	f.Add("log_group_tags", "a=b,c=d", "log_group_template", "$a['b'][0]")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		src := base()
		src[k1] = v1
		src[k2] = v2
		c, err := Parse(src)
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v", c, err)
		}
	})
}
