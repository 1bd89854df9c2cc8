// Package delivery runs one flush: decode the chunk, render each record's names, message and id,
// hand the records each destination has not yet settled to every enabled destination at once,
// and turn their outcomes into one Fluent Bit return code (SPEC.md "Errors", DESIGN.md
// "Delivery rules"). It owns the per-instance state: config, destinations, ledger, dead letters.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/cwos/cloudwatch-opensearch/internal/config"
	"github.com/cwos/cloudwatch-opensearch/internal/deadletter"
	"github.com/cwos/cloudwatch-opensearch/internal/event"
	"github.com/cwos/cloudwatch-opensearch/internal/ledger"
	"github.com/cwos/cloudwatch-opensearch/internal/report"
	"github.com/cwos/cloudwatch-opensearch/internal/sink"
	"github.com/cwos/cloudwatch-opensearch/internal/sink/cloudwatch"
	"github.com/cwos/cloudwatch-opensearch/internal/sink/opensearch"
	"github.com/cwos/cloudwatch-opensearch/internal/template"
)

// Fluent Bit's return codes (flb_output.h).
const (
	Error = 0 // the chunk is dropped
	OK    = 1
	Retry = 2 // the same chunk comes back later, byte for byte
)

// Options for New.
type Options struct {
	Name string    // instance label for log lines, e.g. "cloudwatch_opensearch.0"
	Log  io.Writer // nil = os.Stderr

	// Destinations replaces the destinations built from the config (tests).
	Destinations []sink.Destination
	// Ledger bounds; zero values take the ledger's defaults.
	LedgerMaxChunks int
	LedgerTTL       time.Duration
}

// Instance is one [OUTPUT] block's state. Flush is safe for concurrent use (Fluent Bit workers).
type Instance struct {
	cfg    *config.Config
	rep    *report.Reporter
	namer  *template.Namer
	dests  []sink.Destination
	ledger *ledger.Ledger
	dlq    *deadletter.Writer
	logKey []event.PathElem

	needMessage bool
	// quoteMessage: the cwl document's @message is the record's JSON, so write it quoted in the
	// same pass (sink.Record.MessageJSON). Off when OpenSearch is off, for record documents, and
	// with log_key (the message is then mostly a string value).
	quoteMessage bool
	pool         sync.Pool // *flushState

	base    context.Context // cancelled when the exit grace runs out
	cancel  context.CancelFunc
	mu      sync.Mutex // guards closing
	closing bool
	flights sync.WaitGroup
	closed  sync.Once
}

// New parses and validates the config and builds the instance. On a bad config it logs one line
// per problem and returns the joined errors; the plugin then fails Init.
func New(ctx context.Context, src config.Source, o Options) (*Instance, error) {
	rep := report.New(o.Name, o.Log)
	cfg, err := config.Parse(src)
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			rep.Errorf("%s", line)
		}
		return nil, err
	}
	in, err := newInstance(ctx, cfg, rep, o)
	if err != nil {
		rep.Errorf("%v", err)
		return nil, err
	}
	rep.Infof("started: cloudwatch=%v opensearch=%v flush_timeout=%s max_inflight=%d",
		cfg.CloudWatch, cfg.OpenSearch, cfg.FlushTimeout, cfg.MaxInflight)
	return in, nil
}

func newInstance(ctx context.Context, cfg *config.Config, rep *report.Reporter, o Options) (*Instance, error) {
	in := &Instance{cfg: cfg, rep: rep}
	in.namer = template.NewNamer(template.NamerOptions{
		Group:        cfg.LogGroupTemplate,
		GroupName:    cfg.LogGroupName,
		Stream:       cfg.LogStreamTemplate,
		StreamName:   cfg.LogStreamName,
		StreamPrefix: cfg.LogStreamPrefix,
		Index:        indexTemplate(cfg),
		Report:       rep,
	})
	if cfg.LogKey != "" {
		in.logKey = []event.PathElem{{Key: cfg.LogKey}}
	}
	in.needMessage = cfg.CloudWatch || cfg.OpenSearchDocument == config.DocumentCWL
	in.quoteMessage = cfg.OpenSearch && cfg.OpenSearchDocument == config.DocumentCWL && in.logKey == nil
	in.dests = o.Destinations
	if in.dests == nil {
		if cfg.CloudWatch {
			d, err := cloudwatch.New(ctx, cfg, rep)
			if err != nil {
				return nil, fmt.Errorf("cloudwatch: %w", err)
			}
			in.dests = append(in.dests, d)
		}
		if cfg.OpenSearch {
			d, err := opensearch.New(ctx, cfg, rep)
			if err != nil {
				return nil, fmt.Errorf("opensearch: %w", err)
			}
			in.dests = append(in.dests, d)
		}
	}
	if cfg.DeadLetterFile != "" {
		w, err := deadletter.Open(cfg.DeadLetterFile, cfg.DeadLetterMaxSize)
		if err != nil {
			return nil, err
		}
		in.dlq = w
	}
	in.ledger = ledger.New(ledger.Options{Destinations: len(in.dests), MaxChunks: o.LedgerMaxChunks, TTL: o.LedgerTTL})
	in.base, in.cancel = context.WithCancel(context.Background())
	in.pool.New = func() any { return new(flushState) }
	return in, nil
}

