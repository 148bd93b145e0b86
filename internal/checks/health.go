package checks

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kup-project/kup/internal/rollout"
)

// Health finds nodes that are not Ready, under pressure or already
// cordoned; pods Pending, crash-looping or not Ready; and the warning
// events of the last hour, grouped by reason and object kind.
func Health(in Input) []Finding { return health(newIndex(in)) }

func health(x *index) []Finding {
	var out []Finding
	out = append(out, nodeHealth(x)...)
	out = append(out, podHealth(x)...)
	out = append(out, warningEvents(x)...)
	return out
}

func condition(n *corev1.Node, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == t {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func nodeHealth(x *index) []Finding {
	var out []Finding
	for i := range x.snap.Nodes {
		n := &x.snap.Nodes[i]
		obj := nodeObject(n.Name)
		switch c := condition(n, corev1.NodeReady); {
		case inKupUpgrade(n):
			// Not Ready because kup's upgrade restarts its kubelet: what
			// the run does next, KUP-NODE-004 says (leftCordoned).
		case c == nil:
			out = append(out, found(NodeNotReady, "node "+n.Name+" reports no Ready condition: its kubelet has never reported", obj))
		case c.Status != corev1.ConditionTrue:
			msg := fmt.Sprintf("node %s is Ready=%s", n.Name, c.Status)
			if c.Reason != "" {
				msg += " (" + c.Reason
				if c.Message != "" {
					msg += ": " + c.Message
				}
				msg += ")"
			}
			if !c.LastTransitionTime.IsZero() {
				msg += fmt.Sprintf(" since %s", c.LastTransitionTime.UTC().Format("2006-01-02 15:04 MST"))
			}
			out = append(out, found(NodeNotReady, msg, obj))
		}
		var pressure []string
		for _, t := range []corev1.NodeConditionType{corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure} {
			if c := condition(n, t); c != nil && c.Status == corev1.ConditionTrue {
				pressure = append(pressure, string(t))
			}
		}
		if len(pressure) > 0 {
			out = append(out, found(NodePressure, "node "+n.Name+" reports "+strings.Join(pressure, ", "), obj))
		}
		if n.Spec.Unschedulable {
			if f, ok := leftCordoned(n); ok {
				out = append(out, f)
			} else {
				out = append(out, found(NodeCordoned, "node "+n.Name+" is cordoned (spec.unschedulable); kup will upgrade it and leave it cordoned", obj))
			}
		}
	}
	return append(out, leftPending(x.snap.Nodes)...)
}

// leftCordoned is the finding for a node a kup run cordoned and has not
// released (its state annotation says so): not cordoned "as found", but
// kup's to give back, which the next run that upgrades it does.
func leftCordoned(n *corev1.Node) (Finding, bool) {
	if !rollout.KupOwnsCordon(n) {
		return Finding{}, false
	}
	st, _ := rollout.StateOf(n)
	when := ""
	if !st.Updated.IsZero() {
		when = ", recorded " + st.Updated.UTC().Format("2006-01-02 15:04 MST")
	}
	obj := []Object{nodeObject(n.Name)}
	if inKupUpgrade(n) {
		return foundf(NodeKupCordoned, obj, "node %s was cordoned by a kup run to %s that stopped inside the node's upgrade (its last step: %s%s) and is not Ready, its kubelet not back; a run to %s runs the upgrade again, and any kup run that upgrades the node uncordons it", n.Name, st.Target, st.Phase, when, st.Target), true
	}
	if st.Phase == rollout.StepFailed {
		return foundf(NodeKupCordoned, obj, "node %s was left cordoned by a kup run to %s when its upgrade failed (its state annotation %s%s)", n.Name, st.Target, rollout.StateAnnotation, when), true
	}
	return foundf(NodeKupCordoned, obj, "node %s was cordoned by a kup run to %s that is under way or did not finish (its last step: %s%s); a run to %s resumes it, and any kup run that upgrades the node uncordons it", n.Name, st.Target, st.Phase, when, st.Target), true
}

// inKupUpgrade is true for a node that is not Ready inside an upgrade a
// kup run began and did not finish: cordoned and drained by kup, its
// kubelet being replaced. That is no sign of a sick node — a run upgrades
// it (again) first — so it is not KUP-NODE-001, a blocker, which would
// stop the very run that finishes it. A failed upgrade is not this: it
// wants a look first.
func inKupUpgrade(n *corev1.Node) bool {
	st, _ := rollout.StateOf(n)
	if !rollout.KupOwnsCordon(n) || !n.Spec.Unschedulable || (st.Phase != rollout.StepUpgrade && st.Phase != rollout.StepReady) {
		return false
	}
	c := condition(n, corev1.NodeReady)
	return c == nil || c.Status != corev1.ConditionTrue
}

// leftPending reports the nodes that carry kup's PreferNoSchedule taint,
// one finding per version the taint names.
func leftPending(nodes []corev1.Node) []Finding {
	byTarget := rollout.PendingByTarget(nodes)
	var out []Finding
	for _, target := range slices.Sorted(maps.Keys(byTarget)) {
		names := byTarget[target]
		objs := make([]Object, len(names))
		for i, n := range names {
			objs[i] = nodeObject(n)
		}
		shown := names
		if len(shown) > 5 {
			shown = append(slices.Clone(shown[:5]), fmt.Sprintf("and %d more", len(names)-5))
		}
		out = append(out, foundf(NodeKupPending, objs, "%d node(s) carry kup's taint %s:PreferNoSchedule from a kup run to %s that is under way or did not finish: %s",
			len(names), rollout.PendingTaint, target, strings.Join(shown, ", ")))
	}
	return out
}

// crashLooping reports whether any container of the pod waits in
// CrashLoopBackOff.
func crashLooping(p *corev1.Pod) bool {
	for _, ss := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, s := range ss {
			if s.State.Waiting != nil && s.State.Waiting.Reason == "CrashLoopBackOff" {
				return true
			}
		}
	}
	return false
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podHealth(x *index) []Finding {
	var pending, crashing, notReady []*corev1.Pod
	for _, p := range x.pods {
		if p.DeletionTimestamp != nil {
			continue // on its way out; its replacement is judged instead
		}
		switch {
		case crashLooping(p):
			crashing = append(crashing, p)
		case p.Status.Phase == corev1.PodPending || p.Status.Phase == "":
			pending = append(pending, p)
		case p.Status.Phase == corev1.PodRunning && !podReady(p):
			notReady = append(notReady, p)
		}
	}
	var out []Finding
	for _, g := range x.groupByOwner(pending) {
		reason := ""
		for _, c := range g.pods[0].Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Message != "" {
				reason = "; scheduler: " + c.Message
			}
		}
		out = append(out, foundf(PodsPending, objectsOf(g), "%s of %s Pending: %s%s",
			plural(len(g.pods), "pod"), g.owner, podNames(g.pods, 5), reason))
	}
	for _, g := range x.groupByOwner(crashing) {
		restarts := int32(0)
		for _, p := range g.pods {
			for _, s := range p.Status.ContainerStatuses {
				restarts = max(restarts, s.RestartCount)
			}
		}
		out = append(out, foundf(PodsCrashLooping, objectsOf(g), "%s of %s in CrashLoopBackOff (up to %d restarts): %s",
			plural(len(g.pods), "pod"), g.owner, restarts, podNames(g.pods, 5)))
	}
	for _, g := range x.groupByOwner(notReady) {
		nodes := map[string]bool{}
		for _, p := range g.pods {
			nodes[p.Spec.NodeName] = true
		}
		out = append(out, foundf(PodsNotReady, objectsOf(g), "%s of %s running but not Ready, on %s: %s",
			plural(len(g.pods), "pod"), g.owner, listNames(sortedKeys(nodes), 3), podNames(g.pods, 5)))
	}
	return out
}

func warningEvents(x *index) []Finding {
	type key struct{ reason, kind string }
	type group struct {
		count   int32
		objects map[Object]bool
		latest  string
		at      int64
	}
	groups := map[key]*group{}
	for i := range x.snap.Events {
		e := &x.snap.Events[i]
		if e.Type != corev1.EventTypeWarning {
			continue
		}
		k := key{e.Reason, e.InvolvedObject.Kind}
		g := groups[k]
		if g == nil {
			g = &group{objects: map[Object]bool{}}
			groups[k] = g
		}
		g.count += max(e.Count, 1)
		g.objects[Object{Kind: e.InvolvedObject.Kind, Namespace: e.InvolvedObject.Namespace, Name: e.InvolvedObject.Name}] = true
		if t := eventTime(e); t >= g.at {
			g.at, g.latest = t, e.Message
		}
	}
	keys := make([]key, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int { return cmp.Or(cmp.Compare(a.reason, b.reason), cmp.Compare(a.kind, b.kind)) })
	var out []Finding
	for _, k := range keys {
		g := groups[k]
		objs := make([]Object, 0, len(g.objects))
		for o := range g.objects {
			objs = append(objs, o)
		}
		slices.SortFunc(objs, compareObjects)
		out = append(out, foundf(WarningEvents, objs, "%s × %s on %s (%s); latest: %s",
			itoa(int(g.count)), k.reason, plural(len(objs), k.kind), "last hour", strings.TrimSpace(g.latest)))
	}
	return out
}

func eventTime(e *corev1.Event) int64 {
	for _, t := range []int64{e.LastTimestamp.Unix(), e.EventTime.Unix(), e.FirstTimestamp.Unix(), e.CreationTimestamp.Unix()} {
		if t > 0 {
			return t
		}
	}
	return 0
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
