package opensearch

import (
	"encoding/binary"
	"math/bits"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cwos/cloudwatch-opensearch/internal/config"
	"github.com/cwos/cloudwatch-opensearch/internal/event"
	"github.com/cwos/cloudwatch-opensearch/internal/sink"
)

// The fields the CloudWatch -> OpenSearch Lambda (LogsToElasticsearch) added to every document,
// in its order. A record field with one of these names is replaced by ours.
const (
	fieldID        = "@id"
	fieldTimestamp = "@timestamp"
	fieldMessage   = "@message"
	fieldOwner     = "@owner"
	fieldLogGroup  = "@log_group"
	fieldLogStream = "@log_stream"
)

// encoder writes one _bulk item (action line + source line) per record, straight into the
// request buffer: no maps, no intermediate JSON, no allocation per record.
type encoder struct {
	cwl     bool
	useID   bool
	owner   string // AWS account id for @owner; "" leaves @owner out
	timeKey string // record documents: the time field, "" for none
	skip    []string

	// r.Fields (checked for '@' keys and r.FieldsKey) can stand in for AppendFields with skip
	// when every skip key starts with '@', or when the one that does not equals r.FieldsKey.
	keyed     bool
	fieldsKey string
}

func newEncoder(cfg *config.Config, owner string) *encoder {
	e := &encoder{cwl: cfg.OpenSearchDocument != config.DocumentRecord, useID: cfg.OpenSearchID, owner: owner, timeKey: cfg.TimeKey}
	if e.cwl {
		e.skip = []string{fieldID, fieldTimestamp, fieldMessage, fieldLogGroup, fieldLogStream}
		if owner != "" {
			e.skip = append(e.skip, fieldOwner)
		}
	} else if e.timeKey != "" {
		e.skip = []string{e.timeKey}
	}
	for _, k := range e.skip {
		if !strings.HasPrefix(k, "@") {
			e.keyed, e.fieldsKey = true, k
		}
	}
	return e
}

// appendItem appends r's action line and source line. ok is false when the record's fields
// could not be transcoded (nesting beyond the limit): the document then carries only our
// fields, so the line is still delivered and findable by @message.
func (e *encoder) appendItem(dst []byte, r *sink.Record) (out []byte, ok bool) {
	if e.useID {
		dst = append(dst, `{"create":{"_index":`...)
		dst = appendString(dst, r.Index)
		dst = append(dst, `,"_id":"`...)
		dst = r.ID.AppendText(dst)
		dst = append(dst, "\"}}\n{"...)
	} else {
		dst = append(dst, `{"index":{"_index":`...)
		dst = appendString(dst, r.Index)
		dst = append(dst, "}}\n{"...)
	}
	ok = true
	var n int
	if r.Fields != nil && (!e.keyed || r.FieldsKey == e.fieldsKey) {
		// The orchestration already transcoded the record and none of its keys is one we skip.
		dst, n = append(dst, r.Fields...), len(r.Fields)
	} else {
		var err error
		if dst, n, err = event.AppendFields(dst, r.Raw, e.skip); err != nil {
			ok, n = false, 0
		}
	}
	if e.cwl {
		if n > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `"@id":"`...)
		dst = r.ID.AppendText(dst)
		dst = append(dst, `","@timestamp":"`...)
		dst = appendTime(dst, r.Time)
		dst = append(dst, `","@message":`...)
		dst = appendString(dst, r.Message)
		if e.owner != "" {
			dst = append(dst, `,"@owner":`...)
			dst = appendString(dst, e.owner)
		}
		dst = append(dst, `,"@log_group":`...)
		dst = appendString(dst, r.Group)
		dst = append(dst, `,"@log_stream":`...)
		dst = appendString(dst, r.Stream)
	} else if e.timeKey != "" {
		if n > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, e.timeKey)
		dst = append(dst, `:"`...)
		dst = appendTime(dst, r.Time)
		dst = append(dst, '"')
	}
	return append(dst, "}\n"...), ok
}

// appendTime writes t as ISO 8601 UTC with milliseconds, as JavaScript's toISOString (and so
// the Lambda) did: 2023-02-22T01:02:03.456Z.
func appendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	y, mo, d := t.Date()
	if y < 0 || y > 9999 {
		return t.AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	}
	h, mi, s := t.Clock()
	ms := t.Nanosecond() / 1e6
	return append(dst,
		byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+int(mo)/10), byte('0'+int(mo)%10), '-',
		byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+h/10), byte('0'+h%10), ':',
		byte('0'+mi/10), byte('0'+mi%10), ':',
		byte('0'+s/10), byte('0'+s%10), '.',
		byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}

// escapes says what appendString does with each byte: 0 copies it as it is, 1 starts a UTF-8
// sequence to check, anything else is the letter after the backslash ('u' for \u00XX).
var escapes = func() (t [256]byte) {
	for c := 0; c < 0x20; c++ {
		t[c] = 'u'
	}
	t['\n'], t['\r'], t['\t'], t['"'], t['\\'] = 'n', 'r', 't', '"', '\\'
	for c := utf8.RuneSelf; c < 256; c++ {
		t[c] = 1
	}
	return t
}()

