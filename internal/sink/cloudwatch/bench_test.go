package cloudwatch

import (
	"context"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/cwos/cloudwatch-opensearch/internal/config"
	"github.com/cwos/cloudwatch-opensearch/internal/report"
	"github.com/cwos/cloudwatch-opensearch/internal/sink"
	"github.com/cwos/cloudwatch-opensearch/internal/testpeer/moto"
)

// BenchmarkBatch plans 1,000-record chunks interleaved over 20 streams and builds every
// PutLogEvents request: what happens per chunk before the network. It reports batches built per
// second, allocations and ns per record, and the requests per chunk next to what flushing on
// every stream change (Fluent Bit's C plugin) would send for the same chunk.
func BenchmarkBatch(b *testing.B) {
	g := gen{groups: 4, streams: 5, size: 300, base: time.Now().Add(-time.Hour)}
	recs := g.records(0, 1000)
	changes := 1
	for i := 1; i < len(recs); i++ {
		if recs[i].Group != recs[i-1].Group || recs[i].Stream != recs[i-1].Stream {
			changes++
		}
	}
	p := newPlan()
	nowMs := time.Now().UnixMilli()
	batches := 0
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p.build(recs, nowMs)
		for i := range p.batches {
			bt := &p.batches[i]
			if in := p.input(bt.stream, bt.lo, bt.hi, recs); len(in.LogEvents) == 0 {
				b.Fatal("empty batch")
			}
		}
		batches += len(p.batches)
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	records := float64(b.N) * float64(len(recs))
	b.ReportMetric(float64(batches)/b.Elapsed().Seconds(), "batches/s")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/records, "allocs/record")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/records, "ns/record")
	b.ReportMetric(float64(batches)/float64(b.N), "requests/chunk")
	b.ReportMetric(float64(changes), "flush-on-change-requests/chunk")
}

// BenchmarkMoto delivers 10,000-record chunks over 20 existing streams to moto_server on
// loopback (no proxy) and reports records per second. moto, a Python process, is the
// bottleneck: this is a regression figure for the whole send path, not a CloudWatch estimate.
func BenchmarkMoto(b *testing.B) {
	srv := moto.Start(b)
	moto.Env(b)
	cfg := &config.Config{
		Region: moto.Region, CloudWatch: true, AutoCreateGroup: true, AutoCreateStream: true,
		CloudWatchEndpoint: srv.URL, RequestTimeout: 30 * time.Second, MaxInflight: 8,
	}
	d, err := New(context.Background(), cfg, report.New("bench", io.Discard))
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close(context.Background())
	g := gen{groups: 4, streams: 5, size: 300, base: time.Now().Add(-time.Hour)}
	const per = 10_000
	recs := g.records(0, per)
	deliver := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := d.Deliver(ctx, recs, nopSettler{}); err != nil {
			b.Fatal(err)
		}
	}
	deliver() // create the groups and streams
	b.ResetTimer()
	for b.Loop() {
		deliver()
	}
	b.ReportMetric(float64(b.N*per)/b.Elapsed().Seconds(), "records/s")
}

type nopSettler struct{}

func (nopSettler) Accepted(int)                          {}
func (nopSettler) Rejected(*sink.Record, sink.Rejection) {}
