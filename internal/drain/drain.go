// Package drain cordons, drains and uncordons nodes on top of
// k8s.io/kubectl/pkg/drain: kubectl's Helper decides which pods go (its
// filters for DaemonSet, mirror, unmanaged and local-storage pods, plus
// kup's hostPath/local-PV filter) and sends each eviction. The eviction
// loop is kup's own because kubectl's sleeps a fixed 5 s after every 429
// and says nothing about why: kup instead watches the PodDisruptionBudget
// that refused the eviction and retries the moment it allows a disruption,
// telling the caller what it is waiting on.
//
// It never deletes a pod without the Eviction API unless DisableEviction
// is set, and never touches a node it was not asked to.
package drain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	kubectldrain "k8s.io/kubectl/pkg/drain"
)

// DefaultTimeout bounds one node's drain unless the caller says otherwise.
const DefaultTimeout = 15 * time.Minute

// Options are the drain policy. The zero value is kubectl's default
// policy: refuse emptyDir and unmanaged pods, evict (never delete).
type Options struct {
	// Timeout bounds the whole drain of one node (default DefaultTimeout).
	Timeout time.Duration
	// DeleteEmptyDirData allows evicting pods with emptyDir volumes (their
	// data is lost), as kubectl's --delete-emptydir-data.
	DeleteEmptyDirData bool
	// DeleteLocalData allows evicting pods with hostPath volumes or local
	// PersistentVolumes (data that stays behind on the node, or is lost
	// with it). kubectl does not know these; kup refuses them by default.
	DeleteLocalData bool
	// Force deletes unmanaged pods (no controller: they never come back),
	// as kubectl's --force.
	Force bool
	// DisableEviction deletes pods instead of evicting them, bypassing
	// PodDisruptionBudgets, as kubectl's --disable-eviction.
	DisableEviction bool
	// GracePeriodSeconds overrides pods' termination grace (-1: theirs).
	GracePeriodSeconds int
	// Waiting is told, at most every few seconds per pod, why a drain is
	// waiting (a PDB at 0 disruptions allowed, a pod still terminating).
	Waiting func(node string, reason string)
	// Evicted is told about each pod whose eviction was accepted.
	Evicted func(node string, pod *corev1.Pod)
	// PodsOn, when set, reads the pods bound to a node from a cache the
	// caller keeps current (an informer); ok false means it cannot answer
	// now. Waiting for evicted pods to go then polls it, and asks the API
	// server only to confirm the last are gone, instead of a LIST every
	// half second per draining node (about 10 per node on the 200-node
	// benchmark, 2,025 of the rollout's 11,445 requests).
	PodsOn func(node string) (pods []*corev1.Pod, ok bool)
}

// Result is what a drain did.
type Result struct {
	Node string
	// Evicted are the pods whose eviction (or deletion) was accepted.
	Evicted []string
	// Refusals counts 429 answers (PDB at its limit) met on the way.
	Refusals int
	// Warnings are kubectl's (e.g. "ignoring DaemonSet-managed Pods").
	Warnings string
	Duration time.Duration
}