func indexTemplate(cfg *config.Config) *template.Template {
	if !cfg.OpenSearch {
		return nil
	}
	return cfg.IndexTemplate
}

// Reporter returns the instance's reporter (counters, for tests and the exit summary).
func (in *Instance) Reporter() *report.Reporter { return in.rep }

// flushState holds one flush's reusable buffers; pooled so steady-state flushes do not allocate
// per record.
type flushState struct {
	events  []event.Event
	recs    []sink.Record
	arena   []byte // messages of all records, back to back
	offs    []int  // end offset of each record's message in arena
	qarena  []byte // the messages as quoted JSON strings (Instance.quoteMessage), back to back
	qoffs   []int  // end offset of each record's quoted message in qarena; -1: none
	scratch template.Scratch
	json    event.Transcoder // remembers the JSON of repeated metadata maps across records
	ids     event.IDGen
	key     []byte // the records' ids back to back: the ledger key's input
}

// Flush delivers one chunk and returns OK, Retry or Error. data and tag are not kept.
func (in *Instance) Flush(data []byte, tag string) int {
	// Add under the lock that Close takes to set closing, so no Add races the final Wait.
	in.mu.Lock()
	if in.closing {
		in.mu.Unlock()
		return Retry
	}
	in.flights.Add(1)
	in.mu.Unlock()
	defer in.flights.Done()

	st := in.pool.Get().(*flushState)
	defer in.pool.Put(st)

	evs, stats := event.Decode(data, st.events[:0])
	st.events = evs
	if stats.Malformed > 0 {
		in.rep.Add("malformed_events", int64(stats.Malformed))
		in.rep.Limited("malformed:"+tag, report.Warn, "chunk with tag %q: skipped %d undecodable events (first: %v); delivering the %d others",
			tag, stats.Malformed, stats.Err, len(evs))
	}
	if len(evs) == 0 {
		if stats.Malformed > 0 {
			in.rep.Errorf("chunk with tag %q (%d bytes): nothing decodable, dropping it: %v", tag, len(data), stats.Err)
			return Error
		}
		return OK // empty, or only group markers
	}
	in.prepare(st, tag)

	// The chunk's identity: its records' ids already hash tag, time and bytes, so hashing
	// 16 bytes a record instead of the whole chunk again gives the same stable key.
	st.key = st.key[:0]
	for i := range st.recs {
		st.key = append(st.key, st.recs[i].ID[:]...)
	}
	entry, retry := in.ledger.Acquire(ledger.KeyOf(tag, st.key), len(st.recs))
	if retry {
		in.rep.Add("chunk_retries", 1)
	}
	ctx, cancel := context.WithTimeout(in.base, in.cfg.FlushTimeout)
	defer cancel()

	errs := make([]error, len(in.dests))
	var wg sync.WaitGroup
	for d, dest := range in.dests {
		pending := st.pendingFor(entry, d)
		if skipped := len(st.recs) - len(pending); retry && skipped > 0 {
			in.rep.Add("resend_avoided_"+dest.Name(), int64(skipped))
		}
		if len(pending) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					errs[d] = fmt.Errorf("%s: panic: %v", dest.Name(), p)
				}
			}()
			errs[d] = dest.Deliver(ctx, pending, &settler{in: in, entry: entry, dest: d, name: dest.Name(), tag: tag})
		}()
	}
	wg.Wait()

	failed := false
	for d, err := range errs {
		if err == nil && entry.Remaining(d) > 0 {
			// A destination must settle every record it was given before returning nil; if one
			// ever does not, keep the chunk rather than acknowledge records nobody took.
			err = fmt.Errorf("%s returned without settling %d records (a bug; the chunk is kept)", in.dests[d].Name(), entry.Remaining(d))
			in.rep.Add("unsettled_"+in.dests[d].Name(), 1)
		}
		if err == nil {
			continue
		}
		failed = true
		name := in.dests[d].Name()
		left := entry.Remaining(d)
		in.rep.Add("flush_retry_"+name, 1)
		var perm *sink.PermissionError
		if errors.As(err, &perm) {
			// The destination already printed the fix; keep this line short.
			in.rep.Limited("retry:"+name+":perm", report.Warn, "%s: %d records kept for retry: permission denied for %s", name, left, perm.Target)
		} else {
			in.rep.Limited("retry:"+name, report.Warn, "%s: %d of %d records not delivered yet, Fluent Bit will retry the chunk: %v", name, left, len(st.recs), err)
		}
	}
	in.ledger.Release(entry, !failed)
	if failed {
		return Retry
	}
	in.rep.Add("records_delivered", int64(len(st.recs)))
	return OK
}

