package journal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// LeaseName is the Lease that says which kup is upgrading the cluster.
const LeaseName = "kup-apply"

// DefaultTTL is how long a lock outlives its holder's last renewal. A kup
// killed with SIGKILL cannot release its lock; the next one takes it over
// after the TTL — never a state that only a manual delete can clear
// (helm's stuck pending-upgrade, helm/helm#8987).
const DefaultTTL = 60 * time.Second

// ErrHeld is returned (wrapped) when another kup holds the lock.
var ErrHeld = errors.New("another kup holds the upgrade lock")

// Lock is a held lock; Release it when done.
type Lock struct {
	client   kubernetes.Interface
	identity string
	ttl      time.Duration
	stop     chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	lost     error
	lostc    chan struct{} // closed when lost is set
}

// Identity names this process: user@host pid N.
func Identity() string {
	host, _ := os.Hostname()
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return fmt.Sprintf("%s@%s pid %d", name, host, os.Getpid())
}

// Acquire takes the lock for identity, or fails with ErrHeld naming the
// holder and how long ago it last renewed. A lock whose holder stopped
// renewing more than ttl ago is taken over; one whose holder has missed
// its renewals (more than half its TTL ago; a holder renews every
// quarter) is waited for, saying so through say (nil: silent), and taken
// over when it expires — unless the holder renews in the meantime. That
// is the kup killed a moment ago and run again. The lock is then renewed
// every ttl/4 until Release; failures to renew (the apiserver briefly
// away during a hop) are retried, and only a lock taken by someone else
// is reported by Lost.
func Acquire(ctx context.Context, cs kubernetes.Interface, identity string, ttl time.Duration, say func(string)) (*Lock, error) {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if err := ensureNamespace(ctx, cs); err != nil {
		return nil, err
	}
	leases := cs.CoordinationV1().Leases(Namespace)
	now := metav1.NewMicroTime(time.Now())
	want := coordinationv1.LeaseSpec{
		HolderIdentity:       ptr.To(identity),
		LeaseDurationSeconds: ptr.To(int32(ttl.Seconds())),
		AcquireTime:          &now,
		RenewTime:            &now,
	}
	cur, err := leases.Get(ctx, LeaseName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: LeaseName, Namespace: Namespace}, Spec: want}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("%w: it was taken a moment ago; try again", ErrHeld)
		}
		if err != nil {
			return nil, fmt.Errorf("creating lock Lease %s/%s: %w", Namespace, LeaseName, err)
		}
	case err != nil:
		return nil, fmt.Errorf("reading lock Lease %s/%s: %w", Namespace, LeaseName, err)
	default:
		holder := ptr.Deref(cur.Spec.HolderIdentity, "")
		if holder != "" && holder != identity {
			held := LeaseTTL(cur, ttl)
			// A lock never renewed counts as expired.
			ago := held
			if cur.Spec.RenewTime != nil {
				ago = time.Since(cur.Spec.RenewTime.Time)
			}
			if ago > held/2 && ago < held {
				wait := held - ago + 250*time.Millisecond
				if say != nil {
					say(fmt.Sprintf("%s holds kup's upgrade lock but has not renewed it for %s (killed, or asleep?); waiting %s for it to expire (Lease %s/%s)",
						holder, ago.Round(time.Second), wait.Round(time.Second), Namespace, LeaseName))
				}
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return nil, fmt.Errorf("waiting for the upgrade lock of %s to expire: %w", holder, ctx.Err())
				}
				return Acquire(ctx, cs, identity, ttl, say) // refused if it renewed meanwhile
			}
			if ago < held {
				since := ""
				if cur.Spec.AcquireTime != nil {
					since = fmt.Sprintf(", holding it for %s", time.Since(cur.Spec.AcquireTime.Time).Round(time.Second))
				}
				return nil, fmt.Errorf("%w: %s%s, last renewed %s ago (Lease %s/%s; it expires %s after its holder stops)",
					ErrHeld, holder, since, ago.Round(time.Second), Namespace, LeaseName, held)
			}
			// Expired: its holder died. Take it over.
		}
		cur.Spec = want
		if _, err := leases.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			if apierrors.IsConflict(err) {
				return nil, fmt.Errorf("%w: it changed hands while kup was taking it; try again", ErrHeld)
			}
			return nil, fmt.Errorf("taking lock Lease %s/%s: %w", Namespace, LeaseName, err)
		}
	}
	l := &Lock{client: cs, identity: identity, ttl: ttl, stop: make(chan struct{}), done: make(chan struct{}), lostc: make(chan struct{})}
	go l.renew()
	return l, nil
}

func (l *Lock) renew() {
	defer close(l.done)
	t := time.NewTicker(l.ttl / 4)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.ttl/4)
		err := l.renewOnce(ctx)
		cancel()
		if errors.Is(err, ErrHeld) {
			l.mu.Lock()
			l.lost = err
			l.mu.Unlock()
			close(l.lostc)
			return
		}
	}
}

func (l *Lock) renewOnce(ctx context.Context) error {
	leases := l.client.CoordinationV1().Leases(Namespace)
	cur, err := leases.Get(ctx, LeaseName, metav1.GetOptions{})
	if err != nil {
		return err // apiserver away: try again next tick
	}
	if h := ptr.Deref(cur.Spec.HolderIdentity, ""); h != l.identity {
		return fmt.Errorf("%w: %s took the lock over (this kup failed to renew it for longer than %s)", ErrHeld, h, l.ttl)
	}
	now := metav1.NewMicroTime(time.Now())
	cur.Spec.RenewTime = &now
	_, err = leases.Update(ctx, cur, metav1.UpdateOptions{})
	return err
}

// Lost returns why the lock was lost, or nil while it is held.
func (l *Lock) Lost() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

// LeaseTTL is how long the lock l outlives its holder's last renewal: the
// duration its holder recorded, def when none is.
func LeaseTTL(l *coordinationv1.Lease, def time.Duration) time.Duration {
	return time.Duration(ptr.Deref(l.Spec.LeaseDurationSeconds, int32(def/time.Second))) * time.Second
}

// LostC is closed when the lock is lost (Lost then says why), for a
// command to stop at once rather than between its steps.
func (l *Lock) LostC() <-chan struct{} { return l.lostc }

// Hold takes the lock for the length of one command that changes the
// cluster: it returns a context that ends when the lock is lost (its cause
// says why) and a release to defer. One kup at a time: a second one would
// take the nodes the first has cordoned for ones a killed run left, and
// drain and upgrade them beside it.
func Hold(ctx context.Context, cs kubernetes.Interface, identity string, ttl time.Duration, say func(string)) (context.Context, func(), error) {
	l, err := Acquire(ctx, cs, identity, ttl, say)
	if err != nil {
		return nil, nil, err
	}
	hctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-l.LostC():
			cancel(l.Lost())
		case <-hctx.Done():
		}
	}()
	return hctx, func() {
		cancel(nil)
		rctx, stop := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer stop()
		_ = l.Release(rctx)
	}, nil
}

// Release stops renewing and clears the holder so the next kup need not
// wait for the TTL.
func (l *Lock) Release(ctx context.Context) error {
	close(l.stop)
	<-l.done
	leases := l.client.CoordinationV1().Leases(Namespace)
	cur, err := leases.Get(ctx, LeaseName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("releasing lock: %w", err)
	}
	if ptr.Deref(cur.Spec.HolderIdentity, "") != l.identity {
		return nil
	}
	cur.Spec.HolderIdentity = nil
	cur.Spec.RenewTime = nil
	if _, err := leases.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("releasing lock: %w", err)
	}
	return nil
}
