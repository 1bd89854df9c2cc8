package opensearch

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/cwos/cloudwatch-opensearch/internal/config"
)

// ClusterPermissions are the OpenSearch Security (fine-grained access control) cluster
// permissions the plugin's role needs: _bulk is authorized as a cluster action first.
var ClusterPermissions = []string{"indices:data/write/bulk"}

// IndexPermissions are the index permissions the plugin's role needs on the index patterns
// it writes (e.g. cwl-*): the shard-level bulk and index actions, creating the daily index on
// its first document, and dynamic mapping updates for new fields.
var IndexPermissions = []string{
	"indices:data/write/bulk*",
	"indices:data/write/index",
	"indices:admin/create",
	"indices:admin/mapping/put",
}

// IAMActionsES are the IAM actions an OpenSearch Service domain's access policy (or the
// principal's IAM policy) must allow on arn:aws:es:REGION:ACCOUNT:domain/DOMAIN/*: _bulk is an
// HTTP POST.
var IAMActionsES = []string{"es:ESHttpPost"}

// IAMActionsAOSS are the IAM actions an OpenSearch Serverless principal needs on the
// collection (arn:aws:aoss:REGION:ACCOUNT:collection/ID).
var IAMActionsAOSS = []string{"aoss:APIAccessAll"}

// AOSSDataPermissions are the permissions an OpenSearch Serverless data access policy must
// grant the principal on index/COLLECTION/*.
var AOSSDataPermissions = []string{"aoss:CreateIndex", "aoss:WriteDocument", "aoss:UpdateIndex", "aoss:DescribeIndex"}

var (
	reNoPermission = regexp.MustCompile(`no permissions for \[(.*?)\] and User \[name=([^,\]]*)`)
	reIAMDenied    = regexp.MustCompile(`(?i)User: (\S+) is not authorized to perform: (\S+)`)
)

// hint turns a 401/403 answer into the fix an operator has to make. kind keys the
// once-a-minute log line, so each distinct problem is printed on its own.
func hint(cfg *config.Config, status int, errType, reason string, body []byte) (kind, fix string) {
	text := reason + " " + string(body)
	if m := reNoPermission.FindStringSubmatch(text); m != nil {
		who := m[2]
		how := "map the user"
		if strings.HasPrefix(who, "arn:") {
			how = "map the IAM role " + who + " as a backend role"
		} else if who != "" {
			how = "map the internal user " + who
		}
		return "role_mapping:" + m[1], fmt.Sprintf("OpenSearch Security lacks [%s] for %s: %s of a role with cluster permission %s and index permissions %s on the target indices (OpenSearch Dashboards > Security > Roles > the role > Mapped users > Manage mapping)",
			m[1], who, how, strings.Join(ClusterPermissions, ", "), strings.Join(IndexPermissions, ", "))
	}
	if m := reIAMDenied.FindStringSubmatch(text); m != nil {
		action := strings.TrimRight(m[2], ".,\"")
		return "iam:" + action, fmt.Sprintf("IAM denies %s to %s: allow %s on the domain (arn:aws:es:%s:ACCOUNT:domain/DOMAIN/*) in the domain access policy or in the principal's IAM policy",
			action, m[1], action, cfg.OpenSearchRegion)
	}
	lower := strings.ToLower(text)
	switch {
	case strings.Contains(lower, "signature") || strings.Contains(lower, "security token") || strings.Contains(lower, "credential"):
		return "signature", fmt.Sprintf("the endpoint rejected the SigV4 signature or credentials: check the AWS credentials (IRSA, Pod Identity, instance role, opensearch_role_arn), opensearch_region (%s) and opensearch_aws_service (%s)",
			cfg.OpenSearchRegion, cfg.OpenSearchAWSService)
	case status == 401 && cfg.OpenSearchAuth == config.AuthBasic:
		return "basic", fmt.Sprintf("the endpoint refused the basic-auth credentials of opensearch_user %q: check opensearch_user and opensearch_password (an internal user of fine-grained access control)", cfg.OpenSearchUser)
	case status == 401 && cfg.OpenSearchAuth == config.AuthNone:
		return "auth_required", "the endpoint requires authentication: set opensearch_auth basic (with opensearch_user and opensearch_password) or aws_sigv4"
	case cfg.OpenSearchAWSService == "aoss":
		return "aoss", fmt.Sprintf("OpenSearch Serverless denied _bulk: allow %s in IAM and grant %s on index/COLLECTION/* in a data access policy for this principal",
			strings.Join(IAMActionsAOSS, ", "), strings.Join(AOSSDataPermissions, ", "))
	case cfg.OpenSearchAuth == config.AuthSigV4:
		return "iam", fmt.Sprintf("the domain denied _bulk: allow %s for this principal in the domain access policy, and with fine-grained access control map its IAM role as a backend role of a role with %s",
			strings.Join(IAMActionsES, ", "), strings.Join(ClusterPermissions, ", "))
	default:
		return "forbidden", fmt.Sprintf("the endpoint denied _bulk (%d %s): give the user a role with cluster permission %s and index permissions %s",
			status, errType, strings.Join(ClusterPermissions, ", "), strings.Join(IndexPermissions, ", "))
	}
}
