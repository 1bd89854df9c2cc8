package template

import "github.com/cwos/cloudwatch-opensearch/internal/chunkgen"

// Records for tests, written by chunkgen's msgpack encoder. m and kv keep the literals short
// (go vet wants chunkgen.KV's fields named); maps keep their key order.

type kv struct {
	k string
	v any
}

type m []kv // an ordered map

type bin = chunkgen.Bin

func rec(v m) []byte { return chunkgen.AppendValue(nil, v.chunkgen()) }

func (v m) chunkgen() chunkgen.Map {
	out := make(chunkgen.Map, len(v))
	for i, e := range v {
		out[i] = chunkgen.KV{Key: e.k, Value: toChunkgen(e.v)}
	}
	return out
}

// toChunkgen turns the m values in v, at any depth, into chunkgen.Maps.
func toChunkgen(v any) any {
	switch v := v.(type) {
	case m:
		return v.chunkgen()
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = toChunkgen(e)
		}
		return out
	}
	return v
}
