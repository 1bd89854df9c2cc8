package opensearch

import (
	"os"
	"strings"
	"time"

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
		dst = event.AppendString(dst, r.Index)
		dst = append(dst, `,"_id":"`...)
		dst = r.ID.AppendText(dst)
		dst = append(dst, "\"}}\n{"...)
	} else {
		dst = append(dst, `{"index":{"_index":`...)
		dst = event.AppendString(dst, r.Index)
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
		if r.MessageJSON != nil {
			dst = append(dst, r.MessageJSON...)
		} else {
			dst = event.AppendString(dst, r.Message)
		}
		if e.owner != "" {
			dst = append(dst, `,"@owner":`...)
			dst = event.AppendString(dst, e.owner)
		}
		dst = append(dst, `,"@log_group":`...)
		dst = event.AppendString(dst, r.Group)
		dst = append(dst, `,"@log_stream":`...)
		dst = event.AppendString(dst, r.Stream)
	} else if e.timeKey != "" {
		if n > 0 {
			dst = append(dst, ',')
		}
		dst = event.AppendString(dst, e.timeKey)
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
