package action

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"

	"github.com/kup-project/kup/internal/journal"
)

// holdLock takes kup's upgrade lock (Lease kup-system/kup-apply, the one
// kup apply holds) for a command that changes the cluster, and returns the
// context to run under: it ends when the lock is lost. Without it `kup
// nodes upgrade` beside a `kup apply` (or a second one) would take the
// nodes the other has cordoned for ones a killed run left, and drain and
// upgrade them too. An RBAC that may not write the Lease gets a warning,
// not a refusal: kup nodes upgrade --upgrader exec works on any cluster.
func holdLock(ctx context.Context, cs kubernetes.Interface, what string, ttl time.Duration, warn io.Writer) (context.Context, func(), error) {
	if warn == nil {
		warn = os.Stderr
	}
	lctx, release, err := journal.Hold(ctx, cs, journal.Identity()+" "+what, ttl, func(m string) { fmt.Fprintln(warn, m) })
	if apierrors.IsForbidden(err) {
		fmt.Fprintf(warn, "warning: cannot take kup's upgrade lock (Lease %s/%s): %v; nothing stops another kup from changing this cluster at the same time\n", journal.Namespace, journal.LeaseName, err)
		return ctx, func() {}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return lctx, release, nil
}

// lockLost names a lost lock as the reason a command stopped, when it is.
func lockLost(ctx context.Context, err error) error {
	if c := context.Cause(ctx); err != nil && errors.Is(c, journal.ErrHeld) {
		return fmt.Errorf("%w; stopped: %w", c, err)
	}
	return err
}
