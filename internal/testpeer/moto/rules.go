package moto

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// The PutLogEvents rules the Proxy enforces, from the Amazon CloudWatch Logs API Reference
// (PutLogEvents, InputLogEvent). Written out here on purpose instead of shared with the plugin,
// so that a mistake in the plugin's limits cannot hide itself.
const (
	RuleMaxEvents     = 10_000    // events per request
	RuleMaxBytes      = 1_048_576 // sum of UTF-8 message bytes + RuleEventOverhead per event
	RuleEventOverhead = 26
	RuleMaxEventBytes = 1_048_576                  // one event, overhead included (1 MB)
	RuleMaxSpanMs     = int64(24 * 60 * 60 * 1000) // first to last event of one request
	RuleMaxNameLen    = 512                        // log group and log stream names
)

// Rule names, as they appear in Violation.Rule.
const (
	RuleUnsigned      = "unsigned"        // no SigV4 Authorization header
	RuleBadJSON       = "bad_json"        // the body does not parse
	RuleInvalidUTF8   = "invalid_utf8"    // the body has bytes that are not UTF-8
	RuleNoEvents      = "no_events"       // logEvents empty or absent
	RuleTooManyEvents = "too_many_events" // more than RuleMaxEvents
	RuleTooManyBytes  = "too_many_bytes"  // over RuleMaxBytes counted the service's way
	RuleEventTooLarge = "event_too_large" // one message + overhead over RuleMaxEventBytes
	RuleEmptyMessage  = "empty_message"   // a message of length 0 (or missing)
	RuleNoTimestamp   = "no_timestamp"    // an event without timestamp
	RuleOutOfOrder    = "out_of_order"    // timestamps decrease
	RuleSpan          = "span_over_24h"   // last - first timestamp over 24 h
	RuleSequenceToken = "sequence_token"  // sequenceToken sent (ignored by the service; the plugin must not depend on it)
	RuleGroupName     = "bad_group_name"  // not 1-512 of [.-_/#A-Za-z0-9]
	RuleStreamName    = "bad_stream_name" // not 1-512 characters without ':' and '*'
)

// Violation is one broken rule in one request.
type Violation struct {
	Action string
	Group  string
	Stream string
	Rule   string
	Detail string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s %s/%s: %s: %s", v.Action, v.Group, v.Stream, v.Rule, v.Detail)
}

type putEvent struct {
	Timestamp *int64  `json:"timestamp"`
	Message   *string `json:"message"`
}

type request struct {
	LogGroupName  string     `json:"logGroupName"`
	LogStreamName string     `json:"logStreamName"`
	SequenceToken *string    `json:"sequenceToken"`
	LogEvents     []putEvent `json:"logEvents"`
}

// Check returns the rules that a request body for action breaks: for PutLogEvents every batch
// rule; for CreateLogGroup, CreateLogStream and PutLogEvents the name rules; for any action
// valid UTF-8. Other actions' bodies (including STS's query protocol) are not parsed.
func Check(action string, body []byte) []Violation {
	var out []Violation
	add := func(r *request, rule, format string, args ...any) {
		v := Violation{Action: action, Rule: rule, Detail: fmt.Sprintf(format, args...)}
		if r != nil {
			v.Group, v.Stream = r.LogGroupName, r.LogStreamName
		}
		out = append(out, v)
	}
	if !utf8.Valid(body) {
		add(nil, RuleInvalidUTF8, "request body has invalid UTF-8")
	}
	switch action {
	case "CreateLogGroup", "CreateLogStream", "PutLogEvents":
	default:
		return out
	}
	var r request
	if err := json.Unmarshal(body, &r); err != nil {
		add(nil, RuleBadJSON, "%v", err)
		return out
	}
	switch action {
	case "CreateLogGroup":
		checkGroup(&r, add)
	case "CreateLogStream":
		checkGroup(&r, add)
		checkStream(&r, add)
	case "PutLogEvents":
		checkGroup(&r, add)
		checkStream(&r, add)
		checkPut(&r, add)
	}
	return out
}

type adder func(r *request, rule, format string, args ...any)

func checkGroup(r *request, add adder) {
	n := r.LogGroupName
	if len(n) == 0 || len(n) > RuleMaxNameLen {
		add(r, RuleGroupName, "length %d", len(n))
	}
	for _, c := range n {
		if !(c == '.' || c == '-' || c == '_' || c == '/' || c == '#' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			add(r, RuleGroupName, "character %q", c)
			return
		}
	}
}

func checkStream(r *request, add adder) {
	n := r.LogStreamName
	if l := utf8.RuneCountInString(n); l == 0 || l > RuleMaxNameLen {
		add(r, RuleStreamName, "length %d", l)
	}
	if strings.ContainsAny(n, ":*") {
		add(r, RuleStreamName, "contains ':' or '*'")
	}
}

func checkPut(r *request, add adder) {
	if r.SequenceToken != nil {
		add(r, RuleSequenceToken, "sequenceToken %q", *r.SequenceToken)
	}
	n := len(r.LogEvents)
	if n == 0 {
		add(r, RuleNoEvents, "no events")
		return
	}
	if n > RuleMaxEvents {
		add(r, RuleTooManyEvents, "%d events", n)
	}
	total := 0
	var first, prev int64
	for i, e := range r.LogEvents {
		size := 0
		if e.Message == nil || len(*e.Message) == 0 {
			add(r, RuleEmptyMessage, "event %d", i)
		} else {
			size = len(*e.Message) // Go decoded the JSON into UTF-8
		}
		if size+RuleEventOverhead > RuleMaxEventBytes {
			add(r, RuleEventTooLarge, "event %d: %d bytes + %d", i, size, RuleEventOverhead)
		}
		total += size + RuleEventOverhead
		if e.Timestamp == nil {
			add(r, RuleNoTimestamp, "event %d", i)
			continue
		}
		ts := *e.Timestamp
		if i == 0 {
			first, prev = ts, ts
		}
		if ts < prev {
			add(r, RuleOutOfOrder, "event %d at %d after %d", i, ts, prev)
		}
		if ts-first > RuleMaxSpanMs {
			add(r, RuleSpan, "event %d is %d ms after the first", i, ts-first)
		}
		prev = max(prev, ts)
	}
	if total > RuleMaxBytes {
		add(r, RuleTooManyBytes, "%d bytes counted the service's way", total)
	}
}
