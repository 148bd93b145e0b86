package rollbacksafe

import (
	"slices"
	"strings"
	"testing"

	"github.com/kup-project/kup/internal/provider"
	"github.com/kup-project/kup/internal/version"
)

var v = version.MustParse

func TestEmulationRange(t *testing.T) {
	for _, tc := range []struct {
		bin            string
		oldest, newest string
		ok             bool
	}{
		{"v1.30.14", "", "", false}, // before KEP-4330 alpha
		{"v1.31.0", "1.30", "1.31", true},
		{"v1.32.3", "1.29", "1.32", true}, // beta: N-3
		{"v1.37.2", "1.34", "1.37", true}, // the --help of the v1.37.2 binaries: kube=1.34..1.37
	} {
		o, n, ok := EmulationRange(v(tc.bin))
		if ok != tc.ok {
			t.Errorf("%s: ok=%v, want %v", tc.bin, ok, tc.ok)
			continue
		}
		if ok && (o.MinorString() != tc.oldest || n.MinorString() != tc.newest) {
			t.Errorf("%s: range %s..%s, want %s..%s", tc.bin, o.MinorString(), n.MinorString(), tc.oldest, tc.newest)
		}
	}
}

func TestParseEmulation(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{"1.36", "1.36", false},
		{"kube=1.36", "1.36", false},
		{"1.0", "1.0", false},
		{"v1.36", "", true},
		{"1.36.2", "", true},
		{"1.036", "", true},
		{"", "", true},
		{"kube=", "", true},
		{"1.", "", true},
	} {
		got, err := ParseEmulation(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("%q: err=%v, want error %v", tc.in, err, tc.err)
			continue
		}
		if err == nil && got.MinorString() != tc.want {
			t.Errorf("%q: %s, want %s", tc.in, got.MinorString(), tc.want)
		}
	}
}

func FuzzParseEmulation(f *testing.F) {
	for _, s := range []string{"1.36", "kube=1.37", "", "1.", "9999.9999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseEmulation(s)
		if err != nil {
			return
		}
		// What parses prints back as the flag and /version speak it.
		back, err := ParseEmulation(e.MinorString())
		if err != nil || back.Compare(e) != 0 {
			t.Fatalf("%q parsed to %s, which does not parse back: %v", s, e.MinorString(), err)
		}
	})
}

func TestCheckEmulation(t *testing.T) {
	for _, tc := range []struct {
		bin, emulate string
		wantErr      string // substring; "" for none
	}{
		{"v1.37.2", "1.36", ""},
		{"v1.37.2", "1.37", ""},
		{"v1.37.2", "1.34", ""},
		{"v1.37.2", "1.33", "emulate 1.34 to 1.37"},
		{"v1.37.2", "1.38", "not 1.38"},
		{"v1.31.0", "1.29", "emulate 1.30 to 1.31"},
		{"v1.30.0", "1.29", "no --emulated-version"},
		{"v1.37.2", "latest", "want MAJOR.MINOR"},
	} {
		err := CheckEmulation(v(tc.bin), tc.emulate)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s emulating %s: %v", tc.bin, tc.emulate, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s emulating %s: err %v, want one saying %q", tc.bin, tc.emulate, err, tc.wantErr)
		}
	}
}

func TestOrder(t *testing.T) {
	// Step one and two move the apiserver first (the skew policy and
	// KEP-4330's emulation skew); the rollback is step one reversed.
	one, _ := Order(StepOne)
	two, _ := Order(StepTwo)
	back, why := Order(StepRollback)
	if one[0] != APIServer || two[0] != APIServer {
		t.Errorf("steps one and two start with %s and %s, want %s", one[0], two[0], APIServer)
	}
	rev := slices.Clone(one)
	slices.Reverse(rev)
	if !slices.Equal(back, rev) || why == "" {
		t.Errorf("rollback order %v (%q), want %v with a reason", back, why, rev)
	}
	for _, s := range []Step{StepOne, StepTwo, StepRollback} {
		cs, _ := Order(s)
		if len(cs) != 3 {
			t.Errorf("%s moves %v, want all three components", s, cs)
		}
	}
	if cs, _ := Order("sideways"); cs != nil {
		t.Errorf("an unknown step moves %v", cs)
	}
}

func TestTarget(t *testing.T) {
	from, to := v("v1.36.3"), v("v1.37.2")
	for _, tc := range []struct {
		s    Step
		want string
	}{
		{StepOne, "v1.37.2 emulating 1.36"},
		{StepTwo, "v1.37.2 emulating 1.37"},
		{StepRollback, "v1.36.3 emulating 1.36"},
	} {
		if got := Target(tc.s, from, to).String(); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.s, got, tc.want)
		}
	}
}

func comp(name, ver, emu string) provider.EmulatedComponent {
	return provider.EmulatedComponent{Component: provider.Component{Name: name, Instance: "127.0.0.1", Version: ver}, Emulated: emu}
}

