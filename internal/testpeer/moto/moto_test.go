package moto

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/smithy-go"
)

type ev struct {
	TS  *int64  `json:"timestamp,omitempty"`
	Msg *string `json:"message,omitempty"`
}

func e(ts int64, msg string) ev { return ev{TS: &ts, Msg: &msg} }

func putBody(t *testing.T, group, stream string, token *string, evs []ev) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"logGroupName": group, "logStreamName": stream, "logEvents": evs, "sequenceToken": token})
	if err != nil {
		t.Fatal(err)
	}
	if token == nil {
		b = []byte(strings.Replace(string(b), `,"sequenceToken":null`, "", 1))
	}
	return b
}

func many(n, size int, step int64) []ev {
	out := make([]ev, n)
	msg := strings.Repeat("x", size)
	for i := range out {
		out[i] = e(1_700_000_000_000+int64(i)*step, msg)
	}
	return out
}

func TestCheck(t *testing.T) {
	const day = int64(24 * 3600 * 1000)
	quarter := (RuleMaxBytes / 4) - RuleEventOverhead // four of these fill a request exactly
	eAcute := strings.Repeat("é", (RuleMaxEventBytes-RuleEventOverhead)/2)
	tok := "49590302176040327580541427397584848064521283227423801346"
	cases := []struct {
		name   string
		action string
		body   func(t *testing.T) []byte
		want   []string
	}{
		{"valid", "PutLogEvents", func(t *testing.T) []byte { return putBody(t, "/g", "s", nil, []ev{e(1, "a"), e(1, "b"), e(2, "c")}) }, nil},
		{"10000 events", "PutLogEvents", func(t *testing.T) []byte { return putBody(t, "/g", "s", nil, many(10_000, 10, 1)) }, nil},
		{"10001 events", "PutLogEvents", func(t *testing.T) []byte { return putBody(t, "/g", "s", nil, many(10_001, 10, 1)) }, []string{RuleTooManyEvents}},
		{"bytes exactly at the limit", "PutLogEvents", func(t *testing.T) []byte { return putBody(t, "/g", "s", nil, many(4, quarter, 1)) }, nil},
		{"one byte over", "PutLogEvents", func(t *testing.T) []byte {
			evs := many(4, quarter, 1)
			m := *evs[3].Msg + "x"
			evs[3].Msg = &m
			return putBody(t, "/g", "s", nil, evs)
		}, []string{RuleTooManyBytes}},
		{"largest event", "PutLogEvents", func(t *testing.T) []byte {
			return putBody(t, "/g", "s", nil, many(1, RuleMaxEventBytes-RuleEventOverhead, 1))
		}, nil},
		{"event one byte too large", "PutLogEvents", func(t *testing.T) []byte {
			return putBody(t, "/g", "s", nil, many(1, RuleMaxEventBytes-RuleEventOverhead+1, 1))
		}, []string{RuleEventTooLarge, RuleTooManyBytes}},
		{"multi-byte counted in bytes", "PutLogEvents", func(t *testing.T) []byte {
			return putBody(t, "/g", "s", nil, []ev{e(1, eAcute)})
		}, nil},
		{"multi-byte one byte over", "PutLogEvents", func(t *testing.T) []byte {
			return putBody(t, "/g", "s", nil, []ev{e(1, eAcute+"x")})
		}, []string{RuleEventTooLarge, RuleTooManyBytes}},
		{"out of order", "PutLogEvents", func(t *testing.T) []byte { return putBody(t, "/g", "s", nil, []ev{e(2, "a"), e(1, "b")}) }, []string{RuleOutOfOrder}},
		{"span exactly 24h", "PutLogEvents", func(t *testing.T) []byte { return putBody(t, "/g", "s", nil, []ev{e(0, "a"), e(day, "b")}) }, nil},
		{"span 24h + 1ms", "PutLogEvents", func(t *testing.T) []byte { return putBody(t, "/g", "s", nil, []ev{e(0, "a"), e(day+1, "b")}) }, []string{RuleSpan}},
		{"empty message", "PutLogEvents", func(t *testing.T) []byte { return putBody(t, "/g", "s", nil, []ev{e(1, "")}) }, []string{RuleEmptyMessage}},
		{"no timestamp", "PutLogEvents", func(t *testing.T) []byte {
			m := "a"
			return putBody(t, "/g", "s", nil, []ev{{Msg: &m}})
		}, []string{RuleNoTimestamp}},
		{"no events", "PutLogEvents", func(t *testing.T) []byte { return putBody(t, "/g", "s", nil, nil) }, []string{RuleNoEvents}},
		{"sequence token", "PutLogEvents", func(t *testing.T) []byte { return putBody(t, "/g", "s", &tok, []ev{e(1, "a")}) }, []string{RuleSequenceToken}},
		{"invalid UTF-8", "PutLogEvents", func(t *testing.T) []byte {
			return []byte("{\"logGroupName\":\"/g\",\"logStreamName\":\"s\",\"logEvents\":[{\"timestamp\":1,\"message\":\"a\xffb\"}]}")
		}, []string{RuleInvalidUTF8}},
		{"bad json", "PutLogEvents", func(t *testing.T) []byte { return []byte(`{"logEvents":`) }, []string{RuleBadJSON}},
		{"bad group name", "CreateLogGroup", func(t *testing.T) []byte { return []byte(`{"logGroupName":"a b"}`) }, []string{RuleGroupName}},
		{"group name too long", "CreateLogGroup", func(t *testing.T) []byte {
			return []byte(`{"logGroupName":"` + strings.Repeat("a", 513) + `"}`)
		}, []string{RuleGroupName}},
		{"bad stream name", "CreateLogStream", func(t *testing.T) []byte { return []byte(`{"logGroupName":"g","logStreamName":"a:b"}`) }, []string{RuleStreamName}},
		{"other actions are not checked", "DescribeLogGroups", func(t *testing.T) []byte { return []byte(`{}`) }, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, v := range Check(c.action, c.body(t)) {
				got = append(got, v.Rule)
			}
			slices.Sort(got)
			want := slices.Clone(c.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("rules = %v, want %v", got, want)
			}
		})
	}
}

