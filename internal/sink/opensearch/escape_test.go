package opensearch

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
	"github.com/cwos/cloudwatch-opensearch/internal/event"
)

// sameAsOld fails when event.AppendString and the reference escaper differ on s, as a string and as
// bytes, appending to a non-empty dst.
func sameAsOld(t *testing.T, s string) {
	t.Helper()
	want := appendStringOld([]byte("x"), s)
	if got := event.AppendString([]byte("x"), s); !bytes.Equal(got, want) {
		t.Fatalf("event.AppendString(%q) = %s, want %s", s, got, want)
	}
	if got := event.AppendString([]byte("x"), []byte(s)); !bytes.Equal(got, want) {
		t.Fatalf("event.AppendString([]byte %q) = %s, want %s", s, got, want)
	}
}

// TestAppendStringMatchesOld compares the escaper with the one it replaced: every byte value at
// every position of a word and around it, runs of plain bytes of every length, truncated and
// invalid UTF-8 sequences, U+2028, random bytes, and real cwl messages (record JSON).
func TestAppendStringMatchesOld(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pre := 0; pre <= 17; pre++ {
			for post := 0; post <= 9; post += 3 {
				sameAsOld(t, strings.Repeat("a", pre)+string([]byte{byte(c)})+strings.Repeat("b", post))
			}
		}
	}
	// Every byte after each byte that needs care, at every place in a word: a word trick that
	// flags a neighbour of a quote or a control byte by mistake shows here.
	for _, c1 := range []byte{'"', '\\', 0x00, 0x1f, 0x20, 0x7f, 0x80, 0xc3, 0xff} {
		for c2 := 0; c2 < 256; c2++ {
			for pre := 0; pre <= 8; pre++ {
				sameAsOld(t, strings.Repeat("a", pre)+string([]byte{c1, byte(c2)})+"tail-bytes")
				sameAsOld(t, strings.Repeat("\"", pre)+string([]byte{byte(c2), c1})+"\"\\x\"")
			}
		}
	}
	for _, s := range []string{
		"", "plain", strings.Repeat("x", 100), `{"log":"GET / \"x\"","k":"C:\\dir"}`,
		"é", "주문 처리", "\u2028\u2029", "\xe2\x80", "\xf0\x9f\x98", "\xf0\x9f\x98\x80", "\xc3", "\xc3(",
		"\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc0\xaf", "\x00\x1f\x7f\x80\xff", "ok\xffok\xfe\n\t\r\b\f",
		strings.Repeat("é\"", 20), strings.Repeat("abcdefg\\", 9),
		// Escapes that take more room than their bytes, so the output grows mid-string.
		strings.Repeat("\x01", 100), strings.Repeat("\xff", 100), strings.Repeat("a\x00\"\xfe", 50),
	} {
		sameAsOld(t, s)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("ab\"\\\n\t\x00\x1f\x7f\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80\xff")
	for n := 0; n < 3000; n++ {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			if rng.IntN(2) == 0 {
				b[i] = byte(rng.IntN(256))
			} else {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			}
		}
		sameAsOld(t, string(b))
	}
	// Into a buffer with room to spare, as the bulk body is.
	for _, s := range []string{strings.Repeat("\x01", 100), `{"a":"b\"c"}`, "plain text here"} {
		big := append(make([]byte, 0, 4096), "x"...)
		if got, want := event.AppendString(big, s), appendStringOld([]byte("x"), s); !bytes.Equal(got, want) {
			t.Fatalf("event.AppendString into a big buffer = %s, want %s", got, want)
		}
	}
	chunk, _ := chunkgen.K8sChunk(5, 300, chunkgen.Options{Namespaces: 3, Containers: 5})
	evs, _ := event.Decode(chunk, nil)
	for _, ev := range evs {
		msg, err := event.AppendJSON(nil, ev.Record)
		if err != nil {
			t.Fatal(err)
		}
		sameAsOld(t, string(msg))
	}
}

// FuzzAppendStringMatchesOld: the escaper writes what the one it replaced wrote.
func FuzzAppendStringMatchesOld(f *testing.F) {
	for _, s := range []string{"", `a"b\c`, "\xff\xfe", "é\u2028", "\x00\x7f", strings.Repeat("\xe2\x80", 9)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { sameAsOld(t, s) })
}

// BenchmarkAppendString escapes cwl @message values (record JSON), with the escaper it
// replaced as "old" for comparison.
func BenchmarkAppendString(b *testing.B) {
	chunk, _ := chunkgen.K8sChunk(1, 1000, chunkgen.Options{Namespaces: 4, Containers: 5})
	evs, _ := event.Decode(chunk, nil)
	var msgs [][]byte
	size := 0
	for _, ev := range evs {
		msg, _ := event.AppendJSON(nil, ev.Record)
		msgs = append(msgs, msg)
		size += len(msg)
	}
	for _, impl := range []struct {
		name string
		fn   func([]byte, []byte) []byte
	}{{"new", event.AppendString[[]byte]}, {"old", appendStringOld[[]byte]}} {
		b.Run(impl.name, func(b *testing.B) {
			buf := make([]byte, 0, 2*size)
			b.SetBytes(int64(size))
			for b.Loop() {
				buf = buf[:0]
				for _, m := range msgs {
					buf = impl.fn(buf, m)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(msgs)), "ns/message")
		})
	}
}
