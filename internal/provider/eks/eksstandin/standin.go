// Package eksstandin is a stand-in for the Amazon EKS API, for tests only:
// an HTTP server on loopback that answers the operations kup's EKS
// provider calls with the request and response shapes, status values and
// error codes of the EKS API reference (restJson1, as the AWS SDK for Go
// v2 serialises them), and acts on a sandbox cluster behind it, so the
// provider is tested end to end without an AWS account.
//
// What it does to the sandbox is what EKS does to a cluster:
// UpdateClusterVersion moves the sandbox's control plane one minor (the
// patch is the stand-in's choice, as EKS's is); a node group version
// update rolls the sandbox nodes labelled eks.amazonaws.com/nodegroup,
// maxUnavailable at a time: cordon, drain through the Eviction API with a
// per-node limit (EKS documents 15 minutes), then the kubelet version;
// a drain that hits the limit fails the update with PodEvictionFailure,
// saying no more than EKS does ("Reached max retries while trying to evict
// pods from nodes in node group …").
//
// It never decides anything for kup and is never linked into the kup
// binary (only _test files import it). A difference from EKS it knows
// of: nodes are upgraded in place (EKS launches new instances, surging
// first), so node names survive an update.
package eksstandin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/eks/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"

	sbx "github.com/kup-project/kup/internal/sandbox"
)

// NodegroupLabel is the label EKS puts on the nodes of a managed node group.
const NodegroupLabel = "eks.amazonaws.com/nodegroup"

// Options describe the EKS cluster the stand-in pretends to be.
type Options struct {
	// Name is the EKS cluster's name.
	Name string
	// Sandbox is the cluster behind it.
	Sandbox *sbx.Cluster
	// Releases maps an EKS minor ("1.36") to the sandbox release the
	// control plane and kubelets run for it ("v1.36.3"). The cluster's
	// starting minor is read from the sandbox.
	Releases map[string]string
	// Addons are the installed managed add-ons, name → version.
	Addons map[string]string
	// AddonVersions is the add-on catalogue DescribeAddonVersions serves.
	AddonVersions []AddonVersion
	// Nodegroups are the managed node groups; their nodes are the sandbox
	// nodes labelled NodegroupLabel=name.
	Nodegroups []string
	// Insights are the upgrade and rollback insights the cluster has.
	Insights []Insight
	// EvictionLimit is how long a node group update tries to drain one
	// node before failing with PodEvictionFailure (EKS: 15 minutes).
	EvictionLimit time.Duration
	// AddonUpdateTime is how long an add-on stays UPDATING.
	AddonUpdateTime time.Duration
}

// AddonVersion is one version of an add-on and the cluster minors it
// supports; Default marks the version EKS installs by default on them.
type AddonVersion struct {
	Addon, Version string
	Clusters       []string
	Default        bool
}

// Insight is one insight of the cluster.
type Insight struct {
	ID, Name, Category, KubernetesVersion string
	Status, Reason                        string
	Description, Recommendation           string
	// Resources are Kubernetes resource URIs the insight concerns.
	Resources []string
}

// Server is a running stand-in.
type Server struct {
	opts Options
	srv  *http.Server
	ln   net.Listener
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu         sync.Mutex
	version    string // EKS minor
	status     string
	upgradedAt time.Time
	previous   string
	updates    map[string]*update
	addons     map[string]*addon
	nodegroups map[string]*nodegroup
	// Calls counts requests by operation, for tests that assert what kup
	// asked (never used to fake a result).
	calls map[string]int
}

type update struct {
	ID        string
	Type      string
	Status    string
	Params    [][2]string
	Errors    []errorDetail
	CreatedAt time.Time
	Nodegroup string
	Addon     string
}

type errorDetail struct {
	ErrorCode    string   `json:"errorCode"`
	ErrorMessage string   `json:"errorMessage"`
	ResourceIDs  []string `json:"resourceIds,omitempty"`
}

type addon struct {
	name, version, status string
}

type nodegroup struct {
	name, version, status string
	maxUnavailable        int
}