// prepare fills st.recs: names, message and id per record, computed once for all destinations.
func (in *Instance) prepare(st *flushState, tag string) {
	st.ids.Reset(tag)
	st.arena = st.arena[:0]
	st.offs = st.offs[:0]
	st.qarena = st.qarena[:0]
	st.qoffs = st.qoffs[:0]
	st.recs = st.recs[:0]
	// The key besides the '@' ones that a document replaces: record documents write time_key.
	fieldsKey := ""
	if in.cfg.OpenSearchDocument == config.DocumentRecord {
		fieldsKey = in.cfg.TimeKey
	}
	for i := range st.events {
		ev := &st.events[i]
		names := in.namer.Names(&st.scratch, ev, tag)
		fields, quoted := false, false
		if in.needMessage {
			st.arena, st.qarena, fields, quoted = in.appendMessage(&st.json, st.arena, st.qarena, ev, fieldsKey)
		}
		st.offs = append(st.offs, len(st.arena))
		if in.quoteMessage {
			q := -1
			if quoted {
				q = len(st.qarena)
			}
			st.qoffs = append(st.qoffs, q)
		}
		st.recs = append(st.recs, sink.Record{
			Seq: i, Time: ev.Time, Tag: tag, Raw: ev.Record, ID: st.ids.Next(*ev),
			Group: names.Group, Stream: names.Stream, Index: names.Index,
		})
		if fields {
			// Only a mark for now (non-nil: the arena holds at least "{}"); sliced below.
			st.recs[i].Fields, st.recs[i].FieldsKey = st.arena[:0], fieldsKey
		}
	}
	// Slice messages only now: the arenas may have moved while they grew.
	start, qstart := 0, 0
	for i := range st.recs {
		r := &st.recs[i]
		r.Message = st.arena[start:st.offs[i]:st.offs[i]]
		start = st.offs[i]
		if r.Fields != nil { // the message is the record's JSON: its fields are inside the braces
			r.Fields = r.Message[1 : len(r.Message)-1 : len(r.Message)-1]
		}
		if in.quoteMessage {
			if end := st.qoffs[i]; end >= 0 {
				r.MessageJSON = st.qarena[qstart:end:end]
				qstart = end
			}
		}
	}
}

