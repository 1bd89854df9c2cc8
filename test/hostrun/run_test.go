package hostrun

import (
	"slices"
	"testing"
)

func TestProps(t *testing.T) {
	base := []string{"# c", "Name x", "Match *", "flush_timeout 1s"}
	cases := []struct {
		name  string
		extra []string
		want  string
	}{
		{"unchanged", nil, "# c\nName x\nMatch *\nflush_timeout 1s\n"},
		{"replace, any case", []string{"FLUSH_TIMEOUT 30s"}, "# c\nName x\nMatch *\nFLUSH_TIMEOUT 30s\n"},
		{"add", []string{"Workers 2"}, "# c\nName x\nMatch *\nflush_timeout 1s\nWorkers 2\n"},
		{"remove", []string{"match"}, "# c\nName x\nflush_timeout 1s\n"},
		{"in order", []string{"Workers 2", "workers 4", "Name"}, "# c\nMatch *\nflush_timeout 1s\nworkers 4\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Props(base, c.extra...); got != c.want {
				t.Errorf("Props = %q, want %q", got, c.want)
			}
		})
	}
	if base[1] != "Name x" {
		t.Error("Props changed its base")
	}
}

func TestLinesAndField(t *testing.T) {
	out := "init a rc=1\nflush a rc=2 tries=3 ms=10\nbflush a rc=-1 tries=1\nflush ab rc=0 tries=1\n"
	if got, want := Lines(out, "flush a "), []string{"flush a rc=2 tries=3 ms=10"}; !slices.Equal(got, want) {
		t.Fatalf("Lines = %q, want %q", got, want)
	}
	if got := Lines(out, "exit"); got != nil {
		t.Fatalf("Lines(exit) = %q, want none", got)
	}
	for _, c := range []struct {
		line, name string
		want       int
	}{
		{"flush a rc=2 tries=3 ms=10", "rc", 2},
		{"flush a rc=2 tries=3 ms=10", "tries", 3},
		{"flush a rc=2 tries=3 ms=10", "ms", 10},
		{"bflush a rc=-1 tries=1", "rc", -1},
		{"cflush a thread=1 chunk=x/a.bin xrc=9 rc=1 tries=1", "rc", 1}, // a whole word only
	} {
		if got := Field(t, c.line, c.name); got != c.want {
			t.Errorf("Field(%q, %q) = %d, want %d", c.line, c.name, got, c.want)
		}
	}
}

func TestTail(t *testing.T) {
	if got := Tail("abcdef", 10); got != "abcdef" {
		t.Errorf("Tail = %q", got)
	}
	if got := Tail("abcdef", 2); got != "...ef" {
		t.Errorf("Tail = %q", got)
	}
}
