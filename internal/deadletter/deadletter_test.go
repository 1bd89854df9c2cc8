package deadletter

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func readLines(t *testing.T, path string) []Entry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Entry
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

func TestWriteAndRotate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dlq.jsonl")
	w, err := Open(path, 2000)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			err := w.Write(&Entry{Time: time.Unix(int64(i), 0).UTC(), Destination: "opensearch", Target: "cwl-x", Status: 400,
				Type: "mapper_parsing_exception", Reason: "failed to parse field [n]", Record: json.RawMessage(`{"n":"x"}`)})
			if err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	cur, old := readLines(t, path), readLines(t, path+".1")
	for _, p := range []string{path, path + ".1"} {
		if st, _ := os.Stat(p); st.Size() > 2000 {
			t.Fatalf("%s is %d bytes, over the 2000-byte cap", p, st.Size())
		}
	}
	if len(cur) == 0 || len(old) == 0 {
		t.Fatalf("expected a rotation: %d current, %d rotated lines", len(cur), len(old))
	}
	if cur[0].Type != "mapper_parsing_exception" || string(cur[0].Record) != `{"n":"x"}` {
		t.Fatalf("entry not kept as written: %+v", cur[0])
	}
}

func TestOpenFailsClearly(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "missing-dir", "x.jsonl"), 0)
	if err == nil {
		t.Fatal("Open of a file in a missing directory succeeded")
	}
}