// Error says why a node's drain did not finish, naming the pod and the
// budget that held it.
type Error struct {
	Node string
	Pod  string
	PDB  string
	// TimedOut is true when the deadline passed.
	TimedOut bool
	Err      error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "draining node %s", e.Node)
	if e.Pod != "" {
		fmt.Fprintf(&b, ": pod %s", e.Pod)
	}
	if e.PDB != "" {
		fmt.Fprintf(&b, " blocked by PDB %s", e.PDB)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Drainer drains nodes of one cluster. One Drainer should drain every
// node of a rollout: it lets one eviction per PodDisruptionBudget be in
// flight at a time across all the nodes it drains at once (see gate).
type Drainer struct {
	Client  kubernetes.Interface
	Options Options

	gatesMu sync.Mutex
	gates   map[string]chan struct{}
}

// gate admits one eviction at a time under the PDB key (namespace/name),
// across every node this Drainer drains. The API server admits an
// eviction by updating the PDB's status; evictions of one PDB sent
// together conflict on that update and the server retries each after a
// half-second pause (up to 20 times) before answering. A wave of 18 nodes
// sending its 360 evictions at once measured 8.2 s of server time per
// eviction (BenchmarkRolloutStrategies), most of it those pauses; one at
// a time per PDB, the same benchmark measures 215–240 ms median and 8–10 %
// at 450 ms or more (a conflict with the disruption controller's own
// status updates) on a 2-core machine whose control plane is busy, and a
// PDB out of budget is waited on by one eviction instead of being asked
// by all. Two at a time per PDB measured no faster: 527 ms mean, the
// pauses back. Evictions under different PDBs still go in parallel.
func (d *Drainer) gate(ctx context.Context, key string) (release func(), err error) {
	d.gatesMu.Lock()
	if d.gates == nil {
		d.gates = map[string]chan struct{}{}
	}
	g, ok := d.gates[key]
	if !ok {
		g = make(chan struct{}, 1)
		d.gates[key] = g
	}
	d.gatesMu.Unlock()
	select {
	case g <- struct{}{}:
		return func() { <-g }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// pdbsOf maps each pod to the one PDB selecting it ("namespace/name"), or
// to nothing when none or several do (the Eviction API refuses the
// latter outright). One LIST per namespace, from the watch cache.
func (d *Drainer) pdbsOf(ctx context.Context, pods []corev1.Pod) map[types.UID]string {
	byNS := map[string][]policyv1.PodDisruptionBudget{}
	out := map[types.UID]string{}
	for _, p := range pods {
		list, ok := byNS[p.Namespace]
		if !ok {
			l, err := d.Client.PolicyV1().PodDisruptionBudgets(p.Namespace).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
			if err == nil {
				list = l.Items
			}
			// Without the list the pod goes ungated, as before the gate.
			byNS[p.Namespace] = list
		}
		var match []string
		for _, b := range list {
			sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
			if err != nil || sel.Empty() || !sel.Matches(labels.Set(p.Labels)) {
				continue
			}
			match = append(match, b.Namespace+"/"+b.Name)
		}
		if len(match) == 1 {
			out[p.UID] = match[0]
		}
	}
	return out
}

// Cordon marks node unschedulable if it is not already, and reports
// whether it was schedulable before (so the caller uncordons only what it
// cordoned, as kured does).
func (d *Drainer) Cordon(ctx context.Context, node string) (wasSchedulable bool, err error) {
	return d.setUnschedulable(ctx, node, true)
}

// Uncordon marks node schedulable if it is not already.
func (d *Drainer) Uncordon(ctx context.Context, node string) error {
	_, err := d.setUnschedulable(ctx, node, false)
	return err
}

func (d *Drainer) setUnschedulable(ctx context.Context, name string, desired bool) (bool, error) {
	verb := "cordoning"
	if !desired {
		verb = "uncordoning"
	}
	n, err := d.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("%s node %s: %w", verb, name, err)
	}
	wasSchedulable := !n.Spec.Unschedulable
	h := kubectldrain.NewCordonHelper(n)
	if h.UpdateIfRequired(desired) {
		err, patchErr := h.PatchOrReplaceWithContext(ctx, d.Client, false)
		if patchErr != nil {
			return wasSchedulable, fmt.Errorf("%s node %s: %w", verb, name, patchErr)
		}
		if err != nil {
			return wasSchedulable, fmt.Errorf("%s node %s: %w", verb, name, err)
		}
	}
	return wasSchedulable, nil
}

func (d *Drainer) helper(ctx context.Context) *kubectldrain.Helper {
	o := d.Options
	grace := o.GracePeriodSeconds
	if grace == 0 {
		grace = -1
	}
	h := &kubectldrain.Helper{
		Ctx: ctx, Client: d.Client,
		Force: o.Force, IgnoreAllDaemonSets: true, DeleteEmptyDirData: o.DeleteEmptyDirData,
		DisableEviction: o.DisableEviction, GracePeriodSeconds: grace,
		Out: io.Discard, ErrOut: io.Discard,
	}
	if !o.DeleteLocalData {
		h.AdditionalFilters = append(h.AdditionalFilters, localDataFilter)
	}
	return h
}

// localDataFilter refuses pods whose data lives on the node outside
// emptyDir: hostPath volumes and (by name convention of the claim we cannot
// resolve here) nothing else — local PersistentVolumes are refused by
// Drain itself after resolving claims.
func localDataFilter(pod corev1.Pod) kubectldrain.PodDeleteStatus {
	if fate := podFate(pod); fate != "" {
		return kubectldrain.MakePodDeleteStatusOkay()
	}
	for _, v := range pod.Spec.Volumes {
		if v.HostPath != nil {
			return kubectldrain.MakePodDeleteStatusWithError(fmt.Sprintf("uses hostPath volume %q: its data stays on this node (pass --delete-local-data to evict anyway)", v.Name))
		}
	}
	return kubectldrain.MakePodDeleteStatusOkay()
}

// podFate is non-empty for pods a drain leaves alone anyway.
func podFate(pod corev1.Pod) string {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return "finished"
	}
	if _, mirror := pod.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return "mirror"
	}
	if c := metav1.GetControllerOf(&pod); c != nil && c.Kind == "DaemonSet" {
		return "daemonset"
	}
	return ""
}

