// Package sink defines what a destination (CloudWatch Logs, OpenSearch) receives from one flush
// and how it reports each record's fate. The destinations live in sub-packages; the flush
// orchestration (internal/delivery) drives them concurrently and turns their results into one
// Fluent Bit return code.
package sink

import (
	"context"
	"fmt"
	"time"

	"github.com/cwos/cloudwatch-opensearch/internal/event"
)

// Record is one log record of a chunk, ready for the destinations. Everything that both
// destinations need is computed once per record by the orchestration.
//
// Raw, Message, MessageJSON and Fields alias buffers owned by the flush: a destination must
// not keep them after Deliver returns.
type Record struct {
	Seq     int       // position among the chunk's decodable records; stable across retries of the chunk
	Time    time.Time // record time (UTC)
	Tag     string    // the chunk's tag
	Raw     []byte    // the record map as msgpack, straight from the chunk
	Message []byte    // CloudWatch message and the cwl document's @message: record JSON or the log_key value
	ID      event.ID  // deterministic document id (SPEC.md "_id")

	// MessageJSON is Message as one quoted JSON string, byte for byte event.AppendString(nil,
	// Message): the cwl document's @message, written in the same pass as the record's JSON
	// (event.AppendJSONQuoted) instead of escaping that JSON again per document. nil = not
	// computed (OpenSearch off, record documents, log_key); then escape Message.
	MessageJSON []byte

	// Fields is the record's top-level fields as JSON, without braces, exactly as
	// event.AppendFields writes them with no key skipped; nil = not computed. It is set only when
	// no top-level key starts with '@' or equals FieldsKey (event.AppendJSONChecked), so the
	// OpenSearch documents, which replace such keys with their own, can use it as it is instead
	// of transcoding the record a second time. Aliases Message when the message is the record.
	Fields    []byte
	FieldsKey string

	// Rendered, sanitized, always-valid names. Interned: equal names are the same string.
	Group  string
	Stream string
	Index  string
}

// Rejection says why a destination gave up on a record for good (SPEC.md "Errors": bulk 400/404
// items, CloudWatch tooOld/tooNew/expired, oversized or empty events).
type Rejection struct {
	Destination string // "cloudwatch" or "opensearch"
	Target      string // log group + "/" + stream, or the index
	Status      int    // HTTP or item status when there is one
	Type        string // error type, e.g. mapper_parsing_exception, tooOldLogEventEndIndex, empty_message
	Reason      string // the service's reason, or ours
}

func (r Rejection) String() string {
	return fmt.Sprintf("%s rejected a record for %q: status=%d type=%s reason=%s",
		r.Destination, r.Target, r.Status, r.Type, r.Reason)
}

// Settler receives each record's fate from a destination. Implementations are safe for
// concurrent use: a destination may send several requests at once.
type Settler interface {
	// Accepted records the record as delivered (including "already there": 409, duplicate).
	Accepted(seq int)
	// Rejected records a permanent failure: the record is reported, counted, dead-lettered if
	// configured, and never sent again.
	Rejected(rec *Record, why Rejection)
}

// Destination is one store the plugin writes to. Deliver is called once per flush with the
// records of the chunk that this destination has not yet settled (the ledger filters the rest),
// and may run concurrently for different chunks (Fluent Bit's workers).
//
// Deliver retries what can succeed later (network, 5xx, throttling, 429 items, permissions)
// with backoff until ctx is done, settling records as it goes. It returns nil when every record
// it was given is settled (accepted or rejected), otherwise an error saying why the rest is still
// pending; the flush then answers FLB_RETRY and the chunk comes back later.
type Destination interface {
	Name() string
	Deliver(ctx context.Context, recs []Record, s Settler) error
	// Close waits for in-flight requests until ctx is done and releases resources.
	Close(ctx context.Context) error
}

// PermissionError marks a failure that an operator must fix (IAM policy, OpenSearch role
// mapping, missing log group with auto-create off). Data is kept: the flush answers FLB_RETRY.
type PermissionError struct {
	Destination string
	Target      string
	Err         error
	Hint        string // the fix, e.g. "allow logs:PutLogEvents on arn:..."
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("%s: permission denied for %s: %v; fix: %s", e.Destination, e.Target, e.Err, e.Hint)
}

func (e *PermissionError) Unwrap() error { return e.Err }

// PendingError says that records are still pending after the destination's retries ran out of
// time; Last is the last error seen.
type PendingError struct {
	Destination string
	Pending     int
	Last        error
}

func (e *PendingError) Error() string {
	return fmt.Sprintf("%s: %d records not delivered yet: %v", e.Destination, e.Pending, e.Last)
}

func (e *PendingError) Unwrap() error { return e.Last }
