package opensearch

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
	"github.com/cwos/cloudwatch-opensearch/internal/report"
	"github.com/cwos/cloudwatch-opensearch/internal/sink"
	"github.com/cwos/cloudwatch-opensearch/internal/testpeer/bulk"
)

// benchChunks returns n chunks of 1,000 Kubernetes records over 10 indices (2 namespaces x 5
// containers, one day).
func benchChunks(b *testing.B, n int) [][]sink.Record {
	out := make([][]sink.Record, n)
	for i := range out {
		out[i] = k8sRecords(b, uint64(100+i), 1000, chunkgen.Options{Namespaces: 2, Containers: 5}, 0)
	}
	return out
}

// BenchmarkBulkBody measures building the NDJSON of one 1,000-record chunk the way Deliver
// does (action line + cwl document per record into the pooled arena), and gzip on top.
func BenchmarkBulkBody(b *testing.B) {
	recs := benchChunks(b, 1)[0]
	for _, gz := range []bool{false, true} {
		name := "ndjson"
		if gz {
			name = "ndjson+gzip"
		}
		b.Run(name, func(b *testing.B) {
			cfg := parseCfg(b, "opensearch_endpoint", "http://127.0.0.1:9")
			cfg.OpenSearchCompress = gz
			d, err := New(context.Background(), cfg, report.New("bench", nil), WithOwner("123456789012"))
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close(context.Background())
			var ms0, ms1 runtime.MemStats
			body := 0
			run := func() {
				f := d.newFlight(context.Background(), recs, nopSettler{})
				if err := f.encode(); err != nil {
					b.Fatal(err)
				}
				body = len(f.arena.b)
				if gz {
					for i := range f.items {
						f.pending = append(f.pending, int32(i))
					}
					f.body(f.pending).owner.release()
				}
				f.release()
			}
			run() // warm the pools
			b.SetBytes(int64(body))
			b.ReportAllocs()
			runtime.ReadMemStats(&ms0)
			b.ResetTimer()
			for b.Loop() {
				run()
			}
			b.StopTimer()
			runtime.ReadMemStats(&ms1)
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(b.N)/float64(len(recs)), "allocs/record")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(recs)), "ns/record")
		})
	}
}

type nopSettler struct{}

func (nopSettler) Accepted(int)                          {}
func (nopSettler) Rejected(*sink.Record, sink.Rejection) {}

// BenchmarkEndpoint delivers 1,000-record chunks end to end over loopback to the _bulk test
// endpoint (which parses and checks every document): records/s and MB/s of NDJSON.
func BenchmarkEndpoint(b *testing.B) {
	chunks := benchChunks(b, 20)
	for _, gz := range []string{"off", "gzip"} {
		b.Run("compress="+gz, func(b *testing.B) {
			peer, err := bulk.Start(bulk.Options{DiscardSources: true})
			if err != nil {
				b.Fatal(err)
			}
			defer peer.Close()
			cfg := parseCfg(b, "opensearch_endpoint", peer.URL(), "opensearch_compress", gz, "max_inflight", "8")
			d, err := New(context.Background(), cfg, report.New("bench", nil))
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close(context.Background())
			n := 0
			b.ResetTimer()
			for b.Loop() {
				if n > 0 && n%len(chunks) == 0 {
					b.StopTimer()
					peer.Reset() // every pass stores fresh documents, no 409 shortcut
					b.StartTimer()
				}
				recs := chunks[n%len(chunks)]
				n++
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				err := d.Deliver(ctx, recs, nopSettler{})
				cancel()
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if n <= len(chunks) && peer.Count() != n*1000 {
				b.Fatalf("stored %d of %d", peer.Count(), n*1000)
			}
			secs := b.Elapsed().Seconds()
			b.ReportMetric(float64(n*1000)/secs, "records/s")
			b.ReportMetric(float64(n)*float64(chunkBytes(b, d, chunks[0]))/secs/1e6, "MB/s")
		})
	}
}

// chunkBytes is the NDJSON size of one chunk.
func chunkBytes(b *testing.B, d *Destination, recs []sink.Record) int {
	f := d.newFlight(context.Background(), recs, nopSettler{})
	defer f.release()
	if err := f.encode(); err != nil {
		b.Fatal(err)
	}
	return len(f.arena.b)
}
