package sandboxtest

import (
	"context"
	"slices"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kup-project/kup/internal/sandbox"
)

// As returns a client config for a user of c whose RBAC is rules alone (a
// ClusterRole and its binding, named user), impersonated by the admin: a
// kubeconfig narrower than the sandbox's, as many users of kup have. It
// returns once the apiserver's authorizer knows the binding.
func As(ctx context.Context, t testing.TB, c *sandbox.Cluster, user string, rules []rbacv1.PolicyRule) *rest.Config {
	t.Helper()
	admin := c.Client()
	if _, err := admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: user}, Rules: rules}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: user},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: user}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := c.RESTConfig()
	cfg.Impersonate.UserName = user
	cs := kubernetes.NewForConfigOrDie(cfg)
	// The apiserver's RBAC authorizer learns of the binding through its
	// own informers: wait until the user may do what the first rule says.
	r := rules[0]
	for deadline := time.Now().Add(time.Minute); ; {
		review, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, selfReview(r), metav1.CreateOptions{})
		if err == nil && review.Status.Allowed {
			return cfg
		}
		if time.Now().After(deadline) {
			t.Fatalf("user %s still may not %s %v: %v", user, r.Verbs[0], r.Resources, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// RolloutRules is the RBAC a kup node rollout needs, with the verbs
// given on PodDisruptionBudgets and StatefulSets (none: no rule).
func RolloutRules(pdbVerbs, stsVerbs []string) []rbacv1.PolicyRule {
	read := []string{"get", "list", "watch"}
	rs := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch", "patch", "update"}},
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: read},
		{APIGroups: []string{""}, Resources: []string{"pods/eviction"}, Verbs: []string{"create"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		{APIGroups: []string{"policy"}, Resources: []string{"poddisruptionbudgets"}, Verbs: pdbVerbs},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments", "daemonsets", "replicasets"}, Verbs: read},
		{APIGroups: []string{"apps"}, Resources: []string{"statefulsets"}, Verbs: stsVerbs},
	}
	return slices.DeleteFunc(rs, func(r rbacv1.PolicyRule) bool { return len(r.Verbs) == 0 })
}

// selfReview asks whether the user may do r's first verb on its first
// resource.
func selfReview(r rbacv1.PolicyRule) *authorizationv1.SelfSubjectAccessReview {
	group := ""
	if len(r.APIGroups) > 0 {
		group = r.APIGroups[0]
	}
	return &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: r.Verbs[0], Group: group, Resource: r.Resources[0]},
	}}
}