// PodsToEvict returns the pods a drain of node would evict, or an error
// naming each pod the policy refuses (unmanaged, emptyDir, hostPath,
// local PV), without changing anything.
func (d *Drainer) PodsToEvict(ctx context.Context, node string) ([]corev1.Pod, string, error) {
	list, errs := d.helper(ctx).GetPodsForDeletion(node)
	if len(errs) > 0 {
		return nil, "", &Error{Node: node, Err: errors.Join(errs...)}
	}
	pods := list.Pods()
	if !d.Options.DeleteLocalData {
		if err := d.refuseLocalPVs(ctx, node, pods); err != nil {
			return nil, "", err
		}
	}
	return pods, list.Warnings(), nil
}

// refuseLocalPVs refuses pods whose claims are bound to local
// PersistentVolumes: the data is on this node's disk.
func (d *Drainer) refuseLocalPVs(ctx context.Context, node string, pods []corev1.Pod) error {
	for _, p := range pods {
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim == nil {
				continue
			}
			pvc, err := d.Client.CoreV1().PersistentVolumeClaims(p.Namespace).Get(ctx, v.PersistentVolumeClaim.ClaimName, metav1.GetOptions{})
			if err != nil || pvc.Spec.VolumeName == "" {
				continue
			}
			pv, err := d.Client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
			if err != nil {
				continue
			}
			if pv.Spec.Local != nil || pv.Spec.HostPath != nil {
				return &Error{Node: node, Pod: p.Namespace + "/" + p.Name, Err: fmt.Errorf("uses local PersistentVolume %s: its data is on this node (pass --delete-local-data to evict anyway)", pv.Name)}
			}
		}
	}
	return nil
}

