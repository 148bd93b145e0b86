package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/kup-project/kup/internal/provider"
	sbx "github.com/kup-project/kup/internal/sandbox"
)

// probeTimeout bounds each health probe: a component that takes longer
// to answer is reported as a problem, not waited for.
const probeTimeout = 5 * time.Second

// Health probes every process of the control plane: etcd's /health, the
// apiserver's /readyz and /version, the controller-manager's and
// scheduler's /healthz and build-info metric, and the kube-system pods.
// Whatever cannot be reached is a problem; nothing is assumed healthy.
func (p *ControlPlane) Health(ctx context.Context) (*provider.Health, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := p.Cluster
	h := &provider.Health{}
	problem := func(format string, args ...any) { h.Problems = append(h.Problems, fmt.Sprintf(format, args...)) }
	hc, err := p.httpClient()
	if err != nil {
		return nil, fmt.Errorf("sandbox %q: building an HTTP client for its components: %w", c.Name, err)
	}

	for _, name := range append([]string{sbx.Etcd}, sbx.ControlPlaneComponents...) {
		if proc := c.Processes[name]; proc == nil || !proc.Alive() {
			problem("%s of sandbox %q is not running", name, c.Name)
		}
	}

	if err := etcdHealthy(ctx, fmt.Sprintf("http://127.0.0.1:%d/health", c.Ports.EtcdClient)); err != nil {
		problem("etcd at 127.0.0.1:%d: %v", c.Ports.EtcdClient, err)
	}

	apiOK := true
	if err := get(ctx, hc, fmt.Sprintf("https://127.0.0.1:%d/readyz", c.Ports.APIServer)); err != nil {
		problem("kube-apiserver at 127.0.0.1:%d is not ready: %v", c.Ports.APIServer, err)
		apiOK = false
	}
	ports := map[string]int{sbx.ControllerManager: c.Ports.ControllerManager, sbx.Scheduler: c.Ports.Scheduler}
	for _, name := range sbx.ControlPlaneComponents {
		if port, ok := ports[name]; ok {
			if err := get(ctx, hc, fmt.Sprintf("https://127.0.0.1:%d/healthz", port)); err != nil {
				problem("%s at 127.0.0.1:%d is not healthy: %v", name, port, err)
				continue
			}
		} else if !apiOK {
			continue
		}
		vctx, cancel := context.WithTimeout(ctx, probeTimeout)
		v, err := c.ComponentVersion(vctx, name)
		cancel()
		if err != nil {
			problem("%s: cannot read its version: %v", name, err)
			continue
		}
		src := "build info metric"
		if name == sbx.APIServer {
			src = "/version"
		}
		h.Components = append(h.Components, provider.Component{Name: name, Instance: "127.0.0.1", Version: v, Source: src})
		if proc := c.Processes[name]; proc != nil && proc.Version != "" && proc.Version != v {
			problem("%s reports %s but the sandbox started it at %s", name, v, proc.Version)
		}
	}

	// etcd last, as Components lists it.
	h.Components = append(h.Components, provider.Component{Name: sbx.Etcd, Instance: "127.0.0.1", Version: c.EtcdVersion, Source: "provider"})

	if apiOK {
		lctx, cancel := context.WithTimeout(ctx, probeTimeout)
		pods, err := c.Client().CoreV1().Pods(metav1.NamespaceSystem).List(lctx, metav1.ListOptions{})
		cancel()
		if err != nil {
			problem("listing kube-system pods: %v", err)
		} else {
			for i := range pods.Items {
				if why := podProblem(&pods.Items[i]); why != "" {
					problem("kube-system pod %s: %s", pods.Items[i].Name, why)
				}
			}
		}
	}
	return h, nil
}

// podProblem says why a pod is not healthy, or "" when it is: Running
// with every container ready, or a finished run-once pod.
func podProblem(p *corev1.Pod) string {
	switch p.Status.Phase {
	case corev1.PodSucceeded:
		return ""
	case corev1.PodRunning:
	default:
		return "phase " + string(p.Status.Phase)
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Ready {
			continue
		}
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			return fmt.Sprintf("container %s not ready (%s)", cs.Name, w.Reason)
		}
		return fmt.Sprintf("container %s not ready (%d restarts)", cs.Name, cs.RestartCount)
	}
	return ""
}

// httpClient talks to the sandbox's components with the admin identity,
// trusting the sandbox CA (their serving certificates share it).
func (p *ControlPlane) httpClient() (*http.Client, error) {
	tr, err := rest.TransportFor(p.Cluster.RESTConfig())
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: tr, Timeout: probeTimeout}, nil
}

// get is a GET that must answer 200; the error carries the body's last
// line (readyz names the failing check there).
func get(ctx context.Context, hc *http.Client, url string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 8192))
	if resp.StatusCode != http.StatusOK {
		lines := strings.Split(strings.TrimSpace(string(body)), "\n")
		var failed []string
		for _, l := range lines {
			if strings.HasPrefix(l, "[-]") {
				failed = append(failed, strings.TrimPrefix(l, "[-]"))
			}
		}
		if len(failed) == 0 {
			failed = lines[len(lines)-1:]
		}
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.Join(failed, "; "))
	}
	return nil
}

// etcdHealthy reads etcd's /health, which answers {"health":"true"} on a
// member with a leader.
func etcdHealthy(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var v struct {
		Health string `json:"health"`
		Reason string `json:"reason"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&v); err != nil {
		return fmt.Errorf("HTTP %d, unreadable /health: %w", resp.StatusCode, err)
	}
	if v.Health != "true" {
		return fmt.Errorf("health %q %s", v.Health, v.Reason)
	}
	return nil
}
