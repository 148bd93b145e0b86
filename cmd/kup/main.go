// Command kup upgrades Kubernetes clusters safely. This package only wires
// flags to the libraries under internal/; it holds no upgrade logic.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go handleSignals(cancel)
	root := newRootCommand()
	err := root.ExecuteContext(ctx)
	var quiet silent
	if err != nil && !errors.As(err, &quiet) {
		// Errors are printed once, here, at the top.
		fmt.Fprintln(os.Stderr, "Error:", err)
	}
	os.Exit(exitCode(err))
}

// pauseOnInterrupt, when set by a command, is called on the first Ctrl-C
// instead of cancelling: `kup apply` finishes the wave in flight and stops
// resumably. The second Ctrl-C cancels (abandoning the node in flight
// safely); the third exits at once.
var (
	interruptMu      sync.Mutex
	pauseOnInterrupt func()
)

func setPauseOnInterrupt(f func()) {
	interruptMu.Lock()
	defer interruptMu.Unlock()
	pauseOnInterrupt = f
}

func handleSignals(cancel context.CancelFunc) {
	ch := make(chan os.Signal, 3)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	for n := 1; ; n++ {
		<-ch
		interruptMu.Lock()
		pause := pauseOnInterrupt
		interruptMu.Unlock()
		switch {
		case n == 1 && pause != nil:
			fmt.Fprintln(os.Stderr, "\nInterrupted: finishing the wave in flight, then stopping (resumable). Ctrl-C again to abandon it now.")
			pause()
		case n <= 2:
			fmt.Fprintln(os.Stderr, "\nInterrupted: stopping now; the journal records where (run the same command again to resume).")
			cancel()
		default:
			fmt.Fprintln(os.Stderr, "\nInterrupted three times: exiting immediately.")
			os.Exit(130)
		}
	}
}

// Exit codes, shared by every command.
const (
	exitOK       = 0
	exitError    = 1 // something failed, or the cluster cannot be upgraded as asked
	exitUsage    = 2 // bad flags or arguments
	exitBlockers = 3 // a preflight found blockers
)

// codedError carries an exit code through cobra's error return.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

func usageError(format string, args ...any) error {
	return &codedError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ce *codedError
	if errors.As(err, &ce) {
		return ce.code
	}
	return exitError
}