// Start serves the stand-in on a loopback port until Close.
func Start(opts Options) (*Server, error) {
	if opts.EvictionLimit == 0 {
		opts.EvictionLimit = 15 * time.Minute
	}
	if opts.AddonUpdateTime == 0 {
		opts.AddonUpdateTime = 500 * time.Millisecond
	}
	v, err := opts.Sandbox.ServerVersion(context.Background())
	if err != nil {
		return nil, fmt.Errorf("reading the sandbox's version: %w", err)
	}
	s := &Server{opts: opts, version: minorOf(v), status: string(types.ClusterStatusActive),
		updates: map[string]*update{}, addons: map[string]*addon{}, nodegroups: map[string]*nodegroup{}, calls: map[string]int{}}
	for n, av := range opts.Addons {
		s.addons[n] = &addon{name: n, version: av, status: string(types.AddonStatusActive)}
	}
	for _, n := range opts.Nodegroups {
		// A group's version is its nodes' oldest kubelet minor.
		g := &nodegroup{name: n, version: s.version, status: string(types.NodegroupStatusActive), maxUnavailable: 1}
		nodes, err := s.nodes(context.Background(), n)
		if err != nil {
			return nil, fmt.Errorf("listing the nodes of node group %s: %w", n, err)
		}
		for _, node := range nodes {
			if m := minorOf(node.Status.NodeInfo.KubeletVersion); minorNumber(m) < minorNumber(g.version) {
				g.version = m
			}
		}
		s.nodegroups[n] = g
	}
	s.ctx, s.stop = context.WithCancel(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL is the endpoint to give the SDK (AWS_ENDPOINT_URL_EKS).
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Close stops serving and waits for the updates in flight to stop.
func (s *Server) Close() {
	s.stop()
	_ = s.srv.Close()
	s.wg.Wait()
}

// Calls returns how many times each operation was called.
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// Addon returns an add-on's version and status.
func (s *Server) Addon(name string) (version, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.addons[name]; a != nil {
		return a.version, a.status
	}
	return "", ""
}

// Nodegroup returns a node group's version and the maxUnavailable of its
// update configuration.
func (s *Server) Nodegroup(name string) (version string, maxUnavailable int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.nodegroups[name]; g != nil {
		return g.version, g.maxUnavailable
	}
	return "", 0
}

// SetUpgradedAt moves the cluster's history in time so that the last
// control-plane upgrade happened at t (tests of the rollback window): the
// upgrade time and every control-plane update shift by the same amount.
func (s *Server) SetUpgradedAt(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delta := t.Sub(s.upgradedAt)
	s.upgradedAt = t
	for _, u := range s.updates {
		if u.Nodegroup == "" && u.Addon == "" {
			u.CreatedAt = u.CreatedAt.Add(delta)
		}
	}
}

func minorOf(v string) string {
	v = strings.TrimPrefix(v, "v")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}

func minorNumber(v string) int {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return -1
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil {
		return -1
	}
	return n
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// apiError is an EKS error: the HTTP status, the error code the SDK turns
// into a typed error (types.ResourceInUseException …), and the message.
type apiError struct {
	status        int
	code, message string
	fields        map[string]string
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	h := func(op string, fn func(r *http.Request) (any, *apiError)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			s.calls[op]++
			s.mu.Unlock()
			out, aerr := fn(r)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Amzn-Requestid", newID())
			if aerr != nil {
				body := map[string]string{"__type": aerr.code, "message": aerr.message}
				for k, v := range aerr.fields {
					body[k] = v
				}
				w.Header().Set("X-Amzn-Errortype", aerr.code)
				w.WriteHeader(aerr.status)
				_ = json.NewEncoder(w).Encode(body)
				return
			}
			_ = json.NewEncoder(w).Encode(out)
		}
	}
	mux.HandleFunc("GET /clusters/{name}", h("DescribeCluster", s.describeCluster))
	mux.HandleFunc("POST /clusters/{name}/updates", h("UpdateClusterVersion", s.updateClusterVersion))
	mux.HandleFunc("GET /clusters/{name}/updates", h("ListUpdates", s.listUpdates))
	mux.HandleFunc("GET /clusters/{name}/updates/{updateId}", h("DescribeUpdate", s.describeUpdate))
	mux.HandleFunc("POST /clusters/{name}/insights", h("ListInsights", s.listInsights))
	mux.HandleFunc("GET /clusters/{name}/insights/{id}", h("DescribeInsight", s.describeInsight))
	mux.HandleFunc("GET /clusters/{name}/addons", h("ListAddons", s.listAddons))
	mux.HandleFunc("GET /clusters/{name}/addons/{addon}", h("DescribeAddon", s.describeAddon))
	mux.HandleFunc("POST /clusters/{name}/addons/{addon}/update", h("UpdateAddon", s.updateAddon))
	mux.HandleFunc("GET /addons/supported-versions", h("DescribeAddonVersions", s.describeAddonVersions))
	mux.HandleFunc("GET /clusters/{name}/node-groups", h("ListNodegroups", s.listNodegroups))
	mux.HandleFunc("GET /clusters/{name}/node-groups/{ng}", h("DescribeNodegroup", s.describeNodegroup))
	mux.HandleFunc("POST /clusters/{name}/node-groups/{ng}/update-config", h("UpdateNodegroupConfig", s.updateNodegroupConfig))
	mux.HandleFunc("POST /clusters/{name}/node-groups/{ng}/update-version", h("UpdateNodegroupVersion", s.updateNodegroupVersion))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Amzn-Errortype", "UnknownOperationException")
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": "UnknownOperationException", "message": "the stand-in does not implement " + r.Method + " " + r.URL.Path})
	})
	return mux
}