// FuzzCheck: the checker never panics, and a body it cannot parse is reported, not accepted.
func FuzzCheck(f *testing.F) {
	f.Add("PutLogEvents", []byte(`{"logGroupName":"/g","logStreamName":"s","logEvents":[{"timestamp":1,"message":"a"}]}`))
	f.Add("CreateLogGroup", []byte(`{"logGroupName":"a b"}`))
	f.Add("PutLogEvents", []byte(`{"logEvents":[{"timestamp":null,"message":null},{}]}`))
	f.Add("PutLogEvents", []byte("\xff{"))
	f.Fuzz(func(t *testing.T, action string, body []byte) {
		vs := Check(action, body)
		if (action == "PutLogEvents" || action == "CreateLogGroup") && !json.Valid(body) && len(vs) == 0 {
			t.Fatalf("unparsable body passed: %q", body)
		}
	})
}

// fakeTB records what a helper reports instead of failing the real test.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	errs     []string
	cleanups []func()
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}
func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) cleanup() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func TestStartFailsWithoutMotoServer(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	old := knownPaths
	knownPaths = []string{t.TempDir() + "/moto_server"}
	defer func() { knownPaths = old }()
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); Start(f) }()
	<-done
	if len(f.errs) != 1 || !strings.Contains(f.errs[0], "moto_server not found") {
		t.Fatalf("errors = %q, want one saying moto_server is missing", f.errs)
	}
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func status(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func put(ctx context.Context, c *cloudwatchlogs.Client, group, stream string, msgs ...string) error {
	evs := make([]types.InputLogEvent, len(msgs))
	now := time.Now().UnixMilli()
	for i := range msgs {
		evs[i] = types.InputLogEvent{Message: aws.String(msgs[i]), Timestamp: aws.Int64(now + int64(i))}
	}
	_, err := c.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: &group, LogStreamName: &stream, LogEvents: evs})
	return err
}

func messages(evs []types.OutputLogEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = aws.ToString(e.Message)
	}
	return out
}