// Drain evicts every pod the policy allows from node (which the caller has
// cordoned) and waits until they are gone. A 429 (the pod's PDB allows no
// disruption now) makes it watch that PDB and retry as soon as it allows
// one; the whole drain is bounded by Options.Timeout.
func (d *Drainer) Drain(ctx context.Context, node string) (*Result, error) {
	start := time.Now()
	timeout := d.Options.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res := &Result{Node: node}
	pods, warnings, err := d.PodsToEvict(ctx, node)
	if err != nil {
		return res, err
	}
	res.Warnings = warnings
	gv := policyv1.SchemeGroupVersion
	if !d.Options.DisableEviction {
		if gv, err = kubectldrain.CheckEvictionSupport(d.Client); err != nil {
			return res, &Error{Node: node, Err: fmt.Errorf("checking eviction support: %w", err)}
		}
		if gv.Empty() {
			return res, &Error{Node: node, Err: errors.New("the API server does not support the Eviction API; use --disable-eviction to delete pods instead (bypasses PodDisruptionBudgets)")}
		}
	}
	h := d.helper(ctx)
	var budgets map[types.UID]string
	if !d.Options.DisableEviction {
		budgets = d.pdbsOf(ctx, pods)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, len(pods))
	var leaving []corev1.Pod
	for i := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			refusals, fate, err := d.evictOne(ctx, h, gv, node, pods[i], budgets[pods[i].UID], timeout)
			mu.Lock()
			defer mu.Unlock()
			res.Refusals += refusals
			if fate != podGone {
				leaving = append(leaving, pods[i])
			}
			if err != nil {
				errs[i] = err
				return
			}
			if fate == podEvicted {
				res.Evicted = append(res.Evicted, pods[i].Namespace+"/"+pods[i].Name)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			res.Duration = time.Since(start)
			return res, err // the first pod's reason is the one to show
		}
	}
	err = d.waitGone(ctx, node, leaving, timeout)
	res.Duration = time.Since(start)
	return res, err
}

// evictFate is what evictOne left behind.
type evictFate int

const (
	podGone    evictFate = iota // not found: nothing to wait for
	podEvicted                  // eviction (or deletion) accepted
	podGoing                    // going with its namespace
)

// evictOne evicts pod, waiting on its PDB when refused; budget is the PDB
// selecting it ("namespace/name", or empty), whose gate it holds while it
// asks and waits. It does not wait for the pod to be gone: Drain waits
// for all of a node's pods at once.
func (d *Drainer) evictOne(ctx context.Context, h *kubectldrain.Helper, gv schema.GroupVersion, node string, pod corev1.Pod, budget string, timeout time.Duration) (int, evictFate, error) {
	name := pod.Namespace + "/" + pod.Name
	refusals := 0
	if budget != "" {
		release, err := d.gate(ctx, budget)
		if err != nil {
			return 0, podGone, &Error{Node: node, Pod: name, PDB: budget, TimedOut: errors.Is(err, context.DeadlineExceeded),
				Err: fmt.Errorf("waiting for the other evictions under PDB %s, after %s: %w", budget, timeout, err)}
		}
		defer release()
	}
	lastTold := time.Time{}
	for {
		var err error
		if d.Options.DisableEviction {
			err = h.DeletePod(pod)
		} else {
			err = h.EvictPod(pod, gv)
		}
		switch {
		case err == nil:
			if d.Options.Evicted != nil {
				d.Options.Evicted(node, &pod)
			}
			return refusals, podEvicted, nil
		case apierrors.IsNotFound(err):
			return refusals, podGone, nil
		case apierrors.IsTooManyRequests(err):
			refusals++
			pdb, why := d.blockingPDB(ctx, pod)
			if d.Options.Waiting != nil && time.Since(lastTold) > 5*time.Second {
				d.Options.Waiting(node, fmt.Sprintf("pod %s waits on %s", name, why))
				lastTold = time.Now()
			}
			if werr := d.waitForBudget(ctx, pod.Namespace, pdb); werr != nil {
				return refusals, podGone, &Error{Node: node, Pod: name, PDB: pdbName(pod.Namespace, pdb), TimedOut: errors.Is(werr, context.DeadlineExceeded),
					Err: fmt.Errorf("%s, after %s: %w", why, timeout, werr)}
			}
		case apierrors.IsInternalError(err) && strings.Contains(err.Error(), "more than one PodDisruptionBudget"):
			// The Eviction API refuses pods under two PDBs outright.
			return refusals, podGone, &Error{Node: node, Pod: name, Err: fmt.Errorf("the Eviction API refuses it: %w (make exactly one PDB select it)", err)}
		case apierrors.IsForbidden(err) && apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
			// Its namespace is going away; the pod goes with it.
			return refusals, podGoing, nil
		case apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) || apierrors.IsConflict(err) || apierrors.IsServiceUnavailable(err):
			// The API server gave up on the request without deciding it:
			// its own timeout, or 20 conflicting updates of the PDB's
			// status when many evictions under one budget arrive together
			// (a wave of 16 nodes met a 60 s timeout on an eviction). Ask
			// again after a pause, within the drain's deadline.
			if d.Options.Waiting != nil && time.Since(lastTold) > 5*time.Second {
				d.Options.Waiting(node, fmt.Sprintf("pod %s: eviction not decided by the API server (%v); retrying", name, err))
				lastTold = time.Now()
			}
			if werr := sleepCtx(ctx, time.Second); werr != nil {
				return refusals, podGone, &Error{Node: node, Pod: name, TimedOut: true, Err: fmt.Errorf("not evicted within %s: %w", timeout, err)}
			}
		default:
			if ctx.Err() != nil {
				return refusals, podGone, &Error{Node: node, Pod: name, TimedOut: true, Err: fmt.Errorf("not evicted within %s: %w", timeout, ctx.Err())}
			}
			return refusals, podGone, &Error{Node: node, Pod: name, Err: err}
		}
		if ctx.Err() != nil {
			return refusals, podGone, &Error{Node: node, Pod: name, TimedOut: true, Err: fmt.Errorf("not evicted within %s", timeout)}
		}
		if fresh, err := d.Client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{}); err == nil {
			pod = *fresh
		} else if apierrors.IsNotFound(err) {
			return refusals, podGone, nil
		}
	}
}

