package capacity

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Filter names the scheduler filter that turned a node down, in the order
// the checks run. A later filter means the node came closer to fitting,
// which is how Place picks the "best" node to explain a misfit.
type Filter string

const (
	// NoNodes: there is no node left to consider at all.
	NoNodes Filter = "no-nodes"
	// Unschedulable: the node is cordoned and the pod does not tolerate it.
	Unschedulable Filter = "unschedulable"
	// NodeSelector: spec.nodeSelector does not match the node's labels.
	NodeSelector Filter = "node-selector"
	// NodeAffinity: required node affinity does not match the node.
	NodeAffinity Filter = "node-affinity"
	// Taint: the node has a NoSchedule or NoExecute taint the pod does not
	// tolerate.
	Taint Filter = "taint"
	// Insufficient: the node does not have the room the pod requests.
	Insufficient Filter = "insufficient-resources"
)

// stage orders filters; higher passed more checks.
func (f Filter) stage() int {
	switch f {
	case Unschedulable:
		return 1
	case NodeSelector:
		return 2
	case NodeAffinity:
		return 3
	case Taint:
		return 4
	case Insufficient:
		return 5
	}
	return 0
}

// Misfit says why a pod found no place: the reason the best node (the one
// that passed the most filters, first in name order on a tie) turned it down.
type Misfit struct {
	Pod    string `json:"pod"`            // namespace/name
	Node   string `json:"node,omitempty"` // the best node; empty with NoNodes
	Filter Filter `json:"filter"`
	Reason string `json:"reason"`
}

func (m Misfit) String() string {
	if m.Node == "" {
		return fmt.Sprintf("pod %s: %s", m.Pod, m.Reason)
	}
	return fmt.Sprintf("pod %s: best node %s: %s", m.Pod, m.Node, m.Reason)
}

// unschedulableTaint is what the NodeUnschedulable plugin checks
// tolerations against for a node with spec.unschedulable.
var unschedulableTaint = v1.Taint{Key: v1.TaintNodeUnschedulable, Effect: v1.TaintEffectNoSchedule}

// tolerates reports whether one of tolerations tolerates taint. Comparison
// operators (Gt/Lt) are enabled: the API server only accepts them when its
// feature gate is on, so a pod that has one was admitted with it.
func tolerates(tolerations []v1.Toleration, taint *v1.Taint) bool {
	for i := range tolerations {
		if tolerations[i].ToleratesTaint(logr.Discard(), taint, true) {
			return true
		}
	}
	return false
}

// untoleratedTaint returns the first NoSchedule/NoExecute taint of node the
// pod does not tolerate. PreferNoSchedule never makes a pod Pending.
func untoleratedTaint(pod *v1.Pod, node *v1.Node) (*v1.Taint, bool) {
	for i := range node.Spec.Taints {
		t := &node.Spec.Taints[i]
		if t.Effect != v1.TaintEffectNoSchedule && t.Effect != v1.TaintEffectNoExecute {
			continue
		}
		if !tolerates(pod.Spec.Tolerations, t) {
			return t, true
		}
	}
	return nil, false
}

