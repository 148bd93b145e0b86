// Package kube holds kup's client plumbing. Its one job today: make kup
// survive the apiserver going away for a while — which it does, by
// design, during every control-plane hop — by retrying requests that
// never reached it, with backoff, for up to a bound. kup never fails
// because the API was briefly away.
package kube

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
)

// DefaultOutage is how long a request keeps retrying while the apiserver
// is unreachable: longer than a binary swap or a static-pod restart, short
// enough that a cluster that is really gone is reported.
const DefaultOutage = 2 * time.Minute

// Resilient returns a copy of cfg whose requests are retried, with
// exponential backoff up to outage, when the apiserver cannot be reached
// (connection refused or reset before an answer) or answers 503 while
// starting. A 429 is never retried here: for evictions it is the
// PodDisruptionBudget's answer, which the drain handles itself.
func Resilient(cfg *rest.Config, outage time.Duration) *rest.Config {
	if outage <= 0 {
		outage = DefaultOutage
	}
	cfg = rest.CopyConfig(cfg)
	prev := cfg.WrapTransport
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		if prev != nil {
			rt = prev(rt)
		}
		return &retrying{next: rt, outage: outage}
	}
	return cfg
}

type retrying struct {
	next   http.RoundTripper
	outage time.Duration
}

func (r *retrying) RoundTrip(req *http.Request) (*http.Response, error) {
	deadline := time.Now().Add(r.outage)
	delay := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if attempt > 0 && req.Body != nil && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req.Body = body
		}
		resp, err := r.next.RoundTrip(req)
		retry := false
		switch {
		case err != nil:
			retry = transient(err, req)
		case resp.StatusCode == http.StatusServiceUnavailable && !isWatch(req):
			retry = true
		}
		if !retry || time.Now().Add(delay).After(deadline) || (attempt > 0 && req.Body != nil && req.GetBody == nil) {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		select {
		case <-req.Context().Done():
			if err == nil {
				err = req.Context().Err()
			}
			return nil, err
		case <-time.After(delay):
		}
		delay = min(delay*2, 3*time.Second)
	}
}

// transient is true for errors that mean the request did not get an
// answer: the apiserver is restarting. A reset after a write was sent is
// retried too, because every write kup makes is safe to repeat: updates
// carry a resourceVersion precondition (a repeat meets a Conflict the
// caller re-reads on), patches set values rather than add to them, a
// repeated eviction finds the pod gone or meets the PDB's 429, and a
// repeated create meets AlreadyExists.
func transient(err error, req *http.Request) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "http2: server sent GOAWAY") {
		return true
	}
	return false
}

func isWatch(req *http.Request) bool {
	return req.URL.Query().Get("watch") == "true" || req.URL.Query().Get("watch") == "1"
}

// Fast returns a copy of cfg with client-side rate limits fit for kup:
// client-go's defaults (5 QPS, burst 10) turn a 10-node wave's cordons,
// taints and evictions into seconds of self-inflicted waiting. The
// apiserver's own priority and fairness still protects it.
func Fast(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS < 100 {
		cfg.QPS, cfg.Burst = 100, 200
	}
	return cfg
}
