// Package moto runs moto_server, the third-party CloudWatch Logs emulator, for tests, and puts a
// checking, fault-injecting proxy in front of it (Proxy).
//
// moto stores whatever PutLogEvents sends and enforces none of the service's batch rules, so
// tests send through a Proxy, which checks every request against those rules independently of
// the plugin's code and fails the test on any violation.
//
// moto_server (moto 5.2.1) must be installed: Start fails the test when it is missing, it never
// skips. Requests must be SigV4-signed with any keys (Credentials, Env), or moto takes them for
// S3.
//
//	srv := moto.Start(t)
//	px := moto.NewProxy(t, srv.URL)
//	px.Inject(moto.Fault{Action: "PutLogEvents", Kind: moto.Throttle, Times: 3})
//	// point the code under test at px.URL, then read back with srv.Events(t, group, stream)
package moto

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
)

// Test identity: moto accepts any keys; its default account is AccountID.
const (
	Region          = "us-east-1"
	AccessKeyID     = "testing"
	SecretAccessKey = "testing"
	AccountID       = "123456789012"
)

// knownPaths are tried when moto_server is not on PATH (pyenv installs it as a shim).
var knownPaths = []string{"/root/.pyenv/shims/moto_server"}

// Server is a moto_server process listening on 127.0.0.1.
type Server struct {
	URL string // http://127.0.0.1:PORT

	cmd  *exec.Cmd
	out  *tail
	done chan struct{} // closed when the process has exited
}

// Start starts moto_server on a free loopback port, waits until it answers, and stops it (the
// whole process group) when the test ends. It fails the test when moto_server is missing or
// does not come up.
func Start(t testing.TB) *Server {
	t.Helper()
	path, err := exec.LookPath("moto_server")
	if err != nil {
		for _, p := range knownPaths {
			if st, serr := os.Stat(p); serr == nil && !st.IsDir() {
				path, err = p, nil
				break
			}
		}
	}
	if err != nil {
		t.Fatalf("moto_server not found on PATH or in %v: install moto 5.2.1 with its server extra; the CloudWatch tests need it", knownPaths)
	}
	var lastErr error
	for range 3 { // the free port can be taken between choosing and binding it
		s, err := launch(path)
		if err == nil {
			t.Cleanup(func() {
				s.stop()
				if t.Failed() {
					t.Logf("moto_server output (tail):\n%s", s.out.String())
				}
			})
			return s
		}
		lastErr = err
	}
	t.Fatalf("moto_server did not start: %v", lastErr)
	return nil
}

func launch(path string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{URL: "http://127.0.0.1:" + strconv.Itoa(port), out: &tail{max: 64 << 10}, done: make(chan struct{})}
	s.cmd = exec.Command(path, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	s.cmd.Env = serverEnv(os.Environ())
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()

	deadline := time.Now().Add(30 * time.Second)
	hc := &http.Client{Timeout: time.Second}
	for {
		resp, err := hc.Post(s.URL+"/moto-api/reset", "application/json", nil)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("moto_server exited: %s", s.out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("moto_server did not answer on %s within 30s: %s", s.URL, s.out.String())
		}
	}
}

// stop ends the process group started by launch: SIGTERM, then SIGKILL after 5s.
func (s *Server) stop() {
	pid := s.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-s.done
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Reset drops every group, stream and event (POST /moto-api/reset).
func (s *Server) Reset(t testing.TB) {
	t.Helper()
	resp, err := http.Post(s.URL+"/moto-api/reset", "application/json", nil)
	if err != nil {
		t.Fatalf("moto reset: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("moto reset: HTTP %d", resp.StatusCode)
	}
}

// Credentials returns static test credentials.
func Credentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, "")
}

// Env points the SDK's default credential chain at the static test keys and Region, and keeps it
// away from the machine's own AWS files and from the instance metadata service. It uses
// t.Setenv, so the test cannot be parallel.
func Env(t testing.TB) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", SecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", Region)
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", dir+"/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/credentials")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ROLE_ARN", "")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "")
}

// Client returns a CloudWatch Logs client talking to endpoint (a Server's or a Proxy's URL) with
// the static test credentials and no retries.
func Client(endpoint string) *cloudwatchlogs.Client {
	return cloudwatchlogs.New(cloudwatchlogs.Options{
		Region:       Region,
		Credentials:  Credentials(),
		BaseEndpoint: aws.String(endpoint),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   &http.Client{Timeout: 30 * time.Second},
	})
}

// Client returns a client for this server, bypassing any proxy.
func (s *Server) Client() *cloudwatchlogs.Client { return Client(s.URL) }

// Events reads every event of a stream from the head, in the order GetLogEvents returns them
// (by timestamp, then by arrival).
func (s *Server) Events(t testing.TB, group, stream string) []types.OutputLogEvent {
	t.Helper()
	evs, err := ReadStream(context.Background(), s.Client(), group, stream)
	if err != nil {
		t.Fatalf("read %s/%s: %v", group, stream, err)
	}
	return evs
}

// ReadStream pages through GetLogEvents from the head until the forward token stops moving.
func ReadStream(ctx context.Context, c *cloudwatchlogs.Client, group, stream string) ([]types.OutputLogEvent, error) {
	var all []types.OutputLogEvent
	var token *string
	for {
		out, err := c.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{
			LogGroupName: &group, LogStreamName: &stream, StartFromHead: aws.Bool(true),
			Limit: aws.Int32(10_000), NextToken: token,
		})
		if err != nil {
			return nil, err
		}
		all = append(all, out.Events...)
		if len(out.Events) == 0 || out.NextForwardToken == nil || (token != nil && *token == *out.NextForwardToken) {
			return all, nil
		}
		token = out.NextForwardToken
	}
}

// ErrMissing is returned by lookups of a group that does not exist.
var ErrMissing = errors.New("moto: log group not found")

// Group describes a log group as moto stores it.
type Group struct {
	Name          string
	RetentionDays int32
	KMSKeyID      string
	Tags          map[string]string
}

// Group returns a log group's retention, KMS key and tags.
func (s *Server) Group(t testing.TB, name string) (Group, error) {
	t.Helper()
	ctx := context.Background()
	c := s.Client()
	out, err := c.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: &name})
	if err != nil {
		return Group{}, err
	}
	for _, g := range out.LogGroups {
		if aws.ToString(g.LogGroupName) != name {
			continue
		}
		res := Group{Name: name, RetentionDays: aws.ToInt32(g.RetentionInDays), KMSKeyID: aws.ToString(g.KmsKeyId)}
		tags, err := c.ListTagsForResource(ctx, &cloudwatchlogs.ListTagsForResourceInput{ResourceArn: aws.String(trimStar(aws.ToString(g.Arn)))})
		if err != nil {
			return Group{}, err
		}
		res.Tags = tags.Tags
		return res, nil
	}
	return Group{}, ErrMissing
}

func trimStar(arn string) string {
	if len(arn) > 2 && arn[len(arn)-2:] == ":*" {
		return arn[:len(arn)-2]
	}
	return arn
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (w *tail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if over := len(w.buf) - w.max; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	return len(p), nil
}

func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}

// serverEnv is the environment moto_server runs with: the test's, without any AWS_* variable.
// moto needs none, and an empty one set by Env (AWS_PROFILE="") makes it answer every request
// with HTTP 500.
func serverEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "AWS_") {
			out = append(out, kv)
		}
	}
	return out
}
