// Command kup upgrades Kubernetes clusters safely. This package only wires
// flags to the libraries under internal/; it holds no upgrade logic.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCommand()
	err := root.ExecuteContext(ctx)
	var quiet silent
	if err != nil && !errors.As(err, &quiet) {
		// Errors are printed once, here, at the top.
		fmt.Fprintln(os.Stderr, "Error:", err)
	}
	os.Exit(exitCode(err))
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
