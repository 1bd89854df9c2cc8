package bulk

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// SigV4Credentials are the static keys the endpoint expects requests to be signed with, and
// the scope it expects (region and service, "es" or "aoss").
type SigV4Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string // when set, X-Amz-Security-Token must carry it and be signed
	Region          string
	Service         string
}

// MaxClockSkew is how far X-Amz-Date may be from the endpoint's clock (AWS allows 15 minutes).
const MaxClockSkew = 15 * time.Minute

const amzDateLayout = "20060102T150405Z"

// VerifySigV4 recomputes the AWS Signature Version 4 of r from scratch, following the
// documented canonical request (method, doubly URI-encoded path, sorted query, signed headers,
// payload hash) over body, the exact bytes received (still gzip-compressed when they were
// sent so), and compares it with the Authorization header. It uses no AWS SDK code, so a
// canonicalization mistake in the plugin's signer cannot be shared by the check.
func VerifySigV4(r *http.Request, body []byte, want SigV4Credentials, now time.Time) error {
	auth := r.Header.Get("Authorization")
	const algo = "AWS4-HMAC-SHA256"
	rest, ok := strings.CutPrefix(auth, algo+" ")
	if !ok {
		return errors.New("missing AWS4-HMAC-SHA256 Authorization header")
	}
	var cred, signed, sig string
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			signed = v
		case "Signature":
			sig = v
		}
	}
	if cred == "" || signed == "" || sig == "" {
		return fmt.Errorf("malformed Authorization header: %q", redactAuth(auth))
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return fmt.Errorf("malformed credential scope %q", cred)
	}
	if scope[0] != want.AccessKeyID {
		return fmt.Errorf("unknown access key %q", scope[0])
	}
	if scope[2] != want.Region {
		return fmt.Errorf("credential scope region %q, want %q", scope[2], want.Region)
	}
	if scope[3] != want.Service {
		return fmt.Errorf("credential scope service %q, want %q", scope[3], want.Service)
	}
	amzDate := r.Header.Get("X-Amz-Date")
	t, err := time.Parse(amzDateLayout, amzDate)
	if err != nil {
		return fmt.Errorf("bad X-Amz-Date %q", amzDate)
	}
	if t.Format("20060102") != scope[1] {
		return fmt.Errorf("X-Amz-Date %s does not match the credential date %s", amzDate, scope[1])
	}
	if d := now.Sub(t); d > MaxClockSkew || d < -MaxClockSkew {
		return fmt.Errorf("X-Amz-Date %s is %s away from the server clock", amzDate, d)
	}

	names := strings.Split(signed, ";")
	if !sort.StringsAreSorted(names) {
		return fmt.Errorf("SignedHeaders %q are not sorted", signed)
	}
	has := map[string]bool{}
	for _, n := range names {
		if n == "" || n != strings.ToLower(n) {
			return fmt.Errorf("SignedHeaders %q: names must be lowercase and non-empty", signed)
		}
		has[n] = true
	}
	for _, must := range []string{"host", "x-amz-date"} {
		if !has[must] {
			return fmt.Errorf("SignedHeaders %q do not include %s", signed, must)
		}
	}
	if want.SessionToken != "" {
		if r.Header.Get("X-Amz-Security-Token") != want.SessionToken {
			return errors.New("X-Amz-Security-Token missing or wrong")
		}
		if !has["x-amz-security-token"] {
			return errors.New("X-Amz-Security-Token is not signed")
		}
	}

	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != payloadHash {
		return fmt.Errorf("X-Amz-Content-Sha256 %s does not match the received body (%s, %d bytes)", h, payloadHash, len(body))
	} else if h == "" && want.Service == "aoss" {
		return errors.New("aoss requires the X-Amz-Content-Sha256 header")
	}

	var canon strings.Builder
	canon.WriteString(r.Method)
	canon.WriteByte('\n')
	canon.WriteString(canonicalURI(r))
	canon.WriteByte('\n')
	q, err := canonicalQuery(r.URL.RawQuery)
	if err != nil {
		return err
	}
	canon.WriteString(q)
	canon.WriteByte('\n')
	for _, n := range names {
		v, ok := headerValue(r, n)
		if !ok {
			return fmt.Errorf("signed header %s is not in the request", n)
		}
		canon.WriteString(n)
		canon.WriteByte(':')
		canon.WriteString(v)
		canon.WriteByte('\n')
	}
	canon.WriteByte('\n')
	canon.WriteString(signed)
	canon.WriteByte('\n')
	canon.WriteString(payloadHash)

	creq := sha256.Sum256([]byte(canon.String()))
	sts := algo + "\n" + amzDate + "\n" + strings.Join(scope[1:], "/") + "\n" + hex.EncodeToString(creq[:])
	key := hmacSHA256([]byte("AWS4"+want.SecretAccessKey), scope[1])
	key = hmacSHA256(key, scope[2])
	key = hmacSHA256(key, scope[3])
	key = hmacSHA256(key, "aws4_request")
	expect := hex.EncodeToString(hmacSHA256(key, sts))
	if !hmac.Equal([]byte(expect), []byte(sig)) {
		return fmt.Errorf("signature mismatch: the canonical request was\n%s", canon.String())
	}
	return nil
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// canonicalURI is the path as it went over the wire, normalized (no empty or dot segments,
// per RFC 3986) and URI-encoded once more: services other than S3 sign the path encoded twice.
func canonicalURI(r *http.Request) string {
	raw := r.URL.EscapedPath()
	if r.RequestURI != "" && !strings.HasPrefix(r.RequestURI, "http") {
		raw, _, _ = strings.Cut(r.RequestURI, "?")
	}
	if raw == "" {
		return "/"
	}
	var segs []string
	for _, s := range strings.Split(raw, "/") {
		switch s {
		case "", ".":
		case "..":
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			}
		default:
			segs = append(segs, awsEscape(s))
		}
	}
	out := "/" + strings.Join(segs, "/")
	if strings.HasSuffix(raw, "/") && len(segs) > 0 {
		out += "/"
	}
	return out
}