func TestMismatch(t *testing.T) {
	want := Want{Version: v("v1.37.2"), Emulated: version.MinorVersion(1, 36)}
	for _, tc := range []struct {
		c    provider.EmulatedComponent
		want string // substring; "" for a match
	}{
		{comp(APIServer, "v1.37.2", "1.36"), ""},
		{comp(APIServer, "v1.36.3", "1.36"), "runs v1.36.3"},
		{comp(APIServer, "v1.37.2", "1.37"), "emulates 1.37, want 1.36"},
		{comp(APIServer, "v1.37.2", ""), "reports no emulated version"},
		{comp(APIServer, "v1.37.2", "x"), "want MAJOR.MINOR"},
		{comp(APIServer, "garbage", "1.36"), `reports version "garbage"`},
	} {
		got := Mismatch(tc.c, want)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%+v: %q, want %q", tc.c, got, tc.want)
		}
	}
}

func TestMismatches(t *testing.T) {
	want := Want{Version: v("v1.37.2"), Emulated: version.MinorVersion(1, 36)}
	cs := []provider.EmulatedComponent{
		comp(APIServer, "v1.37.2", "1.36"),
		comp(ControllerManager, "v1.36.3", "1.36"),
	}
	got := Mismatches(cs, []string{APIServer, ControllerManager, Scheduler}, want)
	if len(got) != 2 || !strings.Contains(got[0], ControllerManager) || got[1] != "no kube-scheduler reported" {
		t.Errorf("got %q, want the controller-manager's version and the missing scheduler", got)
	}
	if got := Mismatches(cs, []string{APIServer}, want); got != nil {
		t.Errorf("only the apiserver asked for: %q, want none", got)
	}
}

func TestRaised(t *testing.T) {
	cs := []provider.EmulatedComponent{
		comp(APIServer, "v1.37.2", "1.37"),
		comp(ControllerManager, "v1.37.2", "1.36"),
		comp(Scheduler, "v1.37.2", ""),
	}
	got := Raised(cs, v("v1.36.3"))
	if len(got) != 1 || !strings.Contains(got[0], APIServer) {
		t.Errorf("got %q, want only the apiserver", got)
	}
}

func TestHopSafety(t *testing.T) {
	can := &provider.Capabilities{Emulation: true}
	cannot := &provider.Capabilities{}
	for _, tc := range []struct {
		name string
		in   HopInput
		safe bool
		why  string // substring of the reason
	}{
		{"one minor on the sandbox", HopInput{From: v("v1.36.3"), To: v("v1.37.2"), Provider: "sandbox", Capabilities: can}, true, "`kup rollback` returns to v1.36.3"},
		{"from 1.33, the first minor with rollback", HopInput{From: v("v1.33.5"), To: v("v1.34.4"), Provider: "sandbox", Capabilities: can}, true, "emulating 1.33"},
		{"from 1.32", HopInput{From: v("v1.32.9"), To: v("v1.33.5"), Provider: "sandbox", Capabilities: can}, false, "arrived in Kubernetes 1.33"},
		{"a patch hop", HopInput{From: v("v1.37.1"), To: v("v1.37.2"), Provider: "sandbox", Capabilities: can}, false, "a patch hop"},
		{"two minors", HopInput{From: v("v1.35.4"), To: v("v1.37.2"), Provider: "sandbox", Capabilities: can}, false, "moves 2 minors"},
		{"a downgrade", HopInput{From: v("v1.37.2"), To: v("v1.36.3"), Provider: "sandbox", Capabilities: can}, false, "not an upgrade"},
		{"finishing a half-done hop", HopInput{From: v("v1.36.3"), To: v("v1.37.2"), Finish: true, Provider: "sandbox", Capabilities: can}, false, "half done"},
		{"unknown provider", HopInput{From: v("v1.36.3"), To: v("v1.37.2")}, false, "pass --provider"},
		{"provider without the flag", HopInput{From: v("v1.36.3"), To: v("v1.37.2"), Provider: "exec", Capabilities: cannot}, false, "exec provider cannot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := HopSafety(tc.in)
			if got.Safe != tc.safe || !strings.Contains(got.Reason, tc.why) {
				t.Errorf("safe=%v %q, want safe=%v saying %q", got.Safe, got.Reason, tc.safe, tc.why)
			}
			if got.From != tc.in.From.String() || got.To != tc.in.To.String() {
				t.Errorf("verdict names %s → %s", got.From, got.To)
			}
		})
	}
}

func TestKubeletsBlockingRollback(t *testing.T) {
	got := KubeletsBlockingRollback(map[string]version.Version{
		"b": v("v1.37.2"), "a": v("v1.37.0"), "c": v("v1.36.9"), "d": v("v1.35.4"),
	}, v("v1.36.3"))
	want := []string{"a (kubelet v1.37.0)", "b (kubelet v1.37.2)"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
