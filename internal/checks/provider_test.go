package checks

import (
	"slices"
	"testing"
)

func TestMerge(t *testing.T) {
	skew := found(SkewViolation, "kubelet on node-1 is 4 minors behind", Object{Kind: "Node", Name: "node-1"})
	addon := found(AddonUnsupported, "coredns 1.9 is not supported on 1.37")
	for _, tc := range []struct {
		name     string
		own, add []Finding
		want     []string // severity ID message
	}{
		{name: "nothing from the provider", own: []Finding{addon}, want: []string{"warning KUP-ADDON-001 coredns 1.9 is not supported on 1.37"}},
		{name: "same ID: one finding, both messages, the worse severity",
			own:  []Finding{addon},
			add:  []Finding{{ID: AddonUnsupported, Severity: Blocker, Message: `EKS insight "Add-on version compatibility": ERROR.`, Action: "Upgrade coredns."}},
			want: []string{`blocker KUP-ADDON-001 coredns 1.9 is not supported on 1.37 EKS insight "Add-on version compatibility": ERROR.`}},
		{name: "a provider warning does not soften kup's blocker",
			own:  []Finding{skew},
			add:  []Finding{{ID: SkewViolation, Severity: Warning, Message: "EKS: skew."}},
			want: []string{"blocker KUP-CP-001 kubelet on node-1 is 4 minors behind EKS: skew."}},
		{name: "no kup check of that kind: added as it is",
			own:  []Finding{addon},
			add:  []Finding{ProviderFinding(true, "Cluster health issues", "EKS insight: ERROR.", "Fix the subnet.")},
			want: []string{"blocker KUP-PROV-001 EKS insight: ERROR.", "warning KUP-ADDON-001 coredns 1.9 is not supported on 1.37"}},
		{name: "kup could not check: the provider's verdict stands apart",
			own:  []Finding{unknown(AddonUnsupported, "no data")},
			add:  []Finding{{ID: AddonUnsupported, Severity: Warning, Message: "EKS: old add-on."}},
			want: []string{"warning KUP-ADDON-001 EKS: old add-on.", "unknown KUP-ADDON-001 could not check: no data"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, f := range Merge(tc.own, tc.add) {
				got = append(got, string(f.Severity)+" "+f.ID+" "+f.Message)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Merge:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
	merged := Merge([]Finding{addon}, []Finding{{ID: AddonUnsupported, Severity: Warning, Message: "x", Action: "Upgrade coredns."}})
	if merged[0].Action != addon.Action+" Upgrade coredns." {
		t.Errorf("the provider's recommendation is not kept: %q", merged[0].Action)
	}
}