func pdbName(ns, name string) string {
	if name == "" {
		return ""
	}
	return ns + "/" + name
}

// blockingPDB finds the PDB selecting pod and describes its state, e.g.
// "PDB shop/cart (0 disruptions allowed, 2 of 6 pods not healthy)".
func (d *Drainer) blockingPDB(ctx context.Context, pod corev1.Pod) (string, string) {
	pdbs, err := d.Client.PolicyV1().PodDisruptionBudgets(pod.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", "a PodDisruptionBudget (429 Too Many Requests)"
	}
	for _, p := range pdbs.Items {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		unhealthy := p.Status.ExpectedPods - p.Status.CurrentHealthy
		return p.Name, fmt.Sprintf("PDB %s/%s (%d disruptions allowed, %d of %d pods not healthy)",
			p.Namespace, p.Name, p.Status.DisruptionsAllowed, unhealthy, p.Status.ExpectedPods)
	}
	return "", "the API server's rate limit (429 Too Many Requests)"
}

// waitForBudget watches the named PDB until it allows a disruption (or,
// without a name, waits a short back-off). A watch rather than a sleep:
// the retry goes out as soon as a replacement pod turns Ready.
func (d *Drainer) waitForBudget(ctx context.Context, ns, pdb string) error {
	if pdb == "" {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
			return nil
		}
	}
	pdbs := d.Client.PolicyV1().PodDisruptionBudgets(ns)
	cur, err := pdbs.Get(ctx, pdb, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	if cur.Status.DisruptionsAllowed > 0 {
		// Allowed already (another evictor may take it first; the retry
		// then meets a fresh 429 and comes back here).
		return sleepCtx(ctx, 200*time.Millisecond)
	}
	// Bound each watch so a lost event costs seconds, not the whole drain.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	w, err := pdbs.Watch(wctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", pdb).String(), ResourceVersion: cur.ResourceVersion})
	if err != nil {
		return sleepCtx(ctx, time.Second)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wctx.Done():
			return nil // re-check with a fresh GET on the next attempt
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil
			}
			if p, ok := ev.Object.(*policyv1.PodDisruptionBudget); ok && p.Status.DisruptionsAllowed > 0 {
				return nil
			}
		}
	}
}

