package event

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestAppendString pins the escaping rules AppendString documents, for strings and byte slices,
// appending to an empty dst and to a dst with spare room (where it may leave scratch bytes).
func TestAppendString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"plain", `"plain"`},
		{"exactly8", `"exactly8"`},
		{`q"b\`, `"q\"b\\"`},
		{"\n\r\t\b\f", `"\n\r\t\b\f"`},
		{"\x00\x01\x1f\x7f", "\"\\u0000\\u0001\\u001f\x7f\""},
		{"<&> 주문 ✓", `"<&> 주문 ✓"`},
		{"a\u2028b\u2029c", `"a\u2028b\u2029c"`},
		{"bad\xffutf8\xc3", "\"bad\uFFFDutf8\uFFFD\""},
		{"\xe2\x80\xa8\xe2\x80", "\"\\u2028\uFFFD\uFFFD\""}, // a cut U+2028 is two bad bytes
		{"\xed\xa0\x80", "\"\uFFFD\uFFFD\uFFFD\""},          // surrogates are not UTF-8
		{strings.Repeat(`ab"\`, 5), `"` + strings.Repeat(`ab\"\\`, 5) + `"`},
	}
	for _, tt := range tests {
		for _, dst := range [][]byte{nil, append(make([]byte, 0, 256), "x"...)} {
			prefix := string(dst)
			if got := string(AppendString(dst, tt.in)); got != prefix+tt.want {
				t.Errorf("AppendString(%q, %q) = %s, want %s", prefix, tt.in, got, prefix+tt.want)
			}
			if got := string(AppendString(dst, []byte(tt.in))); got != prefix+tt.want {
				t.Errorf("AppendString(%q, []byte %q) = %s, want %s", prefix, tt.in, got, prefix+tt.want)
			}
		}
	}
}

// TestAppendStringMatchesAppendJSON: msgpack strings go through the same escaper in AppendJSON,
// as values and as keys.
func TestAppendStringMatchesAppendJSON(t *testing.T) {
	for _, s := range []string{"", "k", "a\"b\\c\n", "é\u2028\xff", strings.Repeat("x\x01", 40)} {
		str := append([]byte{0xd9, byte(len(s))}, s...)
		got, err := AppendJSON(nil, str)
		if err != nil {
			t.Fatal(err)
		}
		if want := AppendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("AppendJSON(str %q) = %s, AppendString says %s", s, got, want)
		}
		m := append([]byte{0x81}, str...)
		m = append(m, 0xc0)
		got, err = AppendJSON(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		if want := "{" + string(AppendString(nil, s)) + ":null}"; string(got) != want {
			t.Errorf("AppendJSON(map key %q) = %s, want %s", s, got, want)
		}
		var back string
		if err := json.Unmarshal(AppendString(nil, s), &back); err != nil || back != string([]rune(s)) {
			t.Errorf("AppendString(%q) reads back as %q, %v", s, back, err)
		}
	}
}
