package abi_test

import (
	"time"

	"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
)

// Chunks as Fluent Bit hands them over (FLUENT_BIT_ABI.md "Chunk bytes"): valid ones from
// internal/chunkgen, broken ones by hand.

// recent places records in the last day, so no destination could call them too old or too new:
// with every destination unreachable, the only possible outcome for them is FLB_RETRY.
func recent() chunkgen.Options {
	return chunkgen.Options{
		Namespaces: 2,
		Containers: 2,
		Start:      time.Now().UTC().Add(-25 * time.Hour),
		Days:       1,
	}
}

// v2Chunk is n Kubernetes records in Fluent Bit >= 2.1 form: [[time, {}], record].
func v2Chunk(n int) []byte {
	b, _ := chunkgen.K8sChunk(1, n, recent())
	return b
}

// legacyChunk is n records in the old form [seconds, record].
func legacyChunk(n int) []byte {
	o := recent()
	o.Legacy, o.TimeForm = true, chunkgen.TimeInt
	b, _ := chunkgen.K8sChunk(2, n, o)
	return b
}

// groupedChunk is n records wrapped in OpenTelemetry group start/end markers, 5 per group.
func groupedChunk(n int) []byte {
	o := recent()
	o.GroupEvery = 5
	b, _ := chunkgen.K8sChunk(3, n, o)
	return b
}

// markersOnly is a chunk that holds no log record at all: a group start and its end.
func markersOnly() []byte {
	b := chunkgen.AppendGroupStart(nil, map[string]any{"schema": "otlp"}, chunkgen.Map{{Key: "resource", Value: chunkgen.Map{}}})
	return chunkgen.AppendGroupEnd(b)
}

// garbage cannot be decoded at all: 0xc1 is never used by msgpack.
func garbage() []byte {
	b := make([]byte, 64)
	for i := range b {
		b[i] = 0xc1
	}
	return b
}

// notEvents is valid msgpack that is not an event: a string, then an empty map.
func notEvents() []byte {
	return append(chunkgen.AppendString(nil, "hello"), 0x80)
}

// truncated is a valid chunk cut in the middle of its last event: the events before the cut are
// decodable.
func truncated() []byte {
	b := v2Chunk(5)
	return b[:len(b)-7]
}
