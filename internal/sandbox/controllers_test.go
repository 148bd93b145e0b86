package sandbox

import "testing"

// TestControllerChecks reads kube-controller-manager's verbose /healthz
// (k8s.io/apiserver's healthz format) before and after it has built its
// controllers.
func TestControllerChecks(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       bool
	}{
		{"serving, not built", "[+]ping ok\n[+]log ok\nhealthz check passed\n", false},
		{"built", "[+]ping ok\n[+]log ok\n[+]serviceaccount-token-controller ok\n[+]resourcequota-controller ok\nhealthz check passed\n", true},
		{"built, one failing", "[+]ping ok\n[+]log ok\n[-]garbage-collector-controller failed: reason withheld\n[+]resourcequota-controller ok\nhealthz check failed\n", true},
		{"only failing ones", "[+]ping ok\n[-]garbage-collector-controller failed: reason withheld\nhealthz check failed\n", false},
		{"leader election only", "[+]ping ok\n[+]log ok\n[+]leaderElection ok\nhealthz check passed\n", false},
		{"empty", "", false},
	} {
		if got := controllerChecks(tc.body); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
