package kube

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// TestResilientRidesOutAnOutage: a server that refuses connections for a
// while, then answers 503, then serves: a GET through Resilient succeeds;
// without it, it fails. (An HTTP server on loopback stands in for the
// apiserver's restart here; the sandbox e2e tests cover the real one.)
func TestResilientRidesOutAnOutage(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) <= 2 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"default"}}`))
	}))
	// Reserve the address, keep it closed for 600 ms (connection refused).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	go func() {
		time.Sleep(600 * time.Millisecond)
		l2, err := net.Listen("tcp", addr)
		if err != nil {
			t.Error(err)
			return
		}
		srv.Listener = l2
		srv.Start()
	}()
	defer func() { time.Sleep(700 * time.Millisecond); srv.Close() }()

	cfg := &rest.Config{Host: "http://" + addr}
	plain := kubernetes.NewForConfigOrDie(cfg)
	if _, err := plain.CoreV1().Namespaces().Get(context.Background(), "default", metav1.GetOptions{}); err == nil {
		t.Fatal("a plain client should fail while the server refuses connections")
	}
	cs := kubernetes.NewForConfigOrDie(Resilient(cfg, 10*time.Second))
	ns, err := cs.CoreV1().Namespaces().Get(context.Background(), "default", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("resilient client: %v", err)
	}
	if ns.Name != "default" || hits.Load() < 3 {
		t.Errorf("got %q after %d hits; want the third answer", ns.Name, hits.Load())
	}
}

// TestResilientGivesUp: a server that is really gone is reported after
// the outage bound.
func TestResilientGivesUp(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	cs := kubernetes.NewForConfigOrDie(Resilient(&rest.Config{Host: "http://" + addr}, 800*time.Millisecond))
	start := time.Now()
	_, err := cs.CoreV1().Namespaces().Get(context.Background(), "default", metav1.GetOptions{})
	if err == nil {
		t.Fatal("want an error")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gave up after %s, want about the 800ms bound", d)
	}
}
