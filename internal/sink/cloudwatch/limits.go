package cloudwatch

import "time"

// Service limits of PutLogEvents, all in one place. Source: the PutLogEvents page of the Amazon
// CloudWatch Logs API Reference (also the doc comment of cloudwatchlogs.Client.PutLogEvents):
//
//   - "The maximum batch size is 1,048,576 bytes. This size is calculated as the sum of all event
//     messages in UTF-8, plus 26 bytes for each log event."
//   - "Each log event can be no larger than 1 MB." (256 KB before 2025; only MaxEventBytes changes
//     if AWS moves it again.)
//   - "The maximum number of log events in a batch is 10,000."
//   - "The log events in the batch must be in chronological order by their timestamp."
//   - "the time span in a single batch cannot exceed 24 hours."
//   - "Events older than 14 days or preceding the log group's retention period are rejected";
//     "Events more than 2 hours in the future are rejected".
//   - Messages must be at least one character long (InputLogEvent.message, min length 1).
const (
	MaxBatchEvents = 10_000
	MaxBatchBytes  = 1_048_576
	EventOverhead  = 26 // bytes counted per event on top of its message
	MaxEventBytes  = 1_048_576
	// MaxMessageBytes is the longest message we send: one event's limit minus its overhead, so
	// one maximal event exactly fills a batch.
	MaxMessageBytes = MaxEventBytes - EventOverhead

	MaxBatchSpan = 24 * time.Hour      // first to last event of one batch, inclusive
	MaxAge       = 14 * 24 * time.Hour // older events are rejected by the service
	MaxFuture    = 2 * time.Hour       // events further ahead are rejected by the service
)

const (
	maxBatchSpanMs = int64(MaxBatchSpan / time.Millisecond)
	maxAgeMs       = int64(MaxAge / time.Millisecond)
	maxFutureMs    = int64(MaxFuture / time.Millisecond)
)
