package eks

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/eks/types"
	utilversion "k8s.io/apimachinery/pkg/util/version"
)

// AddonStep is one UpdateAddon kup makes (or would make) after a hop.
type AddonStep struct {
	Addon, From, To string
}

// AddonSteps chooses, for one add-on at version cur, the versions to pass
// through on a cluster at a minor whose compatible versions are
// compatible (with def the one EKS installs by default there): one add-on
// minor at a time — the EKS user guide asks it of vpc-cni, and it is never
// wrong for the others — each step the newest patch of its minor, ending
// at def (or the newest compatible, when EKS names no default). An add-on
// already at or past the goal is left alone. Pure, for table tests.
func AddonSteps(addon, cur string, compatible []string, def string) []AddonStep {
	from, err := utilversion.ParseGeneric(cur)
	if err != nil {
		return nil
	}
	parsed := map[string]*utilversion.Version{}
	for _, v := range compatible {
		if pv, err := utilversion.ParseGeneric(v); err == nil {
			parsed[v] = pv
		}
	}
	goal := def
	if parsed[goal] == nil {
		for v, pv := range parsed {
			if goal == "" || pv.GreaterThan(parsed[goal]) || (pv.EqualTo(parsed[goal]) && v > goal) {
				goal = v
			}
		}
	}
	if goal == "" || !parsed[goal].GreaterThan(from) && !(parsed[goal].EqualTo(from) && buildOf(goal) > buildOf(cur)) {
		return nil
	}
	g := parsed[goal]
	// The newest version of each minor between cur's and goal's.
	newest := map[uint]string{}
	for v, pv := range parsed {
		if pv.Major() != from.Major() || pv.Minor() <= from.Minor() || pv.Minor() >= g.Minor() {
			continue
		}
		if o, ok := newest[pv.Minor()]; !ok || pv.GreaterThan(parsed[o]) || (pv.EqualTo(parsed[o]) && v > o) {
			newest[pv.Minor()] = v
		}
	}
	minors := make([]uint, 0, len(newest))
	for m := range newest {
		minors = append(minors, m)
	}
	slices.Sort(minors)
	var steps []AddonStep
	at := cur
	for _, m := range minors {
		steps = append(steps, AddonStep{Addon: addon, From: at, To: newest[m]})
		at = newest[m]
	}
	return append(steps, AddonStep{Addon: addon, From: at, To: goal})
}

// buildOf is the "-eksbuild.N" part, compared as a string only to break a
// tie between equal versions.
func buildOf(v string) string {
	for i := range len(v) {
		if v[i] == '-' {
			return v[i:]
		}
	}
	return ""
}

// upgradeAddons brings every installed managed add-on to a version
// compatible with minor, one UpdateAddon per step, each waited for until
// the add-on is ACTIVE again.
func (p *ControlPlane) upgradeAddons(ctx context.Context, minor string) error {
	names, err := p.addonNames(ctx)
	if err != nil {
		return err
	}
	for _, name := range names {
		a, err := p.API.DescribeAddon(ctx, &eks.DescribeAddonInput{ClusterName: aws.String(p.Cluster), AddonName: aws.String(name)})
		if err != nil {
			return fmt.Errorf("DescribeAddon %s of %s: %w", name, p.Cluster, err)
		}
		compatible, def, err := p.addonVersions(ctx, name, minor)
		if err != nil {
			return err
		}
		cur := aws.ToString(a.Addon.AddonVersion)
		if len(compatible) == 0 {
			return fmt.Errorf("add-on %s %s of %s: EKS offers no version of it for Kubernetes %s (DescribeAddonVersions)", name, cur, p.Cluster, minor)
		}
		for _, step := range AddonSteps(name, cur, compatible, def) {
			if err := p.updateAddon(ctx, step); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *ControlPlane) addonNames(ctx context.Context) ([]string, error) {
	var names []string
	pages := eks.NewListAddonsPaginator(p.API, &eks.ListAddonsInput{ClusterName: aws.String(p.Cluster)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("ListAddons %s: %w", p.Cluster, err)
		}
		names = append(names, page.Addons...)
	}
	slices.Sort(names)
	return names, nil
}

// addonVersions returns the versions of addon compatible with minor, and
// the one EKS installs by default on it.
func (p *ControlPlane) addonVersions(ctx context.Context, addon, minor string) ([]string, string, error) {
	var out []string
	def := ""
	pages := eks.NewDescribeAddonVersionsPaginator(p.API, &eks.DescribeAddonVersionsInput{AddonName: aws.String(addon), KubernetesVersion: aws.String(minor)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, "", fmt.Errorf("DescribeAddonVersions %s for Kubernetes %s: %w", addon, minor, err)
		}
		for _, a := range page.Addons {
			for _, v := range a.AddonVersions {
				for _, c := range v.Compatibilities {
					if aws.ToString(c.ClusterVersion) != minor {
						continue
					}
					out = append(out, aws.ToString(v.AddonVersion))
					if c.DefaultVersion {
						def = aws.ToString(v.AddonVersion)
					}
				}
			}
		}
	}
	return out, def, nil
}

func (p *ControlPlane) updateAddon(ctx context.Context, s AddonStep) error {
	out, err := p.API.UpdateAddon(ctx, &eks.UpdateAddonInput{ClusterName: aws.String(p.Cluster), AddonName: aws.String(s.Addon),
		AddonVersion: aws.String(s.To), ResolveConflicts: types.ResolveConflictsPreserve})
	if err != nil {
		return fmt.Errorf("UpdateAddon %s %s → %s on %s: %w", s.Addon, s.From, s.To, p.Cluster, err)
	}
	id := aws.ToString(out.Update.Id)
	p.progressf("EKS update %s: add-on %s %s → %s", id, s.Addon, s.From, s.To)
	if _, err := p.wait(ctx, p.Poll, id, "", s.Addon, fmt.Sprintf("add-on %s %s → %s", s.Addon, s.From, s.To)); err != nil {
		return err
	}
	w := eks.NewAddonActiveWaiter(p.API, func(o *eks.AddonActiveWaiterOptions) {
		o.MinDelay, o.MaxDelay = max(p.Poll.Initial, 100*time.Millisecond), max(p.Poll.Max, time.Second)
	})
	if err := w.Wait(ctx, &eks.DescribeAddonInput{ClusterName: aws.String(p.Cluster), AddonName: aws.String(s.Addon)}, max(p.Poll.Deadline, time.Minute)); err != nil {
		return fmt.Errorf("add-on %s of %s after update to %s: waiting for ACTIVE: %w", s.Addon, p.Cluster, s.To, err)
	}
	return nil
}
