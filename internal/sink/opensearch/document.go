package opensearch

import (
	"os"
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
	dst, n, err := event.AppendFields(dst, r.Raw, e.skip)
	if err != nil {
		ok, n = false, 0
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

// safeASCII marks the bytes a JSON string may carry as they are.
var safeASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString writes s as a JSON string (RFC 8259): ", \ and control characters escaped,
// invalid UTF-8 replaced by U+FFFD, everything else raw.
func appendString[T string | []byte](dst []byte, s T) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if safeASCII[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		// At most 4 bytes: the conversion of a []byte stays on the stack.
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\uFFFD"...)
			start = i + 1
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
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
