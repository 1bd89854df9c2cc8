package template

import (
	"fmt"
	"hash/fnv"
	"strings"
	"testing"
	"unicode/utf8"
)

// hashed is the cut-and-hash rule computed independently: keep prefix, "-", 8 hex digits of the
// FNV-1a 32 hash of the full sanitized name.
func hashed(prefix, full string) string {
	h := fnv.New32a()
	h.Write([]byte(full))
	return fmt.Sprintf("%s-%08x", prefix, h.Sum32())
}

func TestSanitize(t *testing.T) {
	a600 := strings.Repeat("a", 600)
	e600 := strings.Repeat("é", 600)
	ae := "a" + strings.Repeat("é", 200) // 401 bytes; byte 246 is inside an é
	for _, tc := range []struct {
		kind Kind
		in   string
		want string
	}{
		// Group: outside [.\-_/#A-Za-z0-9] -> '-', 1-512 characters.
		{Group, "/aws/containerinsights/bys-dev-eks-main.aws-awssdk.iam-dev", "/aws/containerinsights/bys-dev-eks-main.aws-awssdk.iam-dev"},
		{Group, "/aws/a b:c*d#e_F.9", "/aws/a-b-c-d#e_F.9"},
		// The seed's rejected name becomes a name CloudWatch accepts.
		{Group, "/aws/containerinsights/bys-dev-eks-main/$(kubernetes['namespace_name'])", "/aws/containerinsights/bys-dev-eks-main/--kubernetes--namespace_name---"},
		{Group, "ns/é", "ns/-"}, // one character, one '-'
		{Group, "a\xffb", "a-b"},
		{Group, "", ""},
		{Group, strings.Repeat("g", 512), strings.Repeat("g", 512)},
		{Group, strings.Repeat("g", 513), hashed(strings.Repeat("g", 503), strings.Repeat("g", 513))},
		{Group, a600, hashed(a600[:503], a600)},
		{Group, strings.Repeat("é", 600), hashed(strings.Repeat("-", 503), strings.Repeat("-", 600))},
		// Stream: ':' and '*' -> '-', 1-512 characters.
		{Stream, "ip-10-0-1-23-kube.var.log:x*y", "ip-10-0-1-23-kube.var.log-x-y"},
		{Stream, "ünï cödé/ok#", "ünï cödé/ok#"},
		{Stream, "\xffa", "-a"},
		{Stream, "\uFFFD", "\uFFFD"}, // a real U+FFFD is a character, kept
		{Stream, strings.Repeat("é", 512), strings.Repeat("é", 512)},
		{Stream, e600, hashed(strings.Repeat("é", 503), e600)},
		{Stream, "", ""},
		// Index: lowercase, forbidden characters and whitespace -> '-', leading -_+ removed,
		// not . or .., at most 255 bytes.
		{Index, "CWL-Aws/x", "cwl-aws-x"},
		{Index, "a\\b/c*d?e\"f<g>h|i,j#k:l m\tn\no", "a-b-c-d-e-f-g-h-i-j-k-l-m-n-o"},
		{Index, "-_+abc", "abc"},
		{Index, "/aws", "aws"},
		{Index, " \u00a0x", "x"},
		{Index, "--", ""},
		{Index, ".", ""},
		{Index, "..", ""},
		{Index, "...", "..."},
		{Index, ".Hidden", ".hidden"},
		{Index, "ÄÖ-ΣX", "äö-σx"},
		{Index, "a\xffb", "a-b"},
		{Index, "\xffb", "b"},
		{Index, "a\u2003b", "a-b"}, // em space
		{Index, "", ""},
		{Index, strings.Repeat("x", 255), strings.Repeat("x", 255)},
		{Index, a600, hashed(a600[:246], a600)},
		{Index, strings.ToUpper(a600), hashed(a600[:246], a600)}, // hash of the sanitized name
		{Index, ae, hashed(ae[:245], ae)},                        // cut on a character boundary
	} {
		got := string(Sanitize(tc.kind, []byte("keep"), []byte(tc.in)))
		if got != "keep"+tc.want {
			t.Errorf("Sanitize(%v, %.40q) = %.80q, want %.80q", tc.kind, tc.in, got[4:], tc.want)
			continue
		}
		if tc.want == "" {
			continue
		}
		if err := Valid(tc.kind, tc.want); err != nil {
			t.Errorf("Sanitize(%v, %.40q) result not valid: %v", tc.kind, tc.in, err)
		}
		// Sanitizing is idempotent.
		if again := string(Sanitize(tc.kind, nil, []byte(tc.want))); again != tc.want {
			t.Errorf("Sanitize(%v) not idempotent: %.80q -> %.80q", tc.kind, tc.want, again)
		}
	}
}

func TestCutKeepsNamesDistinct(t *testing.T) {
	for _, k := range []Kind{Group, Stream, Index} {
		base := strings.Repeat("n", 700)
		a := string(Sanitize(k, nil, []byte(base+"a")))
		b := string(Sanitize(k, nil, []byte(base+"b")))
		if a == b {
			t.Errorf("%v: two long names cut to the same %q", k, a)
		}
		if a[:len(a)-8] != b[:len(b)-8] {
			t.Errorf("%v: prefixes differ", k)
		}
		limit := map[Kind]int{Group: 512, Stream: 512, Index: 255}[k]
		if utf8.RuneCountInString(a) != limit {
			t.Errorf("%v: cut name has %d characters, want %d", k, utf8.RuneCountInString(a), limit)
		}
	}
}

func TestValid(t *testing.T) {
	for _, tc := range []struct {
		kind Kind
		name string
		ok   bool
	}{
		{Group, "/aws/x", true},
		{Group, "a b", false},
		{Group, "", false},
		{Group, strings.Repeat("g", 513), false},
		{Group, "é", false},
		{Stream, "a b/é", true},
		{Stream, "a:b", false},
		{Stream, "a*b", false},
		{Stream, "", false},
		{Stream, "\xff", false},
		{Stream, strings.Repeat("é", 513), false},
		{Index, "cwl-a-2023.02.22", true},
		{Index, "A", false},
		{Index, "-a", false},
		{Index, "_a", false},
		{Index, "+a", false},
		{Index, ".", false},
		{Index, "..", false},
		{Index, "a b", false},
		{Index, "a#b", false},
		{Index, "a\u00a0b", false},
		{Index, "σ", true},
		{Index, "Σ", false},
		{Index, strings.Repeat("x", 256), false},
		{Index, "\xff", false},
		{Kind(9), "x", false},
	} {
		if err := Valid(tc.kind, tc.name); (err == nil) != tc.ok {
			t.Errorf("Valid(%v, %.30q) = %v, want ok=%v", tc.kind, tc.name, err, tc.ok)
		}
	}
}
