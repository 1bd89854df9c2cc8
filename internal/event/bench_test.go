//go:build unix

package event

import (
	"syscall"
	"testing"

	"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
)

const benchRecords = 1000

func benchChunk(b *testing.B) ([]byte, []Event) {
	chunk, _ := chunkgen.K8sChunk(1, benchRecords, chunkgen.Options{Namespaces: 4, Containers: 5, Days: 2})
	evs, st := Decode(chunk, nil)
	if st.Events != benchRecords {
		b.Fatalf("stats %+v", st)
	}
	return chunk, evs
}

// cpuNow is the CPU time this process has used. On a busy shared machine wall time includes
// waiting for a core; CPU time is what the code costs.
func cpuNow() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// perRecord reports ns/record, CPU ns/record and records/s next to the per-op (per-chunk)
// figures. cpu0 is cpuNow() taken before the loop.
func perRecord(b *testing.B, cpu0 int64) {
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / benchRecords
	b.ReportMetric(ns, "ns/record")
	b.ReportMetric(float64(cpuNow()-cpu0)/float64(b.N)/benchRecords, "cpu-ns/record")
	b.ReportMetric(1e9/ns, "records/s")
}

func BenchmarkDecode(b *testing.B) {
	chunk, evs := benchChunk(b)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	cpu0 := cpuNow()
	for b.Loop() {
		evs, _ = Decode(chunk, evs)
	}
	perRecord(b, cpu0)
}

func BenchmarkLookup(b *testing.B) {
	chunk, evs := benchChunk(b)
	paths := [][]PathElem{
		{{Key: "kubernetes"}, {Key: "namespace_name"}},
		{{Key: "kubernetes"}, {Key: "container_name"}},
	}
	buf := make([]byte, 0, 256)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	cpu0 := cpuNow()
	for b.Loop() {
		for i := range evs {
			buf = buf[:0]
			for _, p := range paths {
				buf, _ = Lookup(evs[i].Record, p).AppendText(buf)
			}
		}
	}
	perRecord(b, cpu0)
}

func BenchmarkAppendJSON(b *testing.B) {
	chunk, evs := benchChunk(b)
	buf := make([]byte, 0, 4096)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	cpu0 := cpuNow()
	for b.Loop() {
		for i := range evs {
			buf, _ = AppendJSON(buf[:0], evs[i].Record)
		}
	}
	perRecord(b, cpu0)
}

// BenchmarkDecodeAppendJSON is the per-record work of a flush before names and ids.
func BenchmarkDecodeAppendJSON(b *testing.B) {
	chunk, evs := benchChunk(b)
	buf := make([]byte, 0, 4096)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	cpu0 := cpuNow()
	for b.Loop() {
		evs, _ = Decode(chunk, evs)
		for i := range evs {
			buf, _ = AppendJSON(buf[:0], evs[i].Record)
		}
	}
	perRecord(b, cpu0)
}

func BenchmarkIDGen(b *testing.B) {
	chunk, evs := benchChunk(b)
	var g IDGen
	var id ID
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	cpu0 := cpuNow()
	for b.Loop() {
		g.Reset("kube.var.log.containers.app")
		for i := range evs {
			id = g.Next(evs[i])
		}
	}
	_ = id
	perRecord(b, cpu0)
}
