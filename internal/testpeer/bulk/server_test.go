package bulk

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

func start(t *testing.T, o Options) *Server {
	t.Helper()
	s, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

type bulkResp struct {
	Errors bool                                    `json:"errors"`
	Items  []map[string]map[string]json.RawMessage `json:"items"`
}

func (b bulkResp) status(i int) int {
	for _, it := range b.Items[i] {
		var st int
		json.Unmarshal(it["status"], &st)
		return st
	}
	return 0
}

func (b bulkResp) errType(i int) string {
	for _, it := range b.Items[i] {
		var e struct{ Type string }
		json.Unmarshal(it["error"], &e)
		return e.Type
	}
	return ""
}

func post(t *testing.T, url, body string, hdr ...string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-ndjson")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func decode(t *testing.T, b []byte) bulkResp {
	t.Helper()
	var r bulkResp
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("response %s: %v", b, err)
	}
	return r
}

const two = "{\"create\":{\"_index\":\"logs-a\",\"_id\":\"1\"}}\n{\"msg\":\"one\"}\n{\"create\":{\"_index\":\"logs-b\",\"_id\":\"2\"}}\n{\"msg\":\"two\"}\n"

func TestCreateIsExactlyOnce(t *testing.T) {
	s := start(t, Options{})
	st, b := post(t, s.URL()+"/_bulk", two)
	r := decode(t, b)
	if st != 200 || r.Errors || r.status(0) != 201 || r.status(1) != 201 {
		t.Fatalf("first write: %d %s", st, b)
	}
	st, b = post(t, s.URL()+"/_bulk", two)
	r = decode(t, b)
	if st != 200 || !r.Errors || r.status(0) != 409 || r.errType(1) != "version_conflict_engine_exception" {
		t.Fatalf("resend: %d %s", st, b)
	}
	if s.Count() != 2 || s.Stats().Duplicates != 2 || s.Stats().Created != 2 {
		t.Fatalf("count %d stats %+v", s.Count(), s.Stats())
	}
	if src, ok := s.Doc("logs-b", "2"); !ok || string(src) != `{"msg":"two"}` {
		t.Fatalf("doc = %s %v", src, ok)
	}
	// index without _id: a new document every time (what a resend costs without ids)
	for range 2 {
		post(t, s.URL()+"/logs-c/_bulk", "{\"index\":{}}\n{\"msg\":\"x\"}\n")
	}
	if got := s.Indices()["logs-c"]; got != 2 {
		t.Fatalf("logs-c has %d docs, want 2", got)
	}
	if v := s.Violations(); len(v) != 0 {
		t.Fatalf("violations: %v", v)
	}
}

func TestChecksCatchClientMistakes(t *testing.T) {
	s := start(t, Options{})
	tests := []struct {
		name   string
		body   string
		hdr    []string
		status int
		item   string // error type of item 0 when the request succeeds
		viol   string
	}{
		{"no trailing newline", "{\"index\":{\"_index\":\"a\"}}\n{}", nil, 400, "", "newline"},
		{"uppercase index", "{\"index\":{\"_index\":\"Logs\"}}\n{}\n", nil, 200, "invalid_index_name_exception", "must be lowercase"},
		{"colon in index", "{\"index\":{\"_index\":\"a:b\"}}\n{}\n", nil, 200, "invalid_index_name_exception", "':'"},
		{"duplicate key", "{\"index\":{\"_index\":\"a\"}}\n{\"k\":1,\"k\":2}\n", nil, 200, "mapper_parsing_exception", "Duplicate field 'k'"},
		{"invalid json", "{\"index\":{\"_index\":\"a\"}}\n{\"k\":}\n", nil, 200, "mapper_parsing_exception", "invalid document"},
		{"no content type", two, []string{"Content-Type", ""}, 406, "", "Content-Type"},
		{"blank line", "{\"index\":{\"_index\":\"a\"}}\n{}\n\n", nil, 400, "", "blank line"},
		{"unknown encoding", two, []string{"Content-Encoding", "br"}, 415, "", "Content-Encoding"},
		{"bad gzip", two, []string{"Content-Encoding", "gzip"}, 400, "", "gzip"},
	}
	for _, tt := range tests {
		before := len(s.Violations())
		st, b := post(t, s.URL()+"/_bulk", tt.body, tt.hdr...)
		if st != tt.status {
			t.Errorf("%s: status %d, want %d (%s)", tt.name, st, tt.status, b)
			continue
		}
		if tt.item != "" {
			if r := decode(t, b); r.errType(0) != tt.item || !r.Errors {
				t.Errorf("%s: item error %q, want %q", tt.name, r.errType(0), tt.item)
			}
		}
		v := s.Violations()
		if len(v) != before+1 || !strings.Contains(v[len(v)-1], tt.viol) {
			t.Errorf("%s: violations %q, want one more mentioning %q", tt.name, v[before:], tt.viol)
		}
	}
	if s.Count() != 0 {
		t.Fatalf("stored %d documents from bad requests", s.Count())
	}
}

