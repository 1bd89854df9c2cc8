package opensearch

import (
	"github.com/cwos/cloudwatch-opensearch/internal/config"
	"github.com/cwos/cloudwatch-opensearch/internal/sink"
)

// Encoder writes _bulk items (action line + document line) exactly as Deliver does, without
// sending: for the plugin-wide hot-path benchmark and for tools. Safe for concurrent use.
type Encoder struct{ e *encoder }

// NewEncoder returns the encoder Deliver would use for cfg; owner is the @owner account id
// ("" leaves it out).
func NewEncoder(cfg *config.Config, owner string) *Encoder {
	return &Encoder{e: newEncoder(cfg, owner)}
}

// AppendItem appends r's action and document lines to dst.
func (e *Encoder) AppendItem(dst []byte, r *sink.Record) []byte {
	dst, _ = e.e.appendItem(dst, r)
	return dst
}
