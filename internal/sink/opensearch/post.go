package opensearch

import (
	"bytes"
	"context"
	"errors"
	"io"
	"time"

	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
)

// result is one _bulk attempt's answer.
type result struct {
	ep      *endpoint
	status  int // 0 when no HTTP answer came back
	err     error
	resp    *opensearchapi.BulkResp
	errType string // of a whole-request error
	reason  string
	body    []byte // of a whole-request error
}

// post sends p to one endpoint: round-robin over those that are up, failing over to the next
// on a connection error; endpoints that failed recently are tried last.
func (d *Destination) post(ctx context.Context, p *payload) result {
	n := len(d.eps)
	start := int(d.rr.Add(1)-1) % n
	now := time.Now().UnixNano()
	var down uint64 // endpoints down when this attempt began (the first 64)
	for i, ep := range d.eps[:min(n, 64)] {
		if ep.downUntil.Load() > now {
			down |= 1 << i
		}
	}
	var res result
	for pass := 0; pass < 2; pass++ { // up endpoints first, then the ones that failed lately
		for i := 0; i < n; i++ {
			k := (start + i) % n
			if wasDown := k < 64 && down&(1<<k) != 0; wasDown != (pass == 1) {
				continue
			}
			ep := d.eps[k]
			res = d.postTo(ctx, ep, p)
			if res.status != 0 {
				ep.downUntil.Store(0)
				return res
			}
			var ce *credentialsError
			if ctx.Err() != nil || errors.As(res.err, &ce) {
				return res // the flush is over, or another endpoint would not sign better
			}
			ep.downUntil.Store(time.Now().Add(downFor).UnixNano())
		}
	}
	return res
}

func (d *Destination) postTo(ctx context.Context, ep *endpoint, p *payload) result {
	rctx := context.WithValue(ctx, payloadKey{}, p)
	if d.cfg.RequestTimeout > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(rctx, d.cfg.RequestTimeout)
		defer cancel()
	}
	hdr := d.hdr
	if d.cfg.OpenSearchCompress {
		hdr = d.hdrGzip
	}
	resp, err := ep.api.Bulk(rctx, opensearchapi.BulkReq{
		Body:   bytes.NewReader(p.data),
		Header: hdr,
		Params: opensearchapi.BulkParams{FilterPath: filterPath},
	})
	res := result{ep: ep, err: err, resp: resp}
	var raw *opensearch.Response
	if resp != nil {
		raw = resp.Inspect().Response
	}
	if raw == nil {
		if err == nil {
			res.err = errors.New("no response")
		}
		return res
	}
	res.status = raw.StatusCode
	if res.status >= 200 && res.status < 300 {
		if err != nil {
			// A 2xx whose body did not decode (cut short): nothing is known about the items.
			res.status = 0
			res.err = err
		}
		return res
	}
	if raw.Body != nil {
		res.body, _ = io.ReadAll(io.LimitReader(raw.Body, 64<<10))
	}
	var se *opensearch.StructError
	var str *opensearch.StringError
	switch {
	case errors.As(err, &se):
		res.errType, res.reason = se.Err.Type, se.Err.Reason
	case errors.As(err, &str):
		res.errType, res.reason = "error", str.Err
	default:
		res.reason = snippet(res.body)
	}
	return res
}