// matchesNodeSelector checks spec.nodeSelector: every key must be present
// with the same value.
func matchesNodeSelector(pod *v1.Pod, node *v1.Node) bool {
	for k, v := range pod.Spec.NodeSelector {
		if got, ok := node.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// matchesRequiredAffinity checks requiredDuringSchedulingIgnoredDuringExecution.
func matchesRequiredAffinity(pod *v1.Pod, node *v1.Node) bool {
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return true
	}
	return MatchNodeSelectorTerms(a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms, node)
}

// MatchNodeSelectorTerms reports whether node matches a required node
// selector, with the semantics of k8s.io/component-helpers nodeaffinity:
// the terms are ORed, a term's expressions and fields are ANDed, and a term
// with neither matches nothing (so a selector with no terms matches no node).
// It is written here, small, because component-helpers is not a dependency;
// FuzzMatchExpression checks it against k8s.io/apimachinery/pkg/labels.
func MatchNodeSelectorTerms(terms []v1.NodeSelectorTerm, node *v1.Node) bool {
	for i := range terms {
		t := &terms[i]
		if len(t.MatchExpressions) == 0 && len(t.MatchFields) == 0 {
			continue
		}
		if matchTerm(t, node) {
			return true
		}
	}
	return false
}

func matchTerm(t *v1.NodeSelectorTerm, node *v1.Node) bool {
	for i := range t.MatchExpressions {
		r := &t.MatchExpressions[i]
		value, present := node.Labels[r.Key]
		if !matchExpression(r.Operator, r.Values, value, present) {
			return false
		}
	}
	for i := range t.MatchFields {
		r := &t.MatchFields[i]
		// metadata.name is the only field the API accepts in matchFields, and
		// only with In and NotIn.
		if r.Key != "metadata.name" {
			return false
		}
		switch r.Operator {
		case v1.NodeSelectorOpIn:
			if !slices.Contains(r.Values, node.Name) {
				return false
			}
		case v1.NodeSelectorOpNotIn:
			if slices.Contains(r.Values, node.Name) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// matchExpression evaluates one node selector requirement against a label
// that is present with value, or absent. Like labels.Requirement.Matches,
// NotIn and DoesNotExist match an absent label, Gt and Lt compare base-10
// int64s and need exactly one value, and anything unparsable matches nothing.
func matchExpression(op v1.NodeSelectorOperator, values []string, value string, present bool) bool {
	switch op {
	case v1.NodeSelectorOpIn:
		return present && slices.Contains(values, value)
	case v1.NodeSelectorOpNotIn:
		return !present || !slices.Contains(values, value)
	case v1.NodeSelectorOpExists:
		return present
	case v1.NodeSelectorOpDoesNotExist:
		return !present
	case v1.NodeSelectorOpGt, v1.NodeSelectorOpLt:
		if !present || len(values) != 1 {
			return false
		}
		have, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return false
		}
		want, err := strconv.ParseInt(values[0], 10, 64)
		if err != nil {
			return false
		}
		if op == v1.NodeSelectorOpGt {
			return have > want
		}
		return have < want
	}
	return false
}

// insufficient returns the first resource pod requests more of than free
// holds, following NodeResourcesFit's fitsRequest: the pod count always
// counts; cpu, memory, ephemeral storage and scalar resources only when the
// pod asks for them (an overcommitted node still takes a pod requesting no
// cpu).
func insufficient(req, alloc, used Resources) (string, bool) {
	if fitsResources(req, alloc, used) {
		return "", false
	}
	if used.Pods+req.Pods > alloc.Pods {
		return fmt.Sprintf("Too many pods (%d of %d)", used.Pods, alloc.Pods), true
	}
	if req.IsZero() {
		return "", false
	}
	if req.MilliCPU > 0 && req.MilliCPU > alloc.MilliCPU-used.MilliCPU {
		return "Insufficient cpu (requests " + milli(req.MilliCPU) + ", free " + milli(alloc.MilliCPU-used.MilliCPU) + ")", true
	}
	if req.Memory > 0 && req.Memory > alloc.Memory-used.Memory {
		return "Insufficient memory (requests " + bytes(req.Memory) + ", free " + bytes(alloc.Memory-used.Memory) + ")", true
	}
	if req.EphemeralStorage > 0 && req.EphemeralStorage > alloc.EphemeralStorage-used.EphemeralStorage {
		return "Insufficient ephemeral-storage (requests " + bytes(req.EphemeralStorage) + ", free " + bytes(alloc.EphemeralStorage-used.EphemeralStorage) + ")", true
	}
	if len(req.Scalar) > 0 {
		names := make([]string, 0, len(req.Scalar))
		for name := range req.Scalar {
			names = append(names, string(name))
		}
		slices.Sort(names)
		for _, name := range names {
			n := v1.ResourceName(name)
			if q := req.Scalar[n]; q > 0 && q > alloc.Scalar[n]-used.Scalar[n] {
				return fmt.Sprintf("Insufficient %s (requests %d, free %d)", name, q, alloc.Scalar[n]-used.Scalar[n]), true
			}
		}
	}
	return "", false
}

// fitsResources is insufficient without the message, for the hot path of
// Place, which turns down many full nodes before it finds one with room.
func fitsResources(req, alloc, used Resources) bool {
	if used.Pods+req.Pods > alloc.Pods {
		return false
	}
	if req.MilliCPU > 0 && req.MilliCPU > alloc.MilliCPU-used.MilliCPU {
		return false
	}
	if req.Memory > 0 && req.Memory > alloc.Memory-used.Memory {
		return false
	}
	if req.EphemeralStorage > 0 && req.EphemeralStorage > alloc.EphemeralStorage-used.EphemeralStorage {
		return false
	}
	for n, q := range req.Scalar {
		if q > 0 && q > alloc.Scalar[n]-used.Scalar[n] {
			return false
		}
	}
	return true
}

func milli(v int64) string { return resource.NewMilliQuantity(v, resource.DecimalSI).String() }
func bytes(v int64) string { return resource.NewQuantity(v, resource.BinarySI).String() }

// verdict runs every filter in the scheduler's order and says which one
// turned the node down, with a message in the scheduler's words.
func verdict(pod *v1.Pod, req Resources, node *v1.Node, alloc, used Resources) (Filter, string, bool) {
	if node.Spec.Unschedulable && !tolerates(pod.Spec.Tolerations, &unschedulableTaint) {
		return Unschedulable, "node is cordoned (spec.unschedulable)", false
	}
	if !matchesNodeSelector(pod, node) {
		return NodeSelector, "node didn't match Pod's node selector", false
	}
	if !matchesRequiredAffinity(pod, node) {
		return NodeAffinity, "node didn't match Pod's required node affinity", false
	}
	if t, ok := untoleratedTaint(pod, node); ok {
		return Taint, fmt.Sprintf("node had untolerated taint {%s: %s} (%s)", t.Key, t.Value, t.Effect), false
	}
	if why, ok := insufficient(req, alloc, used); ok {
		return Insufficient, why, false
	}
	return "", "", true
}
