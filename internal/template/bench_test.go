package template

import (
	"bytes"
	"testing"

	"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
	"github.com/cwos/cloudwatch-opensearch/internal/event"
	"github.com/cwos/cloudwatch-opensearch/internal/report"
)

// BenchmarkNames: the three names of each of 1,000 realistic Kubernetes records (8 namespaces x
// 8 containers), the seed's group template and the Lambda index, as one flush computes them.
func BenchmarkNames(b *testing.B) {
	chunk, _ := chunkgen.K8sChunk(1, 1000, chunkgen.Options{Namespaces: 8, Containers: 8})
	events, st := event.Decode(chunk, nil)
	if st.Events != 1000 || st.Err != nil {
		b.Fatalf("decode: %+v", st)
	}
	for _, bc := range []struct {
		name string
		o    NamerOptions
	}{
		{"seed", NamerOptions{
			Group: MustCompile(seedTemplate, Group), GroupName: seedGroup,
			StreamPrefix: "ip-10-0-1-23-", Index: MustCompile(LambdaIndex, Index),
		}},
		{"aws_form_stream_template", NamerOptions{
			Group:  MustCompile("/aws/eks/$(kubernetes['namespace_name'])/$(kubernetes['container_name'])", Group),
			Stream: MustCompile("$(kubernetes['pod_name'])/$(kubernetes['docker_id'])", Stream), GroupName: seedGroup,
			StreamPrefix: "p-", Index: MustCompile("logs-$kubernetes['namespace_name']-%Y.%m.%d", Index),
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			bc.o.Report = report.New("bench", &bytes.Buffer{})
			n := NewNamer(bc.o)
			var s Scratch
			for i := range events { // warm the intern table
				n.Names(&s, &events[i], seedTag)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				for i := range events {
					n.Names(&s, &events[i], seedTag)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(events)), "ns/record")
			if f := bc.o.Report.Count(CounterFallbackGroup) + bc.o.Report.Count(CounterFallbackIndex); f != 0 {
				b.Fatalf("%d fallbacks: the benchmark must measure rendered names", f)
			}
		})
	}
}
