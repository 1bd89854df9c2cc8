package cloudwatch

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/cwos/cloudwatch-opensearch/internal/config"
	"github.com/cwos/cloudwatch-opensearch/internal/sink"
	"github.com/cwos/cloudwatch-opensearch/internal/testpeer/moto"
)

// TestDeliver100k sends 100,000 records over 50 streams in 5 groups that do not exist yet, in
// ten 10,000-record chunks from two concurrent "workers", through the checking proxy, and reads
// every stream back.
func TestDeliver100k(t *testing.T) {
	srv := moto.Start(t)
	const kms = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	h := newHarness(t, srv, func(c *config.Config) {
		c.LogRetentionDays = 7
		c.LogGroupClass = "INFREQUENT_ACCESS"
		c.LogGroupTags = map[string]string{"team": "sre", "env": "test"}
		c.LogGroupKMSKeyID = kms
	})
	g := gen{groups: 5, streams: 10, size: 200, base: time.Now().Add(-30 * time.Minute)}
	const chunks, per = 10, 10_000
	all := g.records(0, chunks*per)
	rec := newRecorder()

	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, chunks)
	work := make(chan int)
	for range 2 {
		wg.Go(func() {
			for c := range work {
				errs[c] = h.deliver(t, all[c*per:(c+1)*per], rec)
			}
		})
	}
	for c := range chunks {
		work <- c
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	for c, err := range errs {
		if err != nil {
			t.Fatalf("chunk %d: %v", c, err)
		}
	}
	rec.check(t)
	if len(rec.accepted) != len(all) || len(rec.rejected) != 0 {
		t.Fatalf("accepted %d, rejected %d of %d", len(rec.accepted), len(rec.rejected), len(all))
	}
	lost, dup := readBack(t, srv, all)
	t.Logf("100,000 records in %v (%.0f records/s); %d PutLogEvents (%d failed); lost %d, duplicated %d",
		elapsed, float64(len(all))/elapsed.Seconds(), h.px.Count("PutLogEvents"), h.px.Failed("PutLogEvents"), lost, dup)
	if lost != 0 || dup != 0 {
		t.Fatalf("lost %d, duplicated %d", lost, dup)
	}
	// One request per stream per chunk: each stream's 200 records fit one batch.
	if ok := h.px.Count("PutLogEvents") - h.px.Failed("PutLogEvents"); ok != chunks*50 {
		t.Fatalf("%d successful PutLogEvents, want %d", ok, chunks*50)
	}
	if n := h.px.Count("DescribeLogStreams") + h.px.Count("DescribeLogGroups"); n != 0 {
		t.Fatalf("%d Describe calls", n)
	}
	if got := h.rep.Count("cloudwatch_groups_created"); got != 5 {
		t.Fatalf("groups created %d, want 5", got)
	}
	if got := h.rep.Count("cloudwatch_streams_created"); got != 50 {
		t.Fatalf("streams created %d, want 50", got)
	}
	for i := range 5 {
		name, _ := g.names(i)
		grp, err := srv.Group(t, name)
		if err != nil {
			t.Fatal(err)
		}
		if grp.RetentionDays != 7 || grp.KMSKeyID != kms || grp.Tags["team"] != "sre" || grp.Tags["env"] != "test" {
			t.Fatalf("group %+v: want retention 7, the KMS key and both tags", grp)
		}
	}
	for _, b := range h.px.Bodies("CreateLogGroup") {
		if !strings.Contains(string(b), `"logGroupClass":"INFREQUENT_ACCESS"`) {
			t.Fatalf("CreateLogGroup without the class: %s", b)
		}
	}
	if strings.Contains(h.log.String(), "no longer exists") || strings.Contains(h.log.String(), "error]") {
		t.Fatalf("false alarms in the log:\n%s", h.log.String())
	}
	if !strings.Contains(h.log.String(), `created log group "/eks/demo/ns-0" (retention 7 days, class INFREQUENT_ACCESS, tags env,team, KMS key`) {
		t.Fatalf("no creation line in the log:\n%s", h.log.String())
	}
}

// faultCase runs one fault scenario against a fresh moto state and a fresh destination.
type faultCase struct {
	name   string
	mutate func(*config.Config)
	run    func(t *testing.T, h *harness)
}