func TestNonBulkRequestsAreLogged(t *testing.T) {
	s := start(t, Options{PathPrefix: "/os"})
	resp, err := http.Get(s.URL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET / = %d", resp.StatusCode)
	}
	if st, _ := post(t, "http://"+s.Addr()+"/_bulk", two); st != 400 { // outside the prefix
		t.Fatalf("POST /_bulk outside the prefix = %d", st)
	}
	if st, _ := post(t, s.URL()+"/_bulk", two); st != 200 {
		t.Fatalf("POST prefix/_bulk = %d", st)
	}
	got := s.NonBulkRequests()
	if len(got) != 2 || got[0].Method != "GET" || got[0].Path != "/os/" || got[1].Path != "/_bulk" {
		t.Fatalf("non-bulk log = %+v", got)
	}
	if s.Stats().NonBulk != 2 || s.Count() != 2 {
		t.Fatalf("stats %+v count %d", s.Stats(), s.Count())
	}
}

func TestFaults(t *testing.T) {
	s := start(t, Options{Seed: 1, Principal: "arn:aws:iam::558846430793:role/AmazonLambdaOpensearchRole"})

	s.FailRequests(403, 1)
	st, b := post(t, s.URL()+"/_bulk", two)
	reason := "no permissions for [indices:data/write/bulk] and User [name=arn:aws:iam::558846430793:role/AmazonLambdaOpensearchRole, backend_roles=[arn:aws:iam::558846430793:role/AmazonLambdaOpensearchRole], requestedTenant=null]"
	want := `{"error":{"root_cause":[{"type":"security_exception","reason":"` + reason + `"}],"type":"security_exception","reason":"` + reason + `"},"status":403}`
	if st != 403 || string(b) != want {
		t.Fatalf("403 body:\n got %s\nwant %s", b, want)
	}

	s.FailRequests(503, 2)
	for i := range 2 {
		if st, _ := post(t, s.URL()+"/_bulk", two); st != 503 {
			t.Fatalf("request %d: %d, want 503", i, st)
		}
	}
	if st, _ := post(t, s.URL()+"/_bulk", two); st != 200 || s.Count() != 2 {
		t.Fatalf("after the injected 503s: %d, %d docs", st, s.Count())
	}

	s.Reset()
	s.SetItem429Ratio(1)
	_, b = post(t, s.URL()+"/_bulk", two)
	if r := decode(t, b); r.status(0) != 429 || r.errType(1) != "rejected_execution_exception" || s.Count() != 0 {
		t.Fatalf("429 ratio 1: %s", b)
	}
	s.SetItem429Ratio(0.3)
	var body strings.Builder
	for i := range 1000 {
		body.WriteString(`{"create":{"_index":"r","_id":"` + string(rune('a'+i%26)) + strings.Repeat("x", i/26) + `"}}` + "\n{}\n")
	}
	_, b = post(t, s.URL()+"/_bulk", body.String())
	n429 := 0
	r := decode(t, b)
	for i := range r.Items {
		if r.status(i) == 429 {
			n429++
		}
	}
	if n429 < 230 || n429 > 370 || s.Count() != 1000-n429 {
		t.Fatalf("ratio 0.3: %d of 1000 items 429, %d stored", n429, s.Count())
	}

	s.Reset()
	s.RejectDocuments("level", func(index string, src []byte) bool { return bytes.Contains(src, []byte(`"bad"`)) })
	_, b = post(t, s.URL()+"/_bulk", "{\"create\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"level\":\"bad\"}\n{\"create\":{\"_index\":\"a\",\"_id\":\"2\"}}\n{\"level\":1}\n")
	r = decode(t, b)
	if r.status(0) != 400 || r.errType(0) != "mapper_parsing_exception" || r.status(1) != 201 || s.Count() != 1 {
		t.Fatalf("mapper rejection: %s", b)
	}
	if !strings.Contains(string(b), "failed to parse field [level] of type [long] in document with id '1'") {
		t.Fatalf("mapper reason: %s", b)
	}

	s.Reset()
	s.SetMaxBodyBytes(len(two) - 1)
	if st, _ := post(t, s.URL()+"/_bulk", two); st != 413 || s.Stats().TooLarge != 1 {
		t.Fatalf("413: %d %+v", st, s.Stats())
	}

	s.Reset()
	s.SetItemFault(func(it Item) (int, string, string) {
		if it.Index == "logs-b" {
			return 403, "security_exception", "no permissions for [indices:data/write/bulk[s]]"
		}
		return 0, "", ""
	})
	_, b = post(t, s.URL()+"/_bulk", two)
	if r := decode(t, b); r.status(0) != 201 || r.status(1) != 403 {
		t.Fatalf("item fault: %s", b)
	}
}

func TestMissingIndexIs404(t *testing.T) {
	s := start(t, Options{AutoCreateIndex: func(ix string) bool { return ix == "logs-a" }})
	_, b := post(t, s.URL()+"/_bulk", two)
	if r := decode(t, b); r.status(0) != 201 || r.status(1) != 404 || r.errType(1) != "index_not_found_exception" {
		t.Fatalf("%s", b)
	}
}