func notFound(what string) *apiError {
	return &apiError{status: http.StatusNotFound, code: "ResourceNotFoundException", message: what + " not found."}
}

func invalidParameter(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "InvalidParameterException", message: fmt.Sprintf(format, args...)}
}

func inUse(format string, args ...any) *apiError {
	return &apiError{status: http.StatusConflict, code: "ResourceInUseException", message: fmt.Sprintf(format, args...)}
}

func (s *Server) cluster(r *http.Request) *apiError {
	if r.PathValue("name") != s.opts.Name {
		return notFound("No cluster found for name: " + r.PathValue("name") + ".")
	}
	return nil
}

func epoch(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func (s *Server) describeCluster(r *http.Request) (any, *apiError) {
	if err := s.cluster(r); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return map[string]any{"cluster": map[string]any{
		"name":            s.opts.Name,
		"arn":             "arn:aws:eks:us-east-1:000000000000:cluster/" + s.opts.Name,
		"version":         s.version,
		"platformVersion": "eks.1",
		"status":          s.status,
		"endpoint":        s.opts.Sandbox.RESTConfig().Host,
		"createdAt":       epoch(s.opts.Sandbox.Created),
		"health":          map[string]any{"issues": []any{}},
	}}, nil
}

func (u *update) json() map[string]any {
	params := []map[string]string{}
	for _, p := range u.Params {
		params = append(params, map[string]string{"type": p[0], "value": p[1]})
	}
	errs := u.Errors
	if errs == nil {
		errs = []errorDetail{}
	}
	return map[string]any{"update": map[string]any{"id": u.ID, "status": u.Status, "type": u.Type, "params": params, "createdAt": epoch(u.CreatedAt), "errors": errs}}
}

// inProgress returns the update in progress on the cluster itself
// (nodegroup and addon empty) or on one node group or add-on.
func (s *Server) inProgress(nodegroup, addon string) *update {
	for _, u := range s.updates {
		if u.Status == string(types.UpdateStatusInProgress) && u.Nodegroup == nodegroup && u.Addon == addon {
			return u
		}
	}
	return nil
}

func (s *Server) newUpdate(typ string, nodegroup, addon string, params ...[2]string) *update {
	u := &update{ID: newID(), Type: typ, Status: string(types.UpdateStatusInProgress), CreatedAt: time.Now(), Nodegroup: nodegroup, Addon: addon, Params: params}
	s.updates[u.ID] = u
	return u
}

func (s *Server) finish(u *update, errs ...errorDetail) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(errs) > 0 {
		u.Status, u.Errors = string(types.UpdateStatusFailed), errs
		return
	}
	u.Status = string(types.UpdateStatusSuccessful)
}

func decode(r *http.Request, v any) *apiError {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		return &apiError{status: http.StatusBadRequest, code: "InvalidRequestException", message: "malformed request body: " + err.Error()}
	}
	return nil
}

