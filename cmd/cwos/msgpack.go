package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// maxDepth bounds nesting of sample records.
const maxDepth = 256

// recordFromJSON converts one JSON sample into the msgpack record map the plugin receives from
// Fluent Bit, keeping key order and repeated keys, and integers exact. A sample is an object, or
// Fluent Bit's [time, object] event form, whose time (seconds, may be fractional) then wins.
func recordFromJSON(data []byte) (rec []byte, t time.Time, hasTime bool, err error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, t, false, jsonErr(err)
	}
	switch tok {
	case json.Delim('{'):
		rec, err = appendObject(nil, dec, 1)
	case json.Delim('['):
		tok, err = dec.Token()
		if err != nil {
			return nil, t, false, jsonErr(err)
		}
		n, ok := tok.(json.Number)
		if !ok {
			return nil, t, false, errors.New("expected a record object or [time, record]")
		}
		f, perr := strconv.ParseFloat(string(n), 64)
		if perr != nil || f < 0 || f > 1e11 {
			return nil, t, false, fmt.Errorf("invalid event time %s", n)
		}
		sec, frac := math.Modf(f)
		t, hasTime = time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), true
		if tok, err = dec.Token(); err != nil {
			return nil, t, false, jsonErr(err)
		}
		if tok != json.Delim('{') {
			return nil, t, false, errors.New("expected a record object after the event time")
		}
		if rec, err = appendObject(nil, dec, 1); err != nil {
			return nil, t, false, err
		}
		if tok, err = dec.Token(); err != nil || tok != json.Delim(']') {
			return nil, t, false, errors.New("expected ] after [time, record]")
		}
	default:
		return nil, t, false, errors.New("expected a record object or [time, record]")
	}
	if err != nil {
		return nil, t, false, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, t, false, errors.New("unexpected data after the record")
	}
	return rec, t, hasTime, nil
}

func jsonErr(err error) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("invalid JSON: unexpected end")
	}
	return fmt.Errorf("invalid JSON: %v", err)
}

// appendObject encodes the rest of an object whose '{' was read.
func appendObject(dst []byte, dec *json.Decoder, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, errors.New("record nested too deeply")
	}
	var body []byte
	n := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonErr(err)
		}
		if tok == json.Delim('}') {
			break
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("invalid JSON: object key is not a string")
		}
		body = appendStr(body, key)
		if body, err = appendValue(body, dec, depth); err != nil {
			return nil, err
		}
		n++
	}
	dst = append(dst, 0xdf)
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	return append(dst, body...), nil
}

func appendValue(dst []byte, dec *json.Decoder, depth int) ([]byte, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonErr(err)
	}
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return appendObject(dst, dec, depth+1)
		}
		if v != '[' {
			return nil, fmt.Errorf("invalid JSON: unexpected %v", v)
		}
		if depth+1 > maxDepth {
			return nil, errors.New("record nested too deeply")
		}
		var body []byte
		n := 0
		for dec.More() {
			if body, err = appendValue(body, dec, depth+1); err != nil {
				return nil, err
			}
			n++
		}
		if _, err := dec.Token(); err != nil {
			return nil, jsonErr(err)
		}
		dst = append(dst, 0xdd)
		dst = binary.BigEndian.AppendUint32(dst, uint32(n))
		return append(dst, body...), nil
	case string:
		return appendStr(dst, v), nil
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return binary.BigEndian.AppendUint64(append(dst, 0xd3), uint64(i)), nil
		}
		if u, err := strconv.ParseUint(string(v), 10, 64); err == nil {
			return binary.BigEndian.AppendUint64(append(dst, 0xcf), u), nil
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return nil, fmt.Errorf("invalid number %s", v)
		}
		return binary.BigEndian.AppendUint64(append(dst, 0xcb), math.Float64bits(f)), nil
	case bool:
		if v {
			return append(dst, 0xc3), nil
		}
		return append(dst, 0xc2), nil
	case nil:
		return append(dst, 0xc0), nil
	}
	return nil, fmt.Errorf("invalid JSON token %v", tok)
}

func appendStr(dst []byte, s string) []byte {
	dst = append(dst, 0xdb)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}