// canonicalQuery decodes every name=value pair of the raw query, encodes both with the AWS
// rule (only A-Z a-z 0-9 - _ . ~ unencoded, space as %20) and sorts by name, then value.
func canonicalQuery(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	type kv struct{ k, v string }
	var pairs []kv
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			return "", fmt.Errorf("bad query name %q", k)
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			return "", fmt.Errorf("bad query value %q", v)
		}
		pairs = append(pairs, kv{awsEscape(dk), awsEscape(dv)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String(), nil
}

// awsEscape percent-encodes every byte except the unreserved characters, with uppercase hex.
func awsEscape(s string) string {
	const hexUpper = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&0xf])
	}
	return b.String()
}

// headerValue is the canonical value of a signed header: values trimmed, inner runs of spaces
// collapsed, several values joined with commas. Host and Content-Length come from the request
// line and framing, where Go's server keeps them.
func headerValue(r *http.Request, name string) (string, bool) {
	switch name {
	case "host":
		return r.Host, r.Host != ""
	case "content-length":
		if v := r.Header.Get("Content-Length"); v != "" {
			return strings.TrimSpace(v), true
		}
		if r.ContentLength >= 0 {
			return strconv.FormatInt(r.ContentLength, 10), true
		}
		return "", false
	}
	vals, ok := r.Header[http.CanonicalHeaderKey(name)]
	if !ok {
		return "", false
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(out, ","), true
}

// redactAuth keeps the algorithm and credential scope of an Authorization header and hides the
// signature, so a failure report never carries material an attacker could replay.
func redactAuth(s string) string {
	if i := strings.Index(s, "Signature="); i >= 0 {
		return s[:i] + "Signature=<redacted>"
	}
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