// special flags (high bit of each byte) the bytes of x that appendString cannot copy blindly:
// < 0x20, '"', '\\', >= 0x80. A borrow can only flag bytes above a true hit, so the lowest
// flagged byte is always one.
func special(x uint64) uint64 {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	q := x ^ (lo * '"')
	bs := x ^ (lo * '\\')
	return ((x - lo*0x20) | x | ((q - lo) & ^q) | ((bs - lo) & ^bs)) & hi
}

// appendString writes s as a JSON string (RFC 8259): ", \ and control characters escaped,
// invalid UTF-8 replaced by U+FFFD, everything else raw. It reserves room once and then copies
// eight bytes at a time, stopping only at the bytes that need care, so a record's JSON (@message:
// plain runs between many quotes) costs no copy call per run. Like append it writes into dst's
// spare capacity, and it may leave scratch bytes there past the result.
func appendString[T string | []byte](dst []byte, s T) []byte {
	const hex = "0123456789abcdef"
	const slack = 17 // the closing quote, and room for an 8-byte store or an escape
	n := len(dst)
	if cap(dst)-n < len(s)+1+slack {
		dst = slices.Grow(dst, len(s)+1+slack)
	}
	buf := dst[:cap(dst)] // invariant: len(buf)-n >= len(s)-i+slack before each step
	buf[n] = '"'
	n++
	for i := 0; ; {
		for i+8 <= len(s) {
			// Eight single-byte loads the compiler merges into one, for strings and slices alike;
			// slicing first leaves one bounds check.
			w := s[i : i+8]
			x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
				uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
			binary.LittleEndian.PutUint64(buf[n:], x) // whole word; what follows a hit is overwritten
			m := special(x)
			if m == 0 {
				i, n = i+8, n+8
				continue
			}
			const lo, hi, lo7 uint64 = 0x0101010101010101, 0x8080808080808080, 0x7f7f7f7f7f7f7f7f
			if (x-lo*0x20|x)&hi != 0 { // a control or non-ASCII byte: one byte at a time
				k := bits.TrailingZeros64(m) / 8
				i, n = i+k, n+k
				break
			}
			// Only quotes and backslashes, as in a record's JSON: flag them exactly (no borrows),
			// then put a backslash before each and the rest of the word after it.
			q, bs := x^(lo*'"'), x^(lo*'\\')
			m = ^((q&lo7 + lo7) | q) | ^((bs&lo7 + lo7) | bs)
			m &= hi
			at := n
			for m != 0 {
				k := bits.TrailingZeros64(m) / 8
				buf[at+k] = '\\'
				binary.LittleEndian.PutUint64(buf[at+k+1:], x>>(8*k))
				at++
				m &= m - 1
			}
			n = at + 8
			i += 8
			if len(buf)-n < len(s)-i+slack {
				buf = slices.Grow(buf[:n], len(s)-i+slack)
				buf = buf[:cap(buf)]
			}
		}
		for i < len(s) && escapes[s[i]] == 0 {
			buf[n] = s[i]
			i, n = i+1, n+1
		}
		if i == len(s) {
			break
		}
		switch c := s[i]; escapes[c] {
		case 1:
			// At most 4 bytes: the conversion of a []byte stays on the stack.
			r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
			if r == utf8.RuneError && size == 1 {
				n += copy(buf[n:], "\uFFFD")
				i++
			} else {
				for k := 0; k < size; k++ {
					buf[n+k] = s[i+k]
				}
				i, n = i+size, n+size
			}
		case 'u':
			buf[n], buf[n+1], buf[n+2], buf[n+3], buf[n+4], buf[n+5] = '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf]
			i, n = i+1, n+6
		default:
			buf[n], buf[n+1] = '\\', escapes[c]
			i, n = i+1, n+2
		}
		if len(buf)-n < len(s)-i+slack { // an escape took more room than its byte
			buf = slices.Grow(buf[:n], len(s)-i+slack)
			buf = buf[:cap(buf)]
		}
	}
	buf[n] = '"'
	return buf[:n+1]
}

// ownerAccount picks the AWS account id written as @owner. The Lambda wrote the account that
// owns the log data, that is the CloudWatch side: the account of role_arn, else of the IRSA
// role (AWS_ROLE_ARN), else of opensearch_role_arn. Without any ARN the account is unknown
// without a network call, and @owner is left out rather than written empty.
func ownerAccount(cfg *config.Config, getenv func(string) string) string {
	if getenv == nil {
		getenv = os.Getenv
	}
	cands := []string{cfg.RoleARN, getenv("AWS_ROLE_ARN"), cfg.OpenSearchRoleARN}
	if !cfg.CloudWatch {
		cands = []string{cfg.OpenSearchRoleARN, getenv("AWS_ROLE_ARN"), cfg.RoleARN}
	}
	for _, arn := range cands {
		if a := accountFromARN(arn); a != "" {
			return a
		}
	}
	return ""
}

// accountFromARN returns the 12-digit account field of an ARN (arn:partition:service:region:
// account:resource), or "".
func accountFromARN(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || len(parts[4]) != 12 {
		return ""
	}
	for _, c := range parts[4] {
		if c < '0' || c > '9' {
			return ""
		}
	}
	return parts[4]
}
