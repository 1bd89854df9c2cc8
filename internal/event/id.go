package event

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
)

// IDGen computes the document ids of one flush's records (SPEC.md "_id"). Call Reset with the
// chunk's tag, then Next for each record in chunk order. The id hashes the record's time and
// bytes with how many identical records (same time, same bytes) came before it in the chunk, so
// a retried or re-read chunk gives every record the id it had, and identical log lines in one
// chunk stay distinct documents. An IDGen reuses its memory across Resets; it is not safe for
// concurrent use.
type IDGen struct {
	tag  string
	h    hash.Hash
	seen map[[16]byte]uint32 // inner digest prefix -> records seen with it
	hdr  [20]byte
	sum  [sha256.Size]byte
	buf  []byte
}

// Reset starts a new chunk with the given tag.
func (g *IDGen) Reset(tag string) {
	if g.h == nil {
		g.h = sha256.New()
		g.seen = make(map[[16]byte]uint32)
	}
	clear(g.seen)
	g.tag = tag
}

// Next returns the id of the next record of the chunk.
//
// id = SHA-256(inner || dup || len(tag) || tag)[:16], with
// inner = SHA-256(sec || nsec || len(record) || record) and every integer fixed-width big-endian,
// so no two different inputs frame to the same bytes. dup counts earlier records of the chunk
// with the same inner digest (its first 16 bytes key the count: a collision there could only
// bump a count, never make two different records share an id).
func (g *IDGen) Next(ev Event) ID {
	if g.h == nil {
		g.Reset(g.tag)
	}
	binary.BigEndian.PutUint64(g.hdr[0:], uint64(ev.Time.Unix()))
	binary.BigEndian.PutUint32(g.hdr[8:], uint32(ev.Time.Nanosecond()))
	binary.BigEndian.PutUint64(g.hdr[12:], uint64(len(ev.Record)))
	g.h.Reset()
	g.h.Write(g.hdr[:])
	g.h.Write(ev.Record)
	g.h.Sum(g.sum[:0])

	var k [16]byte
	copy(k[:], g.sum[:16])
	dup := g.seen[k]
	g.seen[k] = dup + 1

	b := append(g.buf[:0], g.sum[:]...)
	b = binary.BigEndian.AppendUint32(b, dup)
	b = binary.BigEndian.AppendUint64(b, uint64(len(g.tag)))
	b = append(b, g.tag...)
	g.buf = b
	full := sha256.Sum256(b)
	var id ID
	copy(id[:], full[:16])
	return id
}
