package bulk

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
)

// metaKeys are the action metadata OpenSearch accepts; anything else fails the request.
var metaKeys = map[string]bool{
	"_index": true, "_id": true, "routing": true, "pipeline": true, "require_alias": true,
	"if_seq_no": true, "if_primary_term": true, "version": true, "version_type": true,
	"retry_on_conflict": true, "_source": true, "dynamic_templates": true,
}

// bulk handles a _bulk body: decompress, check framing, run every action, answer.
func (s *Server) bulk(w http.ResponseWriter, r *http.Request, raw []byte, pathIndex string) {
	start := time.Now()
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	if mt != "application/json" && mt != "application/x-ndjson" {
		s.mu.Lock()
		s.violate("_bulk with Content-Type %q (OpenSearch requires application/json or application/x-ndjson)", ct)
		s.mu.Unlock()
		writeJSON(w, http.StatusNotAcceptable, appendJSON(nil, obj{{"error", fmt.Sprintf("Content-Type header [%s] is not supported", ct)}, {"status", 406}}))
		return
	}
	body := raw
	switch enc := strings.ToLower(r.Header.Get("Content-Encoding")); enc {
	case "":
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err == nil {
			body, err = io.ReadAll(io.LimitReader(zr, int64(s.maxBodyCap())+1))
		}
		if err != nil {
			s.mu.Lock()
			s.violate("_bulk with a broken gzip body: %v", err)
			s.mu.Unlock()
			writeJSON(w, http.StatusBadRequest, requestError(400, "parse_exception", "failed to decompress the request body: "+err.Error()))
			return
		}
		s.mu.Lock()
		s.stats.GzipRequests++
		s.mu.Unlock()
	default:
		s.mu.Lock()
		s.violate("_bulk with unsupported Content-Encoding %q", enc)
		s.mu.Unlock()
		writeJSON(w, http.StatusUnsupportedMediaType, requestError(415, "illegal_argument_exception", "unsupported content encoding "+enc))
		return
	}
	s.mu.Lock()
	maxBody := s.maxBody
	s.stats.BodyBytes += int64(len(body))
	s.mu.Unlock()
	if len(body) > maxBody {
		s.writeInjected(w, http.StatusRequestEntityTooLarge)
		return
	}
	if pathIndex != "" {
		if err := ValidIndexName(pathIndex); err != nil {
			s.mu.Lock()
			s.violate("_bulk path index: %v", err)
			s.mu.Unlock()
			writeJSON(w, http.StatusBadRequest, requestError(400, "invalid_index_name_exception", err.Error()))
			return
		}
	}
	if len(body) == 0 {
		s.mu.Lock()
		s.violate("_bulk with an empty body")
		s.mu.Unlock()
		writeJSON(w, http.StatusBadRequest, requestError(400, "action_request_validation_exception", "Validation Failed: 1: no requests added;"))
		return
	}
	if body[len(body)-1] != '\n' {
		s.mu.Lock()
		s.violate("_bulk body does not end with a newline")
		s.mu.Unlock()
		writeJSON(w, http.StatusBadRequest, requestError(400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]"))
		return
	}

	acts, perr := parseNDJSON(body, pathIndex)
	if perr != nil {
		s.mu.Lock()
		s.violate("_bulk framing: %v", perr)
		s.mu.Unlock()
		writeJSON(w, http.StatusBadRequest, requestError(400, "illegal_argument_exception", perr.Error()))
		return
	}

	items := make([]any, 0, len(acts))
	errorsSeen := false
	s.mu.Lock()
	for i := range acts {
		it := s.apply(&acts[i])
		if st := itemStatus(it); st >= 300 {
			errorsSeen = true
		}
		items = append(items, obj{{acts[i].action, it}})
	}
	s.mu.Unlock()

	resp := obj{{"took", int(time.Since(start).Milliseconds())}, {"errors", errorsSeen}, {"items", items}}
	out, _ := parseFilterPath(r.URL.Query().Get("filter_path")).apply(resp)
	if out == nil {
		out = obj{}
	}
	writeJSON(w, http.StatusOK, appendJSON(make([]byte, 0, 64+len(acts)*96), out))
}

func itemStatus(it obj) int {
	for _, f := range it {
		if f.k == "status" {
			return f.v.(int)
		}
	}
	return 0
}

type action struct {
	action string
	index  string
	id     string
	hasID  bool
	source []byte
	line   int
}

// parseNDJSON splits the body into actions, checking OpenSearch's framing: each line a JSON
// object with exactly one action key whose value is an object of known metadata, followed by
// a source line for index, create and update; no blank lines.
func parseNDJSON(body []byte, pathIndex string) ([]action, error) {
	var acts []action
	line := 0
	for len(body) > 0 {
		nl := bytes.IndexByte(body, '\n')
		meta := body[:nl]
		body = body[nl+1:]
		line++
		if len(bytes.TrimSpace(meta)) == 0 {
			return nil, fmt.Errorf("blank line %d: every line must be an action or a source", line)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(meta, &m); err != nil {
			return nil, fmt.Errorf("Malformed action/metadata line [%d], expected START_OBJECT: %v", line, err)
		}
		if len(m) != 1 {
			return nil, fmt.Errorf("Malformed action/metadata line [%d], expected a single action, found %d", line, len(m))
		}
		var a action
		var raw json.RawMessage
		for k, v := range m {
			a.action, raw = k, v
		}
		a.line = line
		switch a.action {
		case "index", "create", "update", "delete":
		default:
			return nil, fmt.Errorf("Malformed action/metadata line [%d], expected one of [create, delete, index, update] but found [%s]", line, a.action)
		}
		var md map[string]json.RawMessage
		if err := json.Unmarshal(raw, &md); err != nil || md == nil {
			return nil, fmt.Errorf("Malformed action/metadata line [%d], expected an object for [%s]", line, a.action)
		}
		for k := range md {
			if !metaKeys[k] {
				return nil, fmt.Errorf("Action/metadata line [%d] contains an unknown parameter [%s]", line, k)
			}
		}
		a.index = pathIndex
		if v, ok := md["_index"]; ok {
			if err := json.Unmarshal(v, &a.index); err != nil {
				return nil, fmt.Errorf("line [%d]: _index must be a string", line)
			}
		}
		if v, ok := md["_id"]; ok {
			if err := json.Unmarshal(v, &a.id); err != nil {
				return nil, fmt.Errorf("line [%d]: _id must be a string", line)
			}
			a.hasID = true
		}
		if a.index == "" {
			return nil, fmt.Errorf("Validation Failed: line [%d]: index is missing", line)
		}
		if a.action != "delete" {
			if len(body) == 0 {
				return nil, fmt.Errorf("line [%d]: %s action without a source line", line, a.action)
			}
			nl := bytes.IndexByte(body, '\n')
			a.source = body[:nl]
			body = body[nl+1:]
			line++
			if len(bytes.TrimSpace(a.source)) == 0 {
				return nil, fmt.Errorf("blank line %d: expected the source of the %s on line %d", line, a.action, line-1)
			}
		}
		acts = append(acts, a)
	}
	return acts, nil
}

// apply runs one action against the store and returns its response item. Called with s.mu
// held.
func (s *Server) apply(a *action) obj {
	s.stats.Items++
	fail := func(status int, errType, reason string) obj {
		return obj{{"_index", a.index}, {"_id", a.id}, {"status", status},
			{"error", errorObj(errType, reason, field{"index", a.index})}}
	}
	if err := ValidIndexName(a.index); err != nil {
		s.stats.RejectedOther++
		s.violate("item on line %d: %v", a.line, err)
		return fail(400, "invalid_index_name_exception", err.Error())
	}
	if a.hasID && (a.id == "" || len(a.id) > 512) {
		s.stats.RejectedOther++
		s.violate("item on line %d: _id of %d bytes", a.line, len(a.id))
		return fail(400, "action_request_validation_exception", "Validation Failed: 1: id is too long, must be no longer than 512 bytes but was: "+fmt.Sprint(len(a.id))+";")
	}
	switch a.action {
	case "update":
		s.stats.RejectedOther++
		s.violate("item on line %d: update action (the plugin only writes)", a.line)
		return fail(400, "action_request_validation_exception", "update is not supported by the test endpoint")
	case "delete":
		ix := s.indices[a.index]
		if ix == nil || !a.hasID {
			return obj{{"_index", a.index}, {"_id", a.id}, {"result", "not_found"}, {"status", 404}}
		}
		if _, ok := ix.docs[a.id]; !ok {
			return obj{{"_index", a.index}, {"_id", a.id}, {"result", "not_found"}, {"status", 404}}
		}
		delete(ix.docs, a.id)
		return obj{{"_index", a.index}, {"_id", a.id}, {"result", "deleted"}, {"status", 200}}
	}
	if err := CheckDocument(a.source); err != nil {
		s.stats.RejectedMapper++
		s.violate("item on line %d (%s/%s): invalid document: %v", a.line+1, a.index, a.id, err)
		return fail(400, "mapper_parsing_exception", "failed to parse: "+err.Error())
	}
	ix := s.indices[a.index]
	if ix == nil {
		if s.opts.AutoCreateIndex != nil && !s.opts.AutoCreateIndex(a.index) {
			s.stats.RejectedMissing++
			return fail(404, "index_not_found_exception", "no such index ["+a.index+"]")
		}
	}
	if s.item429 > 0 && s.rng.Float64() < s.item429 {
		s.stats.Rejected429++
		return fail(429, "rejected_execution_exception", "rejected execution of processing of [bulk] on OpenSearchThreadPoolExecutor[name = node-1/write, queue capacity = 10000, active threads = 8, queued tasks = 10000]")
	}
	if s.itemFault != nil {
		if st, typ, reason := s.itemFault(Item{Action: a.action, Index: a.index, ID: a.id, Source: a.source}); st != 0 {
			s.stats.RejectedOther++
			return fail(st, typ, reason)
		}
	}
	if !a.hasID {
		a.id = s.autoID()
	}
	var existing doc
	var exists bool
	if ix != nil {
		existing, exists = ix.docs[a.id]
	}
	if a.action == "create" && exists {
		s.stats.Duplicates++
		return obj{{"_index", a.index}, {"_id", a.id}, {"status", 409}, {"error", errorObj("version_conflict_engine_exception",
			fmt.Sprintf("[%s]: version conflict, document already exists (current version [%d])", a.id, existing.version),
			field{"index", a.index}, field{"shard", "0"}, field{"index_uuid", "aBcDeFgHiJkLmNoPqRsTuV"})}}
	}
	if s.mapperMatch != nil && s.mapperMatch(a.index, a.source) {
		s.stats.RejectedMapper++
		return obj{{"_index", a.index}, {"_id", a.id}, {"status", 400}, {"error", errorObj("mapper_parsing_exception",
			fmt.Sprintf("failed to parse field [%s] of type [long] in document with id '%s'. Preview of field's value: 'not-a-number'", s.mapperField, a.id),
			field{"caused_by", errorObj("illegal_argument_exception", `For input string: "not-a-number"`)})}}
	}
	if ix == nil {
		ix = &index{docs: map[string]doc{}}
		s.indices[a.index] = ix
	}
	d := doc{version: existing.version + 1}
	if !s.opts.DiscardSources {
		d.src = bytes.Clone(a.source)
	}
	ix.docs[a.id] = d
	seq := ix.seq
	ix.seq++
	result, status := "created", 201
	if exists {
		result, status = "updated", 200
		s.stats.Updated++
	} else {
		s.stats.Created++
	}
	return obj{{"_index", a.index}, {"_id", a.id}, {"_version", d.version}, {"result", result},
		{"_shards", obj{{"total", 2}, {"successful", 1}, {"failed", 0}}},
		{"_seq_no", seq}, {"_primary_term", 1}, {"status", status}}
}

// autoID makes a 20-character id like OpenSearch's time-based UUIDs.
func (s *Server) autoID() string {
	s.nextID++
	var b [15]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixNano()))
	binary.BigEndian.PutUint64(b[7:], s.nextID)
	return base64.RawURLEncoding.EncodeToString(b[:])
}
