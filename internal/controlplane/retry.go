package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
)

// DefaultRetry is the backoff for a read interrupted by an apiserver
// restart: 13 tries from 250 ms growing by half each time, about a
// minute in all — longer than a healthy kube-apiserver takes to serve
// again after a swap. (No Cap: wait.Backoff ends the backoff when it
// reaches one.)
var DefaultRetry = wait.Backoff{Duration: 250 * time.Millisecond, Factor: 1.5, Jitter: 0.1, Steps: 13}

// transient reports whether err is what a client sees while an apiserver
// restarts or is overloaded: refused or reset connections, a connection
// closed mid-response, network timeouts, and the apiserver's own
// "not ready yet" answers (503, 500 while its storage is starting, 429,
// server timeouts). Anything else — forbidden, not found, invalid — is an
// answer, and retrying would not change it.
func transient(err error) bool {
	if err == nil {
		return false
	}
	if apierrors.IsServiceUnavailable(err) || apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) ||
		apierrors.IsTimeout(err) || apierrors.IsInternalError(err) || apierrors.IsUnexpectedServerError(err) {
		return true
	}
	if utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) || utilnet.IsHTTP2ConnectionLost(err) {
		return true
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// retryTransient runs fn until it succeeds, fails with an error that is
// not transient, the backoff is spent or ctx ends; it returns fn's last
// error (not wait's "timed out"), so the caller's message says what
// actually went wrong.
func retryTransient(ctx context.Context, b wait.Backoff, fn func(context.Context) error) error {
	var last error
	err := wait.ExponentialBackoffWithContext(ctx, b, func(ctx context.Context) (bool, error) {
		last = fn(ctx)
		if last == nil {
			return true, nil
		}
		if transient(last) {
			return false, nil
		}
		return false, last
	})
	switch {
	case err == nil:
		return nil
	case last == nil:
		return err
	case ctx.Err() != nil && transient(last):
		return fmt.Errorf("%v: %w", last, ctx.Err())
	}
	return last
}
