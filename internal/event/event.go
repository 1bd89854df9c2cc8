// Package event reads the records of a Fluent Bit chunk straight from its msgpack bytes:
// v2 [[ts, meta], record] and legacy [ts, record] events, timestamps as ext type 0, integers or
// floats, group markers skipped. Keys are looked up lazily and records are transcoded to JSON
// without building maps.
//
// Everything works on the chunk's bytes in place: Decode returns records that alias the chunk,
// Lookup walks a path over a record's bytes, AppendJSON and AppendFields append to a caller's
// buffer, and IDGen reuses its state across flushes, so a flush allocates nothing per record.
// Malformed bytes are skipped and reported (*MalformedError, with the byte offset), never a
// panic: Fluent Bit hands us whatever its inputs wrote.
package event

import "time"

// Event is one log record of a chunk. Record aliases the chunk bytes.
type Event struct {
	Time   time.Time // UTC
	Record []byte    // the record map, msgpack
}

// ID is the deterministic document id of a record: 16 bytes of a hash of (tag, time in ns,
// record bytes, number of identical records before it in the chunk).
type ID [16]byte

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// IDLen is the length of an ID in its text form (unpadded base64url).
const IDLen = 22

// AppendText appends the id as 22 characters of unpadded base64url, safe in JSON and URLs.
func (id ID) AppendText(dst []byte) []byte {
	var buf [IDLen]byte
	n := 0
	for i := 0; i+3 <= 15; i += 3 {
		v := uint(id[i])<<16 | uint(id[i+1])<<8 | uint(id[i+2])
		buf[n] = idAlphabet[v>>18&0x3f]
		buf[n+1] = idAlphabet[v>>12&0x3f]
		buf[n+2] = idAlphabet[v>>6&0x3f]
		buf[n+3] = idAlphabet[v&0x3f]
		n += 4
	}
	v := uint(id[15])
	buf[n] = idAlphabet[v>>2]
	buf[n+1] = idAlphabet[(v&0x3)<<4]
	return append(dst, buf[:]...)
}

// String returns the text form of the id.
func (id ID) String() string { return string(id.AppendText(nil)) }
