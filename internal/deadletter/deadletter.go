// Package deadletter writes records that a destination rejected for good to a JSON-lines file,
// so nothing is dropped silently (DESIGN.md, promise 4). The file is size-capped: when a write
// would pass the cap it is renamed to FILE.1 (replacing the previous one) and a new file starts,
// so at most twice the cap is used on disk.
package deadletter

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

// Entry is one line of the file.
type Entry struct {
	Time        time.Time       `json:"time"`        // when it was rejected
	RecordTime  time.Time       `json:"record_time"` // the record's own time
	Tag         string          `json:"tag"`
	Destination string          `json:"destination"`
	Target      string          `json:"target"` // group/stream or index
	Status      int             `json:"status,omitempty"`
	Type        string          `json:"type"`
	Reason      string          `json:"reason"`
	Record      json.RawMessage `json:"record"` // the record as JSON
}

// Writer appends entries; it is safe for concurrent use.
type Writer struct {
	path string
	max  int64

	mu   sync.Mutex
	f    *os.File
	size int64
}

// Open opens (creating) the file for appending. max <= 0 means no cap.
func Open(path string, max int64) (*Writer, error) {
	w := &Writer{path: path, max: max}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Writer) open() error {
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("dead_letter_file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("dead_letter_file: %w", err)
	}
	w.f, w.size = f, st.Size()
	return nil
}

// Write appends one entry, rotating first if the cap would be passed.
func (w *Writer) Write(e *Entry) error {
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("dead letter: %w", err)
	}
	line = append(line, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return fmt.Errorf("dead letter: %s is closed", w.path)
	}
	if w.max > 0 && w.size > 0 && w.size+int64(len(line)) > w.max {
		w.f.Close()
		w.f = nil
		if err := os.Rename(w.path, w.path+".1"); err != nil {
			return fmt.Errorf("dead letter rotate: %w", err)
		}
		if err := w.open(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(line)
	w.size += int64(n)
	if err != nil {
		return fmt.Errorf("dead letter: %w", err)
	}
	return nil
}

// Close closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}
