package sandbox

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestSwapErrorSaysWhatAndWhere: the message names the component, the
// version, the deadline, the log (once) and what the rollback achieved.
func TestSwapErrorSaysWhatAndWhere(t *testing.T) {
	const log = "/state/logs/kube-apiserver.log"
	cause := errors.New("kube-apiserver exited during start-up: bad flag")
	for _, tc := range []struct {
		name string
		err  *SwapError
		want []string
		not  []string
	}{
		{
			name: "rolled back",
			err:  &SwapError{Component: APIServer, Version: "v1.37.2", Log: log, Timeout: 90 * time.Second, RolledBackTo: "v1.36.3", Err: cause},
			want: []string{"kube-apiserver v1.37.2 did not become ready", "within 1m30s", "bad flag", "(log: " + log + ")", "rolled back: kube-apiserver v1.36.3 serves again"},
			not:  []string{"DOWN"},
		},
		{
			name: "rollback failed too",
			err:  &SwapError{Component: APIServer, Version: "v1.37.2", Log: log, Timeout: time.Minute, RollbackErr: errors.New("port 6443 in use"), Err: cause},
			want: []string{"putting the old kube-apiserver back also failed: port 6443 in use", "kube-apiserver is DOWN"},
			not:  []string{"rolled back:"},
		},
		{
			name: "the cause already names the log",
			err:  &SwapError{Component: Scheduler, Version: "v1.37.2", Log: log, Timeout: time.Minute, RolledBackTo: "v1.36.3", Err: errors.New("not reached (log: " + log + ")")},
			want: []string{"kube-scheduler v1.37.2"},
		},
	} {
		msg := tc.err.Error()
		for _, s := range tc.want {
			if !strings.Contains(msg, s) {
				t.Errorf("%s: %q lacks %q", tc.name, msg, s)
			}
		}
		for _, s := range tc.not {
			if strings.Contains(msg, s) {
				t.Errorf("%s: %q has %q", tc.name, msg, s)
			}
		}
		if strings.Count(msg, log) != 1 {
			t.Errorf("%s: the log is named %d times in %q, want once", tc.name, strings.Count(msg, log), msg)
		}
		if !errors.Is(tc.err, tc.err.Err) {
			t.Errorf("%s: does not unwrap to its cause", tc.name)
		}
	}
}