// waitGone waits until none of pods (these instances: same UID) is on
// node any more. It asks with one LIST of the node's pods per round, from
// the API server's watch cache (indexed by node), however many pods are
// leaving: a GET per pod every 300 ms made a wave of 15 nodes send about
// a thousand requests a second, and the client's rate limiter then held
// back the wave's evictions behind its own polling. A cached read can
// only be older than the truth, so it may report a pod a little late,
// never gone too early.
func (d *Drainer) waitGone(ctx context.Context, node string, pods []corev1.Pod, timeout time.Duration) error {
	leaving := make(map[types.UID]string, len(pods))
	for _, p := range pods {
		leaving[p.UID] = p.Namespace + "/" + p.Name
	}
	onNode := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String(), ResourceVersion: "0"}
	delay := 50 * time.Millisecond
	for len(leaving) > 0 {
		if err := sleepCtx(ctx, delay); err != nil {
			break
		}
		delay = min(2*delay, 500*time.Millisecond)
		if still, ok := d.stillOn(node, leaving); ok && still > 0 {
			// The cache costs nothing to read: look again sooner.
			delay = 100 * time.Millisecond
			continue
		}
		// The cache says every pod is gone, or cannot say. It is the API
		// server's word a moment late, and may not yet hold a pod created
		// just before the drain listed it: the LIST decides.
		list, err := d.Client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, onNode)
		if err != nil {
			continue // a failed read is retried until the deadline
		}
		present := make(map[types.UID]bool, len(list.Items))
		for _, p := range list.Items {
			present[p.UID] = true
		}
		for uid := range leaving {
			if !present[uid] {
				delete(leaving, uid)
			}
		}
	}
	if len(leaving) == 0 {
		return nil
	}
	names := slices.Sorted(maps.Values(leaving))
	return &Error{Node: node, Pod: names[0], TimedOut: true, Err: fmt.Errorf("evicted but still terminating after %s (%d pod(s) in all)", timeout, len(names))}
}

// stillOn counts the pods of leaving that Options.PodsOn still finds on
// node; ok is false without PodsOn or when it cannot answer.
func (d *Drainer) stillOn(node string, leaving map[types.UID]string) (still int, ok bool) {
	if d.Options.PodsOn == nil {
		return 0, false
	}
	pods, ok := d.Options.PodsOn(node)
	if !ok {
		return 0, false
	}
	for _, p := range pods {
		if _, waiting := leaving[p.UID]; waiting {
			still++
		}
	}
	return still, true
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// Refusal says why the drain policy would refuse to evict pod ("" when it
// would not), without asking the cluster: the same rules as kubectl's
// filters (unmanaged pods need Force, emptyDir needs DeleteEmptyDirData)
// plus kup's hostPath rule. Local PersistentVolumes need the claim and are
// only caught by Drain itself. Used to refuse a rollout before it starts
// rather than at its tenth wave.
func Refusal(pod *corev1.Pod, o Options) string {
	if podFate(*pod) != "" || pod.DeletionTimestamp != nil {
		return ""
	}
	if metav1.GetControllerOf(pod) == nil && !o.Force {
		return fmt.Sprintf("pod %s/%s has no controller: a drain deletes it for good (pass --force to allow)", pod.Namespace, pod.Name)
	}
	for _, v := range pod.Spec.Volumes {
		if v.EmptyDir != nil && !o.DeleteEmptyDirData {
			return fmt.Sprintf("pod %s/%s uses emptyDir volume %q: its data is lost (pass --delete-emptydir-data to allow)", pod.Namespace, pod.Name, v.Name)
		}
		if v.HostPath != nil && !o.DeleteLocalData {
			return fmt.Sprintf("pod %s/%s uses hostPath volume %q: its data stays on the node (pass --delete-local-data to allow)", pod.Namespace, pod.Name, v.Name)
		}
	}
	return ""
}
