package template

import (
	"encoding/binary"
	"math"
)

// A tiny msgpack encoder for building records in tests. Maps keep their key order.

type kv struct {
	k string
	v any
}

type m []kv // an ordered map

type bin []byte

func enc(dst []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(dst, 0xc0)
	case bool:
		if v {
			return append(dst, 0xc3)
		}
		return append(dst, 0xc2)
	case int:
		return encInt(dst, int64(v))
	case int64:
		return encInt(dst, v)
	case uint64:
		return binary.BigEndian.AppendUint64(append(dst, 0xcf), v)
	case float64:
		return binary.BigEndian.AppendUint64(append(dst, 0xcb), math.Float64bits(v))
	case float32:
		return binary.BigEndian.AppendUint32(append(dst, 0xca), math.Float32bits(v))
	case string:
		return append(binary.BigEndian.AppendUint32(append(dst, 0xdb), uint32(len(v))), v...)
	case bin:
		return append(binary.BigEndian.AppendUint32(append(dst, 0xc6), uint32(len(v))), v...)
	case []any:
		dst = binary.BigEndian.AppendUint32(append(dst, 0xdd), uint32(len(v)))
		for _, e := range v {
			dst = enc(dst, e)
		}
		return dst
	case m:
		dst = binary.BigEndian.AppendUint32(append(dst, 0xdf), uint32(len(v)))
		for _, e := range v {
			dst = enc(dst, e.k)
			dst = enc(dst, e.v)
		}
		return dst
	}
	panic("enc: unsupported type")
}

func encInt(dst []byte, v int64) []byte {
	switch {
	case v >= 0 && v < 128:
		return append(dst, byte(v))
	case v < 0 && v >= -32:
		return append(dst, byte(v))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xd3), uint64(v))
}

func rec(v m) []byte { return enc(nil, v) }
