package eks

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks/types"
)

func TestRollbackTarget(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	upd := func(id string, typ types.UpdateType, st types.UpdateStatus, v string, ago time.Duration) types.Update {
		return types.Update{Id: aws.String(id), Type: typ, Status: st, CreatedAt: aws.Time(now.Add(-ago)),
			Params: []types.UpdateParam{{Type: types.UpdateParamTypeVersion, Value: aws.String(v)}}}
	}
	for _, tc := range []struct {
		name    string
		current string
		updates []types.Update
		want    string // "1.36" or the start of the refusal
	}{
		{name: "inside the window", current: "1.37",
			updates: []types.Update{upd("u1", types.UpdateTypeVersionUpdate, types.UpdateStatusSuccessful, "1.36", 48*time.Hour), upd("u2", types.UpdateTypeVersionUpdate, types.UpdateStatusSuccessful, "1.37", 24*time.Hour)},
			want:    "1.36"},
		{name: "outside the window", current: "1.37",
			updates: []types.Update{upd("u2", types.UpdateTypeVersionUpdate, types.UpdateStatusSuccessful, "1.37", 8*24*time.Hour)},
			want:    "outside the rollback window"},
		{name: "a failed later attempt does not count", current: "1.37",
			updates: []types.Update{upd("u2", types.UpdateTypeVersionUpdate, types.UpdateStatusSuccessful, "1.37", time.Hour), upd("u3", types.UpdateTypeVersionUpdate, types.UpdateStatusFailed, "1.38", time.Minute)},
			want:    "1.36"},
		{name: "never upgraded in place", current: "1.37", want: "no in-place upgrade"},
		{name: "already rolled back", current: "1.36",
			updates: []types.Update{upd("u2", types.UpdateTypeVersionUpdate, types.UpdateStatusSuccessful, "1.37", 2*time.Hour), upd("u3", types.UpdateTypeVersionRollback, types.UpdateStatusSuccessful, "1.36", time.Hour)},
			want:    "the cluster was already rolled back"},
		{name: "add-on and config updates are not upgrades", current: "1.37",
			updates: []types.Update{upd("u4", types.UpdateTypeConfigUpdate, types.UpdateStatusSuccessful, "1.37", time.Hour)},
			want:    "no in-place upgrade"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rb, err := RollbackTarget(tc.current, tc.updates, now)
			if err != nil {
				if !strings.HasPrefix(err.Error(), tc.want) {
					t.Errorf("refused with %q, want %q", err, tc.want)
				}
				return
			}
			if rb.To != tc.want || rb.Until != rb.UpgradedAt.Add(RollbackWindow) {
				t.Errorf("rollback %+v, want to %s", rb, tc.want)
			}
		})
	}
}
