package drain

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestGateOneEvictionPerPDB: evictions under one PDB take turns, under
// different PDBs they overlap, and a caller whose deadline passes while
// it waits gets the context's error instead of a turn.
func TestGateOneEvictionPerPDB(t *testing.T) {
	d := &Drainer{}
	ctx := context.Background()
	var inFlight, most atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := d.gate(ctx, "shop/cart")
			if err != nil {
				t.Error(err)
				return
			}
			n := inFlight.Add(1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(time.Millisecond)
			inFlight.Add(-1)
			release()
		}()
	}
	wg.Wait()
	if got := most.Load(); got != 1 {
		t.Errorf("evictions in flight under one PDB: at most %d, want 1", got)
	}

	// A second PDB is not held up by the first.
	hold, err := d.gate(ctx, "shop/cart")
	if err != nil {
		t.Fatal(err)
	}
	other, err := d.gate(ctx, "shop/checkout")
	if err != nil {
		t.Fatalf("PDB shop/checkout waited for shop/cart: %v", err)
	}
	other()

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := d.gate(short, "shop/cart"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("gate held by another eviction, caller's deadline passed: err = %v, want DeadlineExceeded", err)
	}
	hold()
	if r, err := d.gate(ctx, "shop/cart"); err != nil {
		t.Errorf("gate after release: %v", err)
	} else {
		r()
	}
}