func TestGzipAndFilterPath(t *testing.T) {
	s := start(t, Options{})
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(two))
	zw.Close()
	st, b := post(t, s.URL()+"/_bulk?filter_path=errors,items.*.error,items.*.status", z.String(), "Content-Encoding", "gzip")
	if st != 200 || string(b) != `{"errors":false,"items":[{"create":{"status":201}},{"create":{"status":201}}]}` {
		t.Fatalf("%d %s", st, b)
	}
	if s.Stats().GzipRequests != 1 || s.Stats().BodyBytes != int64(len(two)) || s.Stats().WireBytes != int64(z.Len()) {
		t.Fatalf("stats %+v", s.Stats())
	}
}

func TestBasicAuth(t *testing.T) {
	s := start(t, Options{Basic: &BasicAuth{User: "fluent", Password: "s3cret!"}})
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/_bulk", strings.NewReader(two))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("fluent", "wrong-password")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	if f := s.AuthFailures(); len(f) != 1 || strings.Contains(f[0], "wrong-password") {
		t.Fatalf("auth failures %q (must name the user, never the password)", f)
	}
	req, _ = http.NewRequest(http.MethodPost, s.URL()+"/_bulk", strings.NewReader(two))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("fluent", "s3cret!")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || s.Count() != 2 {
		t.Fatalf("right password: %d, %d docs", resp.StatusCode, s.Count())
	}
}

// TestSigV4KnownAnswer checks the verifier against the worked example of the AWS Signature
// Version 4 documentation (IAM ListUsers, 2015-08-30).
func TestSigV4KnownAnswer(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08", nil)
	req.RequestURI = "/?Action=ListUsers&Version=2010-05-08"
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.Header.Set("X-Amz-Date", "20150830T123600Z")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")
	creds := SigV4Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", Region: "us-east-1", Service: "iam"}
	now := time.Date(2015, 8, 30, 12, 40, 0, 0, time.UTC)
	if err := VerifySigV4(req, nil, creds, now); err != nil {
		t.Fatalf("documented example does not verify: %v", err)
	}
	bad := creds
	bad.SecretAccessKey = "wrong"
	if VerifySigV4(req, nil, bad, now) == nil {
		t.Fatal("a wrong secret verified")
	}
	if err := VerifySigV4(req, nil, creds, now.Add(20*time.Minute)); err == nil || !strings.Contains(err.Error(), "server clock") {
		t.Fatalf("a stale date verified: %v", err)
	}
}

// TestSigV4OverHTTP signs real requests (gzip body, filter_path query, session token) with
// the SDK's signer on the client side and lets the endpoint verify them with its own code.
func TestSigV4OverHTTP(t *testing.T) {
	creds := SigV4Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret/key+value", SessionToken: "token==", Region: "eu-west-1", Service: "es"}
	s := start(t, Options{SigV4: &creds, PathPrefix: "/search"})

	send := func(body []byte, mutate func(r *http.Request, body *[]byte)) int {
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"/_bulk?filter_path=errors,items.*.status", nil)
		req.Header.Set("Content-Type", "application/x-ndjson")
		req.Header.Set("Content-Encoding", "gzip")
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:])
		req.Header.Set("X-Amz-Content-Sha256", hash)
		req.ContentLength = int64(len(body))
		err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret/key+value", SessionToken: "token=="},
			req, hash, "es", "eu-west-1", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if mutate != nil {
			mutate(req, &body)
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(two))
	zw.Close()
	if st := send(z.Bytes(), nil); st != 200 {
		t.Fatalf("signed request: %d, failures %q", st, s.AuthFailures())
	}
	if s.Stats().SignedRequests != 1 || s.Count() != 2 {
		t.Fatalf("stats %+v", s.Stats())
	}
	tampered := func(r *http.Request, b *[]byte) { c := bytes.Clone(*b); c[len(c)-5] ^= 1; *b = c }
	if st := send(z.Bytes(), tampered); st != 403 {
		t.Fatalf("tampered body: %d", st)
	}
	query := func(r *http.Request, _ *[]byte) { r.URL.RawQuery = "filter_path=errors" }
	if st := send(z.Bytes(), query); st != 403 {
		t.Fatalf("changed query: %d", st)
	}
	f := s.AuthFailures()
	if len(f) != 2 || !strings.Contains(f[0], "X-Amz-Content-Sha256") || !strings.Contains(f[1], "signature mismatch") {
		t.Fatalf("failures %q", f)
	}
}

func TestTLSAndRestart(t *testing.T) {
	s := start(t, Options{TLS: true})
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CertPEM()) {
		t.Fatal("bad PEM")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	do := func() error {
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"/_bulk", strings.NewReader(two))
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := do(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Post(s.URL()+"/_bulk", "application/json", strings.NewReader(two)); err == nil {
		t.Fatal("an untrusting client connected")
	}
	s.Stop()
	tr.CloseIdleConnections()
	if err := do(); err == nil {
		t.Fatal("request succeeded while the endpoint was down")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := do(); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if s.Count() != 2 || s.Stats().Duplicates != 2 { // both items of the resend
		t.Fatalf("count %d stats %+v", s.Count(), s.Stats())
	}
}
