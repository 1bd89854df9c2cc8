package cloudwatch

import (
	"time"

	"github.com/cwos/cloudwatch-opensearch/internal/sink"
)

// Planner exposes Deliver's partitioning and batching without sending, for the plugin-wide
// hot-path benchmark and for tools. It is not safe for concurrent use; reuse one per goroutine.
type Planner struct{ p *plan }

// NewPlanner returns a Planner.
func NewPlanner() *Planner { return &Planner{p: newPlan()} }

// Plan partitions recs by (group, stream) and cuts them into PutLogEvents batches as Deliver
// would at time now. It returns the number of requests and of records left out (empty, too old,
// too new).
func (pl *Planner) Plan(recs []sink.Record, now time.Time) (requests, rejected int) {
	pl.p.build(recs, now.UnixMilli())
	return len(pl.p.batches), len(pl.p.rejects)
}
