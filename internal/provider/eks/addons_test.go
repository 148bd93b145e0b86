package eks

import (
	"fmt"
	"testing"
)

func TestAddonSteps(t *testing.T) {
	for _, tc := range []struct {
		name, cur, def string
		compatible     []string
		want           string
	}{
		{name: "one minor at a time to the default", cur: "v1.19.2-eksbuild.1", def: "v1.21.1-eksbuild.1",
			compatible: []string{"v1.20.0-eksbuild.1", "v1.20.4-eksbuild.2", "v1.21.1-eksbuild.1"},
			want:       "[{a v1.19.2-eksbuild.1 v1.20.4-eksbuild.2} {a v1.20.4-eksbuild.2 v1.21.1-eksbuild.1}]"},
		{name: "already at the default", cur: "v1.12.1-eksbuild.2", def: "v1.12.1-eksbuild.2",
			compatible: []string{"v1.12.1-eksbuild.2", "v1.13.1-eksbuild.1"}, want: "[]"},
		{name: "past the default: left alone", cur: "v1.13.1-eksbuild.1", def: "v1.12.1-eksbuild.2",
			compatible: []string{"v1.12.1-eksbuild.2", "v1.13.1-eksbuild.1"}, want: "[]"},
		{name: "no default: the newest compatible", cur: "v1.35.4-eksbuild.1",
			compatible: []string{"v1.36.0-eksbuild.1", "v1.36.3-eksbuild.1"}, want: "[{a v1.35.4-eksbuild.1 v1.36.3-eksbuild.1}]"},
		{name: "newer build of the same version", cur: "v1.36.3-eksbuild.1", def: "v1.36.3-eksbuild.2",
			compatible: []string{"v1.36.3-eksbuild.1", "v1.36.3-eksbuild.2"}, want: "[{a v1.36.3-eksbuild.1 v1.36.3-eksbuild.2}]"},
		{name: "nothing compatible", cur: "v1.0.0", want: "[]"},
		{name: "unparsable current version", cur: "latest", compatible: []string{"v1.2.3"}, want: "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := AddonSteps("a", tc.cur, tc.compatible, tc.def)
			if s := fmt.Sprint(got); s != tc.want && !(tc.want == "[]" && len(got) == 0) {
				t.Errorf("AddonSteps = %s, want %s", s, tc.want)
			}
		})
	}
}