// updateClusterVersion is UpdateClusterVersion: one minor forward, or one
// back within the rollback window (see rollback.go).
func (s *Server) updateClusterVersion(r *http.Request) (any, *apiError) {
	if err := s.cluster(r); err != nil {
		return nil, err
	}
	var in struct {
		Version string `json:"version"`
		Force   bool   `json:"force"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.inProgress("", ""); u != nil {
		return nil, inUse("Cannot update cluster %s because update %s (%s) is in progress.", s.opts.Name, u.ID, u.Type)
	}
	cur, want := minorNumber(s.version), minorNumber(in.Version)
	release, known := s.opts.Releases[in.Version]
	switch {
	case want < 0 || !known:
		return nil, invalidParameter("Unsupported Kubernetes version %s.", in.Version)
	case want == cur+1:
	case want == cur-1:
		return s.startRollback(in.Version, release, in.Force)
	default:
		return nil, invalidParameter("Unsupported Kubernetes minor version update from %s to %s.", s.version, in.Version)
	}
	for _, g := range s.nodegroups {
		if g.version != s.version {
			return nil, invalidParameter("Nodegroup %s is running Kubernetes %s: all managed node groups must run the cluster's version %s before the cluster can be updated to %s.", g.name, g.version, s.version, in.Version)
		}
	}
	for _, ins := range s.opts.Insights {
		if ins.Category == string(types.CategoryUpgradeReadiness) && ins.KubernetesVersion == in.Version && ins.Status == string(types.InsightStatusValueError) && !in.Force {
			return nil, invalidParameter("Upgrade readiness check failed for insight %q (%s): %s. Set force to true to override.", ins.Name, ins.ID, ins.Reason)
		}
	}
	u := s.newUpdate(string(types.UpdateTypeVersionUpdate), "", "", [2]string{"Version", in.Version}, [2]string{"PlatformVersion", "eks.1"})
	s.status = string(types.ClusterStatusUpdating)
	from := s.version
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := s.opts.Sandbox.UpgradeControlPlane(s.ctx, release, sbx.UpgradeOptions{})
		s.mu.Lock()
		s.status = string(types.ClusterStatusActive)
		if err == nil {
			s.version, s.previous, s.upgradedAt = in.Version, from, time.Now()
		}
		s.mu.Unlock()
		if err != nil {
			s.finish(u, errorDetail{ErrorCode: string(types.ErrorCodeUnknown), ErrorMessage: err.Error()})
			return
		}
		s.finish(u)
	}()
	return u.json(), nil
}

func (s *Server) listUpdates(r *http.Request) (any, *apiError) {
	if err := s.cluster(r); err != nil {
		return nil, err
	}
	ng, ad := r.URL.Query().Get("nodegroupName"), r.URL.Query().Get("addonName")
	s.mu.Lock()
	defer s.mu.Unlock()
	var us []*update
	for _, u := range s.updates {
		if u.Nodegroup == ng && u.Addon == ad {
			us = append(us, u)
		}
	}
	slices.SortFunc(us, func(a, b *update) int { return a.CreatedAt.Compare(b.CreatedAt) })
	ids := []string{}
	for _, u := range us {
		ids = append(ids, u.ID)
	}
	return map[string]any{"updateIds": ids}, nil
}

func (s *Server) describeUpdate(r *http.Request) (any, *apiError) {
	if err := s.cluster(r); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.updates[r.PathValue("updateId")]
	if u == nil || u.Nodegroup != r.URL.Query().Get("nodegroupName") || u.Addon != r.URL.Query().Get("addonName") {
		return nil, notFound("Update " + r.PathValue("updateId"))
	}
	return u.json(), nil
}

// LabelNodegroup labels sandbox nodes as members of a managed node group,
// as EKS labels the instances it launches for one.
func LabelNodegroup(ctx context.Context, c *sbx.Cluster, group string, nodes ...string) error {
	patch := []byte(`{"metadata":{"labels":{"` + NodegroupLabel + `":"` + group + `"}}}`)
	for _, n := range nodes {
		if _, err := c.Client().CoreV1().Nodes().Patch(ctx, n, k8stypes.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("labelling node %s into node group %s: %w", n, group, err)
		}
	}
	return nil
}

// SetInsights replaces the cluster's insights (EKS refreshes them daily
// and after a change; a test says what the refresh found).
func (s *Server) SetInsights(ins ...Insight) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.Insights = ins
}
