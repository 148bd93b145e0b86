package sandbox

import (
	"strings"
	"testing"
)

// TestProcessEnvGOGC: a sandbox's processes read the GOGC it was asked
// for, over any in kup's environment (os/exec keeps the last of a
// variable given twice), and kup's environment's when it was asked for
// none.
func TestProcessEnvGOGC(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   string // kup's GOGC
		gogc  int
		reads string // the GOGC the process reads: the last os/exec is given
	}{
		{name: "asked", env: "", gogc: 150, reads: "150"},
		{name: "asked over the environment's", env: "50", gogc: 400, reads: "400"},
		{name: "the environment's", env: "off", reads: "off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOGC", tc.env)
			var all []string
			for _, e := range (&Cluster{State: State{GOGC: tc.gogc}}).processEnv() {
				if v, ok := strings.CutPrefix(e, "GOGC="); ok {
					all = append(all, v)
				}
			}
			if len(all) == 0 || all[len(all)-1] != tc.reads {
				t.Errorf("the process's environment has GOGC %q, want the last %q", all, tc.reads)
			}
		})
	}
}