func TestProxyFaults(t *testing.T) {
	srv := Start(t)
	px := NewProxy(t, srv.URL)
	ctx := context.Background()
	c := Client(px.URL)
	const g, s = "/cwos/test", "pod-1"
	if _, err := c.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(g), Tags: map[string]string{"team": "sre"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRetentionPolicy(ctx, &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: aws.String(g), RetentionInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String(g), LogStreamName: aws.String(s)}); err != nil {
		t.Fatal(err)
	}
	grp, err := srv.Group(t, g)
	if err != nil || grp.RetentionDays != 7 || grp.Tags["team"] != "sre" {
		t.Fatalf("group = %+v, %v; want retention 7 and tag team=sre", grp, err)
	}
	if _, err := srv.Group(t, "/nope"); !errors.Is(err, ErrMissing) {
		t.Fatalf("missing group: err = %v", err)
	}

	cases := []struct {
		fault  Fault
		code   string
		status int
		stored bool // moto stored the events although the client saw an error
	}{
		{Fault{Kind: Throttle}, "ThrottlingException", 400, false},
		{Fault{Kind: ServerError}, "InternalFailure", 500, false},
		{Fault{Kind: Unavailable}, "ServiceUnavailableException", 503, false},
		{Fault{Kind: AccessDenied}, "AccessDeniedException", 400, false},
		{Fault{Kind: ExpiredToken}, "ExpiredTokenException", 400, false},
		{Fault{Kind: ResetBeforeForward}, "", 0, false},
		{Fault{Kind: ResetAfterForward}, "", 0, true},
	}
	want := []string{}
	for i, tc := range cases {
		t.Run(tc.fault.Kind.String(), func(t *testing.T) {
			tc.fault.Action = "PutLogEvents"
			px.Inject(tc.fault)
			msg := fmt.Sprintf("event %d", i)
			err := put(ctx, c, g, s, msg)
			if err == nil {
				t.Fatal("no error")
			}
			if code(err) != tc.code || status(err) != tc.status {
				t.Fatalf("err = %v (code %q status %d), want code %q status %d", err, code(err), status(err), tc.code, tc.status)
			}
			if tc.fault.Kind == AccessDenied && !strings.Contains(err.Error(), "logs:PutLogEvents on resource: arn:aws:logs:us-east-1:123456789012:log-group:/cwos/test:log-stream:pod-1") {
				t.Fatalf("AccessDenied message does not name the action and resource: %v", err)
			}
			if tc.stored {
				want = append(want, msg)
			}
			// The fault was used up: the next request goes through.
			ok := fmt.Sprintf("ok %d", i)
			if err := put(ctx, c, g, s, ok); err != nil {
				t.Fatalf("after the fault: %v", err)
			}
			want = append(want, ok)
			if got := messages(srv.Events(t, g, s)); !slices.Equal(got, want) {
				t.Fatalf("stored = %q, want %q", got, want)
			}
		})
	}
	if got, want := px.Faulted("PutLogEvents"), len(cases); got != want {
		t.Fatalf("Faulted = %d, want %d", got, want)
	}
	if got, want := px.Failed("PutLogEvents"), len(cases); got != want {
		t.Fatalf("Failed = %d, want %d", got, want)
	}
	if got, want := px.Count("PutLogEvents"), 2*len(cases); got != want {
		t.Fatalf("Count = %d, want %d", got, want)
	}
	if got := px.Count("CreateLogGroup"); got != 1 || !strings.Contains(string(px.Bodies("CreateLogGroup")[0]), `"team":"sre"`) {
		t.Fatalf("CreateLogGroup count %d bodies %q", got, px.Bodies("CreateLogGroup"))
	}

	t.Run("group filter, until cleared, respond", func(t *testing.T) {
		px.Inject(Fault{Action: "PutLogEvents", Group: "/other", Kind: Throttle, Times: -1})
		if err := put(ctx, c, g, s, "not for /other"); err != nil {
			t.Fatalf("fault for another group applied: %v", err)
		}
		for range 3 {
			if err := put(ctx, c, "/other", s, "x"); code(err) != "ThrottlingException" {
				t.Fatalf("err = %v, want throttling until cleared", err)
			}
		}
		px.Clear()
		px.Inject(Fault{Action: "PutLogEvents", Contains: "poison", Kind: Throttle, Times: -1})
		if err := put(ctx, c, g, s, "fine", "poison pill"); code(err) != "ThrottlingException" {
			t.Fatalf("Contains fault not applied: %v", err)
		}
		if err := put(ctx, c, g, s, "fine"); err != nil {
			t.Fatalf("Contains fault applied to another body: %v", err)
		}
		px.Clear()
		px.Inject(Fault{Action: "PutLogEvents", Kind: Respond, Status: 200, Body: `{"rejectedLogEventsInfo":{"tooOldLogEventEndIndex":1}}`})
		c2 := Client(px.URL)
		out, err := c2.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String(g), LogStreamName: aws.String(s),
			LogEvents: []types.InputLogEvent{{Message: aws.String("m"), Timestamp: aws.Int64(time.Now().UnixMilli())}}})
		if err != nil || out.RejectedLogEventsInfo == nil || aws.ToInt32(out.RejectedLogEventsInfo.TooOldLogEventEndIndex) != 1 {
			t.Fatalf("respond: %+v %v", out, err)
		}
	})

	t.Run("concurrency is measured", func(t *testing.T) {
		px.Inject(Fault{Action: "PutLogEvents", Kind: Delay, Delay: 200 * time.Millisecond, Times: 4})
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				if err := put(ctx, c, g, s, fmt.Sprintf("parallel %d", i)); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if m := px.MaxConcurrent("PutLogEvents"); m < 2 || m > 4 {
			t.Fatalf("MaxConcurrent = %d, want 2..4", m)
		}
	})

	t.Run("reading pages past 10000 events", func(t *testing.T) {
		const s2 = "big"
		if _, err := c.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String(g), LogStreamName: aws.String(s2)}); err != nil {
			t.Fatal(err)
		}
		var want []string
		for b := range 3 {
			msgs := make([]string, 5000)
			for i := range msgs {
				msgs[i] = fmt.Sprintf("%d-%05d", b, i)
			}
			want = append(want, msgs...)
			if err := put(ctx, c, g, s2, msgs...); err != nil {
				t.Fatal(err)
			}
		}
		got := messages(srv.Events(t, g, s2))
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("read %d events, want %d", len(got), len(want))
		}
	})

	srv.Reset(t)
	if _, err := srv.Group(t, g); !errors.Is(err, ErrMissing) {
		t.Fatalf("after reset: %v", err)
	}
}