// appendMessage appends the CloudWatch message: the record as JSON, or the log_key value (a
// string as it is, anything else as JSON). A record without log_key is sent whole, counted and
// warned about, rather than dropped. fields says that the message is the whole record and that
// no top-level key starts with '@' or equals fieldsKey (see sink.Record.Fields). With
// in.quoteMessage the record's JSON also goes to qdst as a quoted JSON string, and quoted says so.
func (in *Instance) appendMessage(tr *event.Transcoder, dst, qdst []byte, ev *event.Event, fieldsKey string) (out, qout []byte, fields, quoted bool) {
	if in.logKey != nil {
		v := event.Lookup(ev.Record, in.logKey)
		switch v.Kind {
		case event.String, event.Binary:
			return append(dst, v.Bytes...), qdst, false, false
		case event.Missing:
			in.rep.Add("log_key_missing", 1)
			in.rep.Limited("log_key_missing", report.Warn, "log_key %q is missing in a record; sending the whole record instead", in.cfg.LogKey)
		default:
			if out, err := event.AppendJSON(dst, v.Raw); err == nil {
				return out, qdst, false, false
			}
		}
	}
	var err error
	if in.quoteMessage {
		out, qout, fields, err = tr.AppendJSONQuoted(dst, qdst, ev.Record, fieldsKey)
		quoted = err == nil
	} else {
		out, fields, err = tr.AppendJSONChecked(dst, ev.Record, fieldsKey)
		qout = qdst
	}
	if err != nil {
		// The decoder accepted the map, so this is only reachable through nesting limits:
		// send what we can say about it instead of losing the line.
		in.rep.Add("transcode_errors", 1)
		return fmt.Appendf(dst, `{"cwos_error":%q}`, err.Error()), qdst, false, false
	}
	return out, qout, fields, quoted
}

// pendingFor returns the records destination d has not settled: all of them on a first try (no
// copy), a fresh slice on a retried chunk (rare, and destinations run concurrently, so they
// cannot share one buffer).
func (st *flushState) pendingFor(e *ledger.Entry, d int) []sink.Record {
	if e.Remaining(d) == len(st.recs) {
		return st.recs
	}
	out := make([]sink.Record, 0, len(st.recs))
	for i := range st.recs {
		if !e.Done(d, st.recs[i].Seq) {
			out = append(out, st.recs[i])
		}
	}
	return out
}

// settler records each record's fate in the ledger and reports permanent rejections.
type settler struct {
	in    *Instance
	entry *ledger.Entry
	dest  int
	name  string
	tag   string
}

func (s *settler) Accepted(seq int) { s.entry.Mark(s.dest, seq) }

func (s *settler) Rejected(rec *sink.Record, why sink.Rejection) {
	s.entry.Mark(s.dest, rec.Seq)
	in := s.in
	in.rep.Add("rejected_"+s.name, 1)
	dl := ""
	if in.dlq != nil {
		body, err := event.AppendJSON(nil, rec.Raw)
		if err != nil {
			body = fmt.Appendf(nil, "%q", err.Error())
		}
		err = in.dlq.Write(&deadletter.Entry{Time: time.Now().UTC(), RecordTime: rec.Time, Tag: rec.Tag, Destination: why.Destination,
			Target: why.Target, Status: why.Status, Type: why.Type, Reason: why.Reason, Record: body})
		if err != nil {
			in.rep.Limited("dlq", report.Error, "cannot write dead letter: %v", err)
		} else {
			in.rep.Add("dead_lettered", 1)
			dl = " (written to dead_letter_file)"
		}
	}
	in.rep.Limited("reject:"+why.Destination+":"+why.Type+":"+why.Target, report.Warn, "%s%s", why.String(), dl)
}

// Close stops accepting flushes, lets in-flight ones finish within the exit grace, closes the
// destinations and reports what was not delivered (it stays in Fluent Bit's storage).
func (in *Instance) Close() {
	in.closed.Do(func() {
		in.mu.Lock()
		in.closing = true
		in.mu.Unlock()
		grace := in.cfg.ExitGrace
		done := make(chan struct{})
		go func() { in.flights.Wait(); close(done) }()
		timer := time.NewTimer(grace)
		select {
		case <-done:
		case <-timer.C:
			in.rep.Warnf("exit grace %s ran out with flushes in flight; cancelling them (their chunks stay in Fluent Bit's storage)", grace)
			in.cancel()
			<-done
		}
		timer.Stop()
		in.cancel()
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		for _, d := range in.dests {
			if err := d.Close(ctx); err != nil {
				in.rep.Warnf("%s: close: %v", d.Name(), err)
			}
		}
		if in.dlq != nil {
			in.dlq.Close()
		}
		if chunks, recs := in.ledger.Pending(); chunks > 0 {
			in.rep.Warnf("exiting with %d chunks (%d records) not fully delivered; Fluent Bit keeps them if storage.type is filesystem", chunks, recs)
		}
		in.rep.Infof("stopped: %s", in.rep.Summary())
	})
}