func TestFaults(t *testing.T) {
	srv := moto.Start(t)
	g := gen{groups: 2, streams: 2, size: 120}
	cases := []faultCase{
		{"throttling burst", nil, func(t *testing.T, h *harness) {
			recs := g.at(0, 400)
			h.px.Inject(moto.Fault{Action: "PutLogEvents", Kind: moto.Throttle, Times: 6})
			rec := newRecorder()
			if err := h.deliver(t, recs, rec); err != nil {
				t.Fatal(err)
			}
			expectExactlyOnce(t, h, rec, recs, 0)
			if got := h.rep.Count("cloudwatch_throttled"); got != 6 {
				t.Fatalf("throttled %d, want 6", got)
			}
		}},
		{"500 and 503", nil, func(t *testing.T, h *harness) {
			recs := g.at(0, 400)
			h.px.Inject(moto.Fault{Action: "PutLogEvents", Kind: moto.ServerError, Times: 3})
			h.px.Inject(moto.Fault{Action: "PutLogEvents", Kind: moto.Unavailable, Times: 3})
			h.px.Inject(moto.Fault{Action: "CreateLogGroup", Kind: moto.ServerError, Times: 1})
			rec := newRecorder()
			if err := h.deliver(t, recs, rec); err != nil {
				t.Fatal(err)
			}
			expectExactlyOnce(t, h, rec, recs, 0)
			if got := h.rep.Count("cloudwatch_retries"); got < 6 {
				t.Fatalf("retries %d, want >= 6", got)
			}
		}},
		{"connection reset before forwarding", nil, func(t *testing.T, h *harness) {
			warm(t, h, g)
			recs := g.at(1000, 400)
			h.px.Inject(moto.Fault{Action: "PutLogEvents", Kind: moto.ResetBeforeForward, Times: 3})
			rec := newRecorder()
			if err := h.deliver(t, recs, rec); err != nil {
				t.Fatal(err)
			}
			expectExactlyOnce(t, h, rec, recs, 0)
		}},
		{"connection reset after forwarding", nil, func(t *testing.T, h *harness) {
			warm(t, h, g)
			recs := g.at(1000, 400) // 100 per stream, one batch each
			h.px.Inject(moto.Fault{Action: "PutLogEvents", Kind: moto.ResetAfterForward, Times: 1})
			rec := newRecorder()
			if err := h.deliver(t, recs, rec); err != nil {
				t.Fatal(err)
			}
			// CloudWatch stored the batch whose response was lost, and the retry stored it
			// again: at least once, the duplicate counted here by reading back.
			expectExactlyOnce(t, h, rec, recs, 100)
		}},
		{"group deleted mid-run", func(c *config.Config) { c.LogRetentionDays = 3 }, func(t *testing.T, h *harness) {
			first := g.at(0, 400)
			rec := newRecorder()
			if err := h.deliver(t, first, rec); err != nil {
				t.Fatal(err)
			}
			victim, _ := g.names(0)
			if _, err := h.srv.Client().DeleteLogGroup(context.Background(), &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: &victim}); err != nil {
				t.Fatal(err)
			}
			second := g.at(1000, 400)
			if err := h.deliver(t, second, rec); err != nil {
				t.Fatal(err)
			}
			rec.check(t)
			// The first round's records of the deleted group went with it (the operator's
			// deletion); every record sent after it is there exactly once.
			var want []sink.Record
			for _, r := range append(first, second...) {
				if r.Group != victim || r.Seq >= 1000 {
					want = append(want, r)
				}
			}
			lost, dup := readBack(t, h.srv, want)
			t.Logf("lost %d, duplicated %d", lost, dup)
			if lost != 0 || dup != 0 || len(rec.accepted) != 800 {
				t.Fatalf("lost %d, duplicated %d, accepted %d", lost, dup, len(rec.accepted))
			}
			grp, err := h.srv.Group(t, victim)
			if err != nil || grp.RetentionDays != 3 {
				t.Fatalf("recreated group %+v, %v: want retention 3", grp, err)
			}
			if !strings.Contains(h.log.String(), "no longer exists") {
				t.Fatalf("the deletion was not reported:\n%s", h.log.String())
			}
		}},
		{"AccessDenied keeps the data", nil, func(t *testing.T, h *harness) {
			recs := g.at(0, 400)
			denied, _ := g.names(0)
			h.px.Inject(moto.Fault{Action: "PutLogEvents", Group: denied, Kind: moto.AccessDenied, Times: -1})
			rec := newRecorder()
			err := h.deliver(t, recs, rec)
			var perm *sink.PermissionError
			if !errors.As(err, &perm) {
				t.Fatalf("err = %v, want a PermissionError", err)
			}
			if perm.Destination != Name || !strings.HasPrefix(perm.Target, denied+"/") ||
				!strings.Contains(perm.Hint, "allow logs:PutLogEvents on arn:aws:logs:us-east-1:123456789012:log-group:"+denied+":log-stream:") {
				t.Fatalf("PermissionError %+v does not name the action and ARN", perm)
			}
			pending := rec.pending(recs)
			for _, r := range pending {
				if r.Group != denied {
					t.Fatalf("record of an allowed group left pending: %+v", r.Seq)
				}
			}
			if len(pending) != 200 || len(rec.rejected) != 0 {
				t.Fatalf("%d pending, %d rejected; want the denied group's 200 kept, none rejected", len(pending), len(rec.rejected))
			}
			// Fluent Bit retries the chunk: still denied, and the log does not repeat itself.
			if err := h.deliver(t, pending, rec); !errors.As(err, &perm) {
				t.Fatalf("second try: %v", err)
			}
			if n := strings.Count(h.log.String(), "logs:PutLogEvents for"); n != 2 { // one per denied stream
				t.Fatalf("%d denial lines, want 2 (one per stream per minute):\n%s", n, h.log.String())
			}
			// The role is fixed: the retry delivers only what was pending.
			h.px.Clear()
			if err := h.deliver(t, rec.pending(recs), rec); err != nil {
				t.Fatal(err)
			}
			expectExactlyOnce(t, h, rec, recs, 0)
		}},
		{"ExpiredToken", nil, func(t *testing.T, h *harness) {
			recs := g.at(0, 40)
			h.px.Inject(moto.Fault{Action: "PutLogEvents", Kind: moto.ExpiredToken, Times: -1})
			rec := newRecorder()
			var perm *sink.PermissionError
			if err := h.deliver(t, recs, rec); !errors.As(err, &perm) || !strings.Contains(perm.Hint, "expired") {
				t.Fatalf("err = %v, want a PermissionError about expired credentials", err)
			}
			if len(rec.accepted)+len(rec.rejected) != 0 {
				t.Fatal("records settled although every request failed")
			}
			if n := strings.Count(h.log.String(), "credentials expired (calling"); n != 1 {
				t.Fatalf("%d lines about expired credentials, want 1 for all streams", n)
			}
		}},
		{"creation off: missing group", func(c *config.Config) { c.AutoCreateGroup = false }, func(t *testing.T, h *harness) {
			recs := g.at(0, 40)
			rec := newRecorder()
			for range 2 {
				var perm *sink.PermissionError
				if err := h.deliver(t, rec.pending(recs), rec); !errors.As(err, &perm) || !strings.Contains(perm.Hint, "auto_create_group") {
					t.Fatalf("err = %v, want a PermissionError about auto_create_group", err)
				}
			}
			if n := strings.Count(h.log.String(), "does not exist and auto_create_group is off"); n != 2 {
				t.Fatalf("%d lines about missing groups, want 2 (one per group per minute):\n%s", n, h.log.String())
			}
			if h.px.Count("CreateLogGroup") != 0 {
				t.Fatal("created a group with auto_create_group off")
			}
			for i := range 2 {
				name, _ := g.names(i)
				if _, err := h.srv.Client().CreateLogGroup(context.Background(), &cloudwatchlogs.CreateLogGroupInput{LogGroupName: &name}); err != nil {
					t.Fatal(err)
				}
			}
			if err := h.deliver(t, rec.pending(recs), rec); err != nil {
				t.Fatal(err)
			}
			expectExactlyOnce(t, h, rec, recs, 0)
		}},
		{"creation off: missing stream", func(c *config.Config) { c.AutoCreateStream = false }, func(t *testing.T, h *harness) {
			recs := g.at(0, 40)
			for i := range 2 {
				name, _ := g.names(i)
				if _, err := h.srv.Client().CreateLogGroup(context.Background(), &cloudwatchlogs.CreateLogGroupInput{LogGroupName: &name}); err != nil {
					t.Fatal(err)
				}
			}
			rec := newRecorder()
			var perm *sink.PermissionError
			if err := h.deliver(t, recs, rec); !errors.As(err, &perm) || !strings.Contains(perm.Hint, "auto_create_stream") {
				t.Fatalf("err = %v, want a PermissionError about auto_create_stream", err)
			}
			if h.px.Count("CreateLogStream") != 0 || len(rec.accepted) != 0 {
				t.Fatal("created a stream or accepted records with auto_create_stream off")
			}
		}},
		{"RejectedLogEventsInfo", nil, func(t *testing.T, h *harness) {
			one := gen{groups: 1, streams: 1, size: 80, base: time.Now().Add(-time.Hour)}
			warm(t, h, one)
			recs := one.at(1000, 10)
			h.px.Inject(moto.Fault{Action: "PutLogEvents", Kind: moto.Respond, Status: 200,
				Body: `{"rejectedLogEventsInfo":{"expiredLogEventEndIndex":1,"tooOldLogEventEndIndex":2,"tooNewLogEventStartIndex":8}}`})
			rec := newRecorder()
			if err := h.deliver(t, recs, rec); err != nil {
				t.Fatal(err)
			}
			rec.check(t)
			sorted := sortedByTime(recs)
			want := map[int]string{sorted[0].Seq: "expired", sorted[1].Seq: "tooOld", sorted[8].Seq: "tooNew", sorted[9].Seq: "tooNew"}
			for seq, typ := range want {
				w := rec.rejected[seq]
				if len(w) != 1 || w[0].Type != typ || !strings.Contains(w[0].Reason, "event time") || w[0].Target != sorted[0].Group+"/"+sorted[0].Stream {
					t.Fatalf("seq %d: rejections %+v, want one %s naming the target and the event time", seq, w, typ)
				}
			}
			if len(rec.accepted) != 6 || len(rec.rejected) != 4 {
				t.Fatalf("accepted %d rejected %d, want 6 and 4", len(rec.accepted), len(rec.rejected))
			}
			if h.rep.Count("cloudwatch_too_new") != 2 || h.rep.Count("cloudwatch_too_old") != 1 || h.rep.Count("cloudwatch_expired") != 1 {
				t.Fatalf("counters %s", h.rep.Summary())
			}
		}},
		{"not sent: empty, too old, too new", nil, func(t *testing.T, h *harness) {
			now := time.Now()
			recs := []sink.Record{
				{Seq: 0, Group: "/g", Stream: "s", Time: now, Message: nil},
				{Seq: 1, Group: "/g", Stream: "s", Time: now.Add(-15 * 24 * time.Hour), Message: []byte("old")},
				{Seq: 2, Group: "/g", Stream: "s", Time: now.Add(3 * time.Hour), Message: []byte("new")},
			}
			rec := newRecorder()
			if err := h.deliver(t, recs, rec); err != nil {
				t.Fatal(err)
			}
			for seq, typ := range []string{"empty_message", "tooOld", "tooNew"} {
				w := rec.rejected[seq]
				if len(w) != 1 || w[0].Type != typ || w[0].Target != "/g/s" {
					t.Fatalf("seq %d: %+v, want %s", seq, w, typ)
				}
			}
			if !strings.Contains(rec.rejected[1][0].Reason, "360h0m0s old") || !strings.Contains(rec.rejected[2][0].Reason, "3h0m0s in the future") {
				t.Fatalf("reasons do not give the age: %q, %q", rec.rejected[1][0].Reason, rec.rejected[2][0].Reason)
			}
			if h.px.Count("PutLogEvents") != 0 {
				t.Fatal("sent events CloudWatch would reject")
			}
		}},
		{"InvalidParameter isolates the bad event", nil, func(t *testing.T, h *harness) {
			one := gen{groups: 1, streams: 1, size: 80, base: time.Now().Add(-time.Hour)}
			warm(t, h, one)
			recs := one.at(1000, 16)
			recs[5].Message = []byte(`{"seq":1005,"log":"poison"}`)
			h.px.Inject(moto.Fault{Action: "PutLogEvents", Contains: "poison", Kind: moto.Respond, Status: 400, Times: -1,
				Body: `{"__type":"InvalidParameterException","message":"Log event is invalid"}`})
			before := h.px.Count("PutLogEvents")
			rec := newRecorder()
			if err := h.deliver(t, recs, rec); err != nil {
				t.Fatal(err)
			}
			rec.check(t)
			w := rec.rejected[1005]
			if len(rec.rejected) != 1 || len(w) != 1 || w[0].Type != "InvalidParameterException" || w[0].Reason != "Log event is invalid" {
				t.Fatalf("rejected %v, want only seq 1005 with the service's reason", rec.rejected)
			}
			if n := h.px.Count("PutLogEvents") - before; n != 9 { // 1 + 2 per halving of 16
				t.Fatalf("%d requests to isolate one event of 16, want 9", n)
			}
			lost, dup := readBack(t, h.srv, append(recs[:5:5], recs[6:]...))
			if lost != 0 || dup != 0 {
				t.Fatalf("lost %d duplicated %d", lost, dup)
			}
		}},
		{"oversized events are truncated", nil, func(t *testing.T, h *harness) {
			now := time.Now()
			exact := `{"seq":0,"log":"` + strings.Repeat("a", MaxMessageBytes-18) + `"}`
			huge := `{"seq":1,"log":"` + strings.Repeat("b", 3*MaxMessageBytes) + `"}`
			recs := []sink.Record{
				{Seq: 0, Group: "/big", Stream: "s", Time: now, Message: []byte(exact)},
				{Seq: 1, Group: "/big", Stream: "s", Time: now, Message: []byte(huge)},
			}
			if len(exact) != MaxMessageBytes {
				t.Fatalf("exact is %d bytes", len(exact))
			}
			rec := newRecorder()
			if err := h.deliver(t, recs, rec); err != nil {
				t.Fatal(err)
			}
			evs := h.srv.Events(t, "/big", "s")
			if len(evs) != 2 || aws.ToString(evs[0].Message) != exact {
				t.Fatalf("read %d events; the largest allowed message must arrive unchanged", len(evs))
			}
			got := aws.ToString(evs[1].Message)
			if len(got) != MaxMessageBytes || !strings.HasSuffix(got, truncMarker(len(huge))) || !strings.HasPrefix(got, `{"seq":1,"log":"bbb`) {
				t.Fatalf("truncated message: %d bytes, ends %q", len(got), got[len(got)-80:])
			}
			if h.rep.Count("cloudwatch_truncated") != 1 || !strings.Contains(h.log.String(), "truncated a") {
				t.Fatalf("truncation not counted or logged: %s", h.rep.Summary())
			}
			if len(rec.accepted) != 2 {
				t.Fatalf("accepted %d", len(rec.accepted))
			}
		}},
		{"max_inflight bounds concurrent requests", func(c *config.Config) { c.MaxInflight = 3 }, func(t *testing.T, h *harness) {
			many := gen{groups: 3, streams: 4, size: 80, base: time.Now().Add(-time.Hour)}
			warm(t, h, many)
			h.px.Inject(moto.Fault{Action: "PutLogEvents", Kind: moto.Delay, Delay: 100 * time.Millisecond, Times: -1})
			a, b := many.at(1000, 240), many.at(2000, 240)
			rec := newRecorder()
			var wg sync.WaitGroup
			for _, recs := range [][]sink.Record{a, b} {
				wg.Go(func() {
					if err := h.deliver(t, recs, rec); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if m := h.px.MaxConcurrent("PutLogEvents"); m < 2 || m > 3 {
				t.Fatalf("max concurrent PutLogEvents %d, want 2..3", m)
			}
			expectExactlyOnce(t, h, rec, append(a, b...), 0)
		}},
		{"flush timeout leaves records pending", nil, func(t *testing.T, h *harness) {
			recs := g.at(0, 40)
			h.px.Inject(moto.Fault{Action: "PutLogEvents", Kind: moto.Unavailable, Times: -1})
			h.px.Inject(moto.Fault{Action: "CreateLogGroup", Kind: moto.Unavailable, Times: -1})
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			rec := newRecorder()
			err := h.d.Deliver(ctx, recs, rec)
			var pe *sink.PendingError
			if !errors.As(err, &pe) || pe.Pending != len(recs) || !strings.Contains(pe.Error(), "ServiceUnavailable") {
				t.Fatalf("err = %v, want a PendingError for all %d records naming the last failure", err, len(recs))
			}
			if len(rec.accepted)+len(rec.rejected) != 0 {
				t.Fatal("records settled")
			}
		}},
		{"two nodes create the same group at once", nil, func(t *testing.T, h *harness) {
			other, err := New(context.Background(), h.cfg, h.rep, WithBackoff(fastBackoff))
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close(context.Background())
			a, b := g.at(0, 400), g.at(1000, 400)
			rec := newRecorder()
			var wg sync.WaitGroup
			for i, d := range []*Destination{h.d, other} {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					if err := d.Deliver(ctx, [][]sink.Record{a, b}[i], rec); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			expectExactlyOnce(t, h, rec, append(a, b...), 0)
			if got := h.rep.Count("cloudwatch_groups_created"); got != 2 {
				t.Fatalf("groups created %d, want 2 (ResourceAlreadyExists is not a creation)", got)
			}
		}},
		{"retention denied, set a minute later", func(c *config.Config) { c.LogRetentionDays = 30 }, func(t *testing.T, h *harness) {
			var offset atomic.Int64
			clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
			d, err := New(context.Background(), h.cfg, h.rep, WithBackoff(fastBackoff), WithClock(clock))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close(context.Background())
			one := gen{groups: 1, streams: 1, size: 80}
			name, _ := one.names(0)
			h.px.Inject(moto.Fault{Action: "PutRetentionPolicy", Kind: moto.AccessDenied})
			rec := newRecorder()
			for i, step := range []time.Duration{0, 10 * time.Second, time.Minute} {
				offset.Add(int64(step))
				if err := d.Deliver(context.Background(), one.at(i*100, 10), rec); err != nil {
					t.Fatalf("delivery %d: %v (a missing retention policy must not hold up delivery)", i, err)
				}
				grp, err := h.srv.Group(t, name)
				if err != nil {
					t.Fatal(err)
				}
				wantCalls, wantDays := []int{1, 1, 2}[i], []int32{0, 0, 30}[i]
				if n := h.px.Count("PutRetentionPolicy"); n != wantCalls || grp.RetentionDays != wantDays {
					t.Fatalf("after delivery %d: %d PutRetentionPolicy calls, retention %d; want %d and %d", i, n, grp.RetentionDays, wantCalls, wantDays)
				}
			}
			if !strings.Contains(h.log.String(), "logs:PutRetentionPolicy for \""+name+"\" was denied") || h.rep.Count("cloudwatch_retention_failed") != 1 {
				t.Fatalf("retention failure not reported:\n%s", h.log.String())
			}
		}},
		{"CreateLogGroup denied names TagResource", func(c *config.Config) { c.LogGroupTags = map[string]string{"team": "sre"} }, func(t *testing.T, h *harness) {
			h.px.Inject(moto.Fault{Action: "CreateLogGroup", Kind: moto.AccessDenied, Times: -1})
			rec := newRecorder()
			var perm *sink.PermissionError
			err := h.deliver(t, g.at(0, 4), rec)
			if !errors.As(err, &perm) || !strings.Contains(perm.Hint, "allow logs:CreateLogGroup and logs:TagResource on arn:aws:logs:us-east-1:123456789012:log-group:"+perm.Target+":*") {
				t.Fatalf("err = %v, want a hint naming both actions and the group ARN", err)
			}
			if len(rec.accepted) != 0 {
				t.Fatal("accepted records without a group")
			}
		}},
		{"no credentials", nil, func(t *testing.T, h *harness) {
			t.Setenv("AWS_ACCESS_KEY_ID", "")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "")
			d, err := New(context.Background(), h.cfg, h.rep, WithBackoff(fastBackoff))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close(context.Background())
			var perm *sink.PermissionError
			if err := d.Deliver(context.Background(), g.at(0, 4), newRecorder()); !errors.As(err, &perm) || !strings.Contains(perm.Hint, "credential chain") {
				t.Fatalf("err = %v, want a PermissionError about the credential chain", err)
			}
			if n := strings.Count(h.log.String(), "cannot get AWS credentials"); n != 1 {
				t.Fatalf("%d lines about credentials, want 1 for all streams:\n%s", n, h.log.String())
			}
			if h.px.Count("PutLogEvents") != 0 {
				t.Fatal("sent an unsigned request")
			}
		}},
		{"closed destination", nil, func(t *testing.T, h *harness) {
			if err := h.d.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			var pe *sink.PendingError
			if err := h.d.Deliver(context.Background(), g.at(0, 4), newRecorder()); !errors.As(err, &pe) || pe.Pending != 4 {
				t.Fatalf("Deliver after Close: %v", err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv.Reset(t)
			h := newHarness(t, srv, c.mutate)
			c.run(t, h)
			if testing.Verbose() {
				t.Logf("what the destination logged:\n%s", h.log.String())
			}
		})
	}
}

// at returns n records numbered from seq0, timed in the last hour.
func (g gen) at(seq0, n int) []sink.Record {
	if g.base.IsZero() {
		g.base = time.Now().Add(-time.Hour)
	}
	return g.records(seq0, n)
}

// warm creates every group and stream of g by delivering a few records.
func warm(t *testing.T, h *harness, g gen) {
	t.Helper()
	recs := g.at(1_000_000, 8*g.groups*g.streams)
	if err := h.deliver(t, recs, newRecorder()); err != nil {
		t.Fatalf("warm-up: %v", err)
	}
}

func sortedByTime(recs []sink.Record) []sink.Record {
	out := append([]sink.Record(nil), recs...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Time.Before(out[j-1].Time); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// expectExactlyOnce checks that every record was accepted once, nothing was rejected, nothing
// is missing from CloudWatch and exactly wantDup extra copies are stored; it logs the counts.
func expectExactlyOnce(t *testing.T, h *harness, rec *recorder, recs []sink.Record, wantDup int) {
	t.Helper()
	rec.check(t)
	if len(rec.rejected) != 0 || len(rec.pending(recs)) != 0 {
		t.Fatalf("%d rejected, %d pending", len(rec.rejected), len(rec.pending(recs)))
	}
	lost, dup := readBack(t, h.srv, recs)
	t.Logf("%d records: lost %d, duplicated %d; %d PutLogEvents (%d failed)", len(recs), lost, dup, h.px.Count("PutLogEvents"), h.px.Failed("PutLogEvents"))
	if lost != 0 || dup != wantDup {
		t.Fatalf("lost %d, duplicated %d; want 0 and %d", lost, dup, wantDup)
	}
}

// TestAssumeRole: with role_arn, requests are signed with credentials from STS AssumeRole
// (moto's STS, through a second proxy as sts_endpoint), asked for with the external id.
func TestAssumeRole(t *testing.T) {
	srv := moto.Start(t)
	sts := moto.NewProxy(t, srv.URL)
	const role = "arn:aws:iam::123456789012:role/fluent-bit"
	h := newHarness(t, srv, func(c *config.Config) {
		c.RoleARN = role
		c.ExternalID = "cwos-ext-id"
		c.STSEndpoint = sts.URL
	})
	g := gen{groups: 1, streams: 2, size: 80}
	recs := g.at(0, 20)
	rec := newRecorder()
	if err := h.deliver(t, recs, rec); err != nil {
		t.Fatal(err)
	}
	expectExactlyOnce(t, h, rec, recs, 0)
	bodies := sts.Bodies("") // STS speaks the query protocol: no X-Amz-Target
	if len(bodies) != 1 || !strings.Contains(string(bodies[0]), "Action=AssumeRole") ||
		!strings.Contains(string(bodies[0]), "ExternalId=cwos-ext-id") || !strings.Contains(string(bodies[0]), "fluent-bit") {
		t.Fatalf("STS requests: %q; want one AssumeRole with the role and external id (credentials are cached)", bodies)
	}
	keys := h.px.AccessKeys()
	if len(keys) != 1 || keys[0] == moto.AccessKeyID {
		t.Fatalf("CloudWatch requests signed with %v, want only the assumed role's key", keys)
	}
}

func TestNewNeedsRegion(t *testing.T) {
	moto.Env(t)
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	_, err := New(context.Background(), &config.Config{CloudWatch: true}, nil)
	if err == nil || !strings.Contains(err.Error(), "region") {
		t.Fatalf("err = %v, want a clear error about the region", err)
	}
}