func TestProxyRecordsViolations(t *testing.T) {
	srv := Start(t)
	f := &fakeTB{TB: t}
	px := NewProxy(f, srv.URL)
	ctx := context.Background()
	c := Client(px.URL)
	if _, err := c.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("g")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String("g"), LogStreamName: aws.String("s")}); err != nil {
		t.Fatal(err)
	}
	_, err := c.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String("g"), LogStreamName: aws.String("s"),
		LogEvents: []types.InputLogEvent{
			{Message: aws.String("yesterday"), Timestamp: aws.Int64(time.Now().Add(-25 * time.Hour).UnixMilli())},
			{Message: aws.String("now"), Timestamp: aws.Int64(time.Now().UnixMilli())},
		}})
	if err != nil {
		t.Fatal(err) // moto accepts it: that is why the proxy checks
	}
	v := px.Violations()
	if len(v) != 1 || v[0].Rule != RuleSpan || v[0].Group != "g" || v[0].Stream != "s" {
		t.Fatalf("violations = %v", v)
	}
	f.cleanup()
	if len(f.errs) != 1 || !strings.Contains(f.errs[0], RuleSpan) {
		t.Fatalf("cleanup reported %q, want the test failed naming the rule", f.errs)
	}
}

// Env may run before Start: the empty AWS_* values it sets must not reach moto_server.
func TestStartAfterEnv(t *testing.T) {
	Env(t)
	s := Start(t)
	if _, err := s.Client().DescribeLogGroups(context.Background(), &cloudwatchlogs.DescribeLogGroupsInput{}); err != nil {
		t.Fatalf("moto started after Env does not answer: %v", err)
	}
}
