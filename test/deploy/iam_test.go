package deploy_test

import (
	"encoding/json"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The example account of the overlay and of the AWS documentation.
const sampleAccount = "111122223333"

// policyDoc is an IAM policy document; Action, Resource and Principal values may be a string or
// a list, as IAM allows.
type policyDoc struct {
	Version   string
	Statement []struct {
		Sid       string
		Effect    string
		Action    strings1
		Resource  strings1
		Principal map[string]strings1
		Condition map[string]map[string]strings1
	}
}

// strings1 decodes a JSON string or list of strings.
type strings1 []string

func (s *strings1) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

// loadJSON decodes a repository JSON file strictly (unknown fields are mistakes).
func loadJSON(t *testing.T, rel string, v any) {
	t.Helper()
	f, err := os.Open(repoPath(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

// iamMatch is IAM's wildcard match: * any run of characters (colons included), ? one.
func iamMatch(pattern, s string) bool {
	re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
	return regexp.MustCompile(re).MatchString(s)
}

// fill replaces the documents' placeholders with the sample deployment's values.
func fill(s string) string {
	return strings.NewReplacer(
		"REGION", sampleEnv["AWS_REGION"],
		"ACCOUNT_ID", sampleAccount,
		"CLUSTER_NAME", sampleEnv["CLUSTER_NAME"],
		"DOMAIN_NAME", sampleDomain(),
		"ROLE_NAME", "bys-dev-eks-main-fluent-bit",
	).Replace(s)
}

// sampleDomain is the domain name in the sample endpoint (search-NAME-ID.REGION.es.amazonaws.com).
func sampleDomain() string {
	u, _ := url.Parse(sampleEnv["OPENSEARCH_ENDPOINT"])
	host, _, _ := strings.Cut(u.Hostname(), ".")
	host = strings.TrimPrefix(host, "search-")
	return host[:strings.LastIndexByte(host, '-')]
}

// allowed reports whether the policy allows action on resource.
func (p *policyDoc) allowed(action, resource string) bool {
	for _, s := range p.Statement {
		if s.Effect != "Allow" {
			continue
		}
		if slices.ContainsFunc(s.Action, func(a string) bool { return iamMatch(a, action) }) &&
			slices.ContainsFunc(s.Resource, func(r string) bool { return iamMatch(fill(r), resource) }) {
			return true
		}
	}
	return false
}

func TestIAMMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"arn:aws:logs:r:a:log-group:/x/c.*", "arn:aws:logs:r:a:log-group:/x/c.ns.ct:log-stream:s", true},
		{"arn:aws:logs:r:a:log-group:/x/c.*", "arn:aws:logs:r:a:log-group:/x/c2.ns.ct", false},
		{"logs:Put?ogEvents", "logs:PutLogEvents", true},
		{"a.b", "axb", false}, // regexp characters are literal
	}
	for _, tt := range tests {
		if got := iamMatch(tt.pattern, tt.s); got != tt.want {
			t.Errorf("iamMatch(%q, %q) = %v", tt.pattern, tt.s, got)
		}
	}
}

// TestIAMPolicyCoversTheShippedConfig: the role policy lets the plugin do what the shipped
// config makes it do, on the groups it names, and no more than that cluster's groups.
func TestIAMPolicyCoversTheShippedConfig(t *testing.T) {
	var p policyDoc
	loadJSON(t, "iam/policy.json", &p)
	if p.Version != "2012-10-17" {
		t.Errorf("policy Version %q", p.Version)
	}
	for _, s := range p.Statement {
		for _, a := range s.Action {
			if strings.Contains(a, "*") {
				t.Errorf("statement %s allows the wildcard action %s", s.Sid, a)
			}
		}
	}

	region := sampleEnv["AWS_REGION"]
	logsARN := func(group string) string {
		return "arn:aws:logs:" + region + ":" + sampleAccount + ":log-group:" + group
	}
	at := time.Date(2023, 2, 22, 1, 0, 0, 0, time.UTC)
	for _, rec := range sampleRecords(t) {
		n := expectedNames(rec, sampleEnv, sampleTag, at)
		group, stream := logsARN(n.group), logsARN(n.group)+":log-stream:"+n.stream
		for _, a := range []string{"logs:CreateLogGroup", "logs:PutRetentionPolicy", "logs:TagResource"} {
			if !p.allowed(a, group) {
				t.Errorf("%s is not allowed on %s", a, group)
			}
		}
		for _, a := range []string{"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"} {
			if !p.allowed(a, stream) && !p.allowed(a, group) {
				t.Errorf("%s is not allowed on %s", a, stream)
			}
		}
	}
	// Another cluster's groups are out of reach.
	if other := logsARN("/aws/containerinsights/other-cluster.ns.c"); p.allowed("logs:PutLogEvents", other+":log-stream:s") {
		t.Errorf("the policy reaches %s", other)
	}

	bulk := "arn:aws:es:" + region + ":" + sampleAccount + ":domain/" + sampleDomain() + "/_bulk"
	for _, a := range []string{"es:ESHttpPost", "es:ESHttpPut"} {
		if !p.allowed(a, bulk) {
			t.Errorf("%s is not allowed on %s", a, bulk)
		}
	}
	if p.allowed("es:ESHttpDelete", bulk) {
		t.Error("the policy allows deleting in OpenSearch")
	}
}

// TestTrustPolicies: the IRSA trust names the ServiceAccount the manifests create; the Pod
// Identity trust is the one EKS documents.
func TestTrustPolicies(t *testing.T) {
	d := renderDeployment(t, "k8s/overlays/example")
	ds := d.daemonSets[0]
	subject := "system:serviceaccount:" + ds.Metadata.Namespace + ":" + ds.Spec.Template.Spec.ServiceAccountName

	var irsa policyDoc
	loadJSON(t, "iam/trust-irsa.json", &irsa)
	if len(irsa.Statement) != 1 {
		t.Fatalf("%d statements in trust-irsa.json", len(irsa.Statement))
	}
	s := irsa.Statement[0]
	if !slices.Equal(s.Action, strings1{"sts:AssumeRoleWithWebIdentity"}) || len(s.Principal["Federated"]) != 1 {
		t.Errorf("IRSA trust: action %v, principal %v", s.Action, s.Principal)
	}
	if got := s.Condition["StringEquals"]["OIDC_PROVIDER:sub"]; !slices.Equal(got, strings1{subject}) {
		t.Errorf("IRSA trust subject %v, want %s (the manifests' ServiceAccount)", got, subject)
	}
	if got := s.Condition["StringEquals"]["OIDC_PROVIDER:aud"]; !slices.Equal(got, strings1{"sts.amazonaws.com"}) {
		t.Errorf("IRSA trust audience %v", got)
	}

	var pi policyDoc
	loadJSON(t, "iam/trust-pod-identity.json", &pi)
	if len(pi.Statement) != 1 || !slices.Equal(pi.Statement[0].Principal["Service"], strings1{"pods.eks.amazonaws.com"}) ||
		!slices.Equal(pi.Statement[0].Action, strings1{"sts:AssumeRole", "sts:TagSession"}) {
		t.Errorf("Pod Identity trust: %+v", pi.Statement)
	}
}

// TestOpenSearchRoleCoversTheIndices: the security-plugin role can write every index the
// shipped config names, and the mapping maps an IAM role ARN as a backend role.
func TestOpenSearchRoleCoversTheIndices(t *testing.T) {
	var role struct {
		Description        string   `json:"description"`
		ClusterPermissions []string `json:"cluster_permissions"`
		IndexPermissions   []struct {
			IndexPatterns  []string `json:"index_patterns"`
			AllowedActions []string `json:"allowed_actions"`
		} `json:"index_permissions"`
	}
	loadJSON(t, "iam/opensearch-role.json", &role)
	if !slices.Contains(role.ClusterPermissions, "indices:data/write/bulk") {
		t.Errorf("cluster_permissions %v lack indices:data/write/bulk (the seed's 403)", role.ClusterPermissions)
	}
	at := time.Date(2023, 2, 22, 1, 0, 0, 0, time.UTC)
	for _, rec := range sampleRecords(t) {
		index := expectedNames(rec, sampleEnv, sampleTag, at).index
		ok := false
		for _, ip := range role.IndexPermissions {
			if slices.ContainsFunc(ip.IndexPatterns, func(p string) bool { return iamMatch(p, index) }) &&
				slices.Contains(ip.AllowedActions, "create_index") && slices.Contains(ip.AllowedActions, "write") {
				ok = true
			}
		}
		if !ok {
			t.Errorf("the role cannot create and write %s", index)
		}
	}

	var mapping struct {
		BackendRoles []string `json:"backend_roles"`
	}
	loadJSON(t, "iam/opensearch-role-mapping.json", &mapping)
	arn := regexp.MustCompile(`^arn:aws:iam::\d{12}:role/[\w+=,.@/-]+$`)
	if len(mapping.BackendRoles) != 1 || !arn.MatchString(fill(mapping.BackendRoles[0])) {
		t.Errorf("backend_roles %v: want one IAM role ARN", mapping.BackendRoles)
	}

	// The domain access policy lets the same role make the same requests.
	var domain policyDoc
	loadJSON(t, "iam/opensearch-domain-access-policy.json", &domain)
	bulk := "arn:aws:es:" + sampleEnv["AWS_REGION"] + ":" + sampleAccount + ":domain/" + sampleDomain() + "/_bulk"
	if !domain.allowed("es:ESHttpPost", bulk) {
		t.Error("the domain access policy does not allow es:ESHttpPost on _bulk")
	}
	for _, s := range domain.Statement {
		if got := s.Principal["AWS"]; len(got) != 1 || fill(got[0]) != fill(mapping.BackendRoles[0]) {
			t.Errorf("domain policy principal %v is not the mapped role %s", got, mapping.BackendRoles[0])
		}
	}
}

// TestDeployDocNamesEveryFile: the README section points at every IAM document and the make
// targets, so none is shipped unexplained.
func TestDeployDocNamesEveryFile(t *testing.T) {
	doc := string(readRepo(t, "README.md"))
	entries, err := os.ReadDir(repoPath(t, "iam"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.Contains(doc, "iam/"+e.Name()) {
			t.Errorf("README.md does not mention iam/%s", e.Name())
		}
	}
	for _, want := range []string{"make image", "make demo", "k8s/overlays/example", "backend role", "GOMEMLIMIT", "terminationGracePeriodSeconds"} {
		if !strings.Contains(doc, want) {
			t.Errorf("README.md does not mention %q", want)
		}
	}
}
