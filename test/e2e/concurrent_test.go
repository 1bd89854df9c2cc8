package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
	"github.com/cwos/cloudwatch-opensearch/internal/config"
	"github.com/cwos/cloudwatch-opensearch/internal/delivery"
	"github.com/cwos/cloudwatch-opensearch/internal/testpeer/logbuf"
	"github.com/cwos/cloudwatch-opensearch/internal/testpeer/moto"
)

// TestConcurrentInstances drives three instances of internal/delivery in one process, with the
// real CloudWatch and OpenSearch destinations against the peers, each flushing from 4
// goroutines at once (Fluent Bit's `workers 4`), all twelve goroutines together. Run it with
// -race (the Makefile does): the flush path, the ledger, the destinations and the SDK clients
// must be race-free, and the instances must share no state: each one's records land once,
// under its own names only. After Close and the peers' shutdown no goroutine may be left.
func TestConcurrentInstances(t *testing.T) {
	awsEnv(t) // the destinations take the static test keys from the environment
	before := runtime.NumGoroutine()
	const instances, workers, nChunks, perChunk = 3, 4, 12, 200
	var flushes, retries int
	var cw, osd destCount
	var rejected [2]int64 // cloudwatch, opensearch, over the instances
	t.Run("flush", func(t *testing.T) {
		p := startPeers(t, peerOptions{Seed: 10})
		recs := k8sRecords(10, nChunks*perChunk, 0, chunkgen.Options{Namespaces: 4, Containers: 2, Start: recentDays(1), Days: 1})
		cs := chunks(recs, perChunk)
		ins := make([]*delivery.Instance, instances)
		logs := make([]*logbuf.Buffer, instances)
		for i := range ins {
			logs[i] = &logbuf.Buffer{}
			src := config.MapSource{
				"region":              moto.Region,
				"log_group_name":      fmt.Sprintf("/race/%d/fallback", i),
				"log_group_template":  fmt.Sprintf("/race/%d/$kubernetes['namespace_name']", i),
				"log_stream_template": "$kubernetes['pod_name']",
				"log_stream_prefix":   "race-",
				"auto_create_group":   "on",
				"cloudwatch_endpoint": p.cwURL,
				"opensearch_endpoint": p.bulk.URL(),
				"opensearch_auth":     "basic",
				"opensearch_user":     osUser,
				"opensearch_password": osPassword,
				"index_template":      fmt.Sprintf("race-%d-%%Y.%%m.%%d", i),
				"flush_timeout":       "10s",
				"request_timeout":     "10s",
				"max_inflight":        "8",
				"exit_grace":          "5s",
			}
			in, err := delivery.New(context.Background(), src, delivery.Options{Name: fmt.Sprint(i), Log: logs[i]})
			if err != nil {
				t.Fatalf("instance %d: %v", i, err)
			}
			ins[i] = in
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, in := range ins {
			for w := range workers {
				wg.Go(func() {
					<-start
					for c := w; c < len(cs); c += workers {
						// Fluent Bit resends a chunk answered FLB_RETRY; under -race on a busy
						// machine a flush may run out of time.
						rc, tries := delivery.Retry, 0
						for ; rc == delivery.Retry && tries < 3; tries++ {
							rc = in.Flush(cs[c], "kube.race")
						}
						mu.Lock()
						flushes++
						retries += tries - 1
						mu.Unlock()
						if rc != delivery.OK {
							t.Errorf("instance %d chunk %d: rc=%d after %d tries", i, c, rc, tries)
						}
					}
				})
			}
		}
		close(start)
		wg.Wait()
		for _, in := range ins {
			wg.Go(in.Close)
		}
		wg.Wait()
		// Closed instances leave nothing running, even with the peers still up: no goroutine in
		// the plugin's or its SDKs' code, and no server connection the plugin kept open (only
		// the plugin connects to the proxy and the _bulk endpoint).
		if n, dump := settle(func(stack string) bool {
			return strings.Contains(stack, "net/http.(*conn).serve") || strings.Contains(stack, "aws-sdk-go-v2") ||
				strings.Contains(stack, "opensearch-go") || pluginFrame.MatchString(stack)
		}); n > 0 {
			t.Errorf("%d goroutines of the plugin (or connections it kept) are left after Close:\n%s", n, dump)
		}
		for i, in := range ins {
			rejected[0] += in.Reporter().Count("rejected_cloudwatch")
			rejected[1] += in.Reporter().Count("rejected_opensearch")
			if n := in.Reporter().Count("records_delivered"); n != int64(len(recs)) {
				t.Errorf("instance %d: records_delivered=%d, want %d", i, n, len(recs))
			}
			if out := logs[i].String(); strings.Contains(out, "panic") || strings.Contains(out, "not fully delivered") {
				t.Errorf("instance %d log:\n%s", i, out)
			}
		}
		cw, osd = outcome(t, p, expect(recs, func(r *record) []place {
			out := make([]place, instances)
			for i := range out {
				out[i] = place{Group: fmt.Sprintf("/race/%d/%s", i, r.Namespace), Stream: r.Pod, Index: fmt.Sprintf("race-%d-%s", i, r.Time.UTC().Format("2006.01.02"))}
			}
			return out
		}))
	})
	// The instances are closed and the peers stopped: every goroutine the test started ended.
	deadline := time.Now().Add(10 * time.Second)
	after := runtime.NumGoroutine()
	for after > before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		after = runtime.NumGoroutine()
	}
	if after > before {
		var b bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
		t.Errorf("%d goroutines before, %d ten seconds after Close and the peers' shutdown: leaked\n%s", before, after, b.String())
	}
	summarize(t, "records in=%d x %d instances, %d goroutines each; cloudwatch %s; opensearch %s; duplicates cw=%d os=%d; rejected cw=%d os=%d; flushes=%d resends=%d; goroutines %d before, %d after",
		nChunks*perChunk, instances, workers, cw, osd, cw.Dups, osd.Dups, rejected[0], rejected[1], flushes, retries, before, after)
}

// pluginFrame matches a stack frame in the plugin's own packages (not the test peers').
var pluginFrame = regexp.MustCompile(`cloudwatch-opensearch/internal/(delivery|sink|ledger|retry|event|template|report|awsauth|deadletter)`)

// settle waits up to 10 seconds for no goroutine's stack to match, and returns how many still
// match and their stacks.
func settle(match func(stack string) bool) (int, string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		var b bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
		var left []string
		for g := range strings.SplitSeq(b.String(), "\n\n") {
			if match(g) {
				left = append(left, g)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return len(left), strings.Join(left, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// awsEnv points the SDK's default credential chain at moto's static test keys and region, away
// from the machine's AWS files and the instance metadata service. Unlike moto.Env it unsets the
// variables it clears: moto_server inherits the environment, and botocore in it fails every
// request with a 500 when AWS_PROFILE is set but empty (moto.Env sets it so).
func awsEnv(t *testing.T) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           moto.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":       moto.SecretAccessKey,
		"AWS_REGION":                  moto.Region,
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
	} {
		t.Setenv(k, v)
	}
	for _, k := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_DEFAULT_REGION"} {
		t.Setenv(k, "") // restored at the end of the test
		os.Unsetenv(k)
	}
}
