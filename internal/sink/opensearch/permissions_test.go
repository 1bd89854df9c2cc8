package opensearch

import (
	"strings"
	"testing"

	"github.com/cwos/cloudwatch-opensearch/internal/config"
)

func TestHint(t *testing.T) {
	sigv4 := &config.Config{OpenSearchAuth: config.AuthSigV4, OpenSearchAWSService: "es", OpenSearchRegion: "ap-northeast-2"}
	aoss := &config.Config{OpenSearchAuth: config.AuthSigV4, OpenSearchAWSService: "aoss", OpenSearchRegion: "us-east-1"}
	basic := &config.Config{OpenSearchAuth: config.AuthBasic, OpenSearchUser: "fluent", OpenSearchPassword: "pw-secret"}
	none := &config.Config{OpenSearchAuth: config.AuthNone}
	seedReason := "no permissions for [indices:data/write/bulk] and User [name=arn:aws:iam::558846430793:role/AmazonLambdaOpensearchRole, backend_roles=[arn:aws:iam::558846430793:role/AmazonLambdaOpensearchRole], requestedTenant=null]"
	tests := []struct {
		name   string
		cfg    *config.Config
		status int
		typ    string
		reason string
		body   string
		kind   string
		want   []string
	}{
		{"seed case 1: role mapping", sigv4, 403, "security_exception", seedReason, "", "role_mapping:indices:data/write/bulk",
			[]string{"map the IAM role arn:aws:iam::558846430793:role/AmazonLambdaOpensearchRole as a backend role", "indices:data/write/bulk", "Mapped users"}},
		{"shard-level action with brackets", basic, 403, "security_exception", "no permissions for [indices:data/write/bulk[s]] and User [name=fluent, backend_roles=[], requestedTenant=null]", "",
			"role_mapping:indices:data/write/bulk[s]", []string{"[indices:data/write/bulk[s]]", "map the internal user fluent"}},
		{"IAM access policy", sigv4, 403, "", "", `{"Message":"User: arn:aws:iam::123456789012:role/fb is not authorized to perform: es:ESHttpPost because no resource-based policy allows the es:ESHttpPost action"}`,
			"iam:es:ESHttpPost", []string{"allow es:ESHttpPost", "arn:aws:es:ap-northeast-2:ACCOUNT:domain/DOMAIN/*", "arn:aws:iam::123456789012:role/fb"}},
		{"bad signature", sigv4, 403, "", "", `{"message":"The request signature we calculated does not match the signature you provided."}`,
			"signature", []string{"opensearch_region (ap-northeast-2)", "opensearch_aws_service (es)"}},
		{"expired token", sigv4, 403, "", "", `{"message":"The security token included in the request is expired"}`, "signature", []string{"credentials"}},
		{"aoss", aoss, 403, "Forbidden", "403 Forbidden", "", "aoss", []string{"aoss:APIAccessAll", "aoss:WriteDocument", "data access policy"}},
		{"plain IAM 403", sigv4, 403, "", "", `{}`, "iam", []string{"es:ESHttpPost"}},
		{"basic 401", basic, 401, "", "", "Unauthorized", "basic", []string{`opensearch_user "fluent"`}},
		{"no auth 401", none, 401, "", "", "Unauthorized", "auth_required", []string{"opensearch_auth basic"}},
		{"no auth 403", none, 403, "security_exception", "forbidden", "", "forbidden", []string{"indices:data/write/bulk"}},
	}
	for _, tt := range tests {
		kind, fix := hint(tt.cfg, tt.status, tt.typ, tt.reason, []byte(tt.body))
		if kind != tt.kind {
			t.Errorf("%s: kind %q, want %q", tt.name, kind, tt.kind)
		}
		for _, w := range tt.want {
			if !strings.Contains(fix, w) {
				t.Errorf("%s: fix %q does not mention %q", tt.name, fix, w)
			}
		}
		if strings.Contains(fix, "pw-secret") {
			t.Errorf("%s: the password leaked into the hint", tt.name)
		}
	}
}
